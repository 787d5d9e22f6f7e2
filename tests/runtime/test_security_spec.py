"""The pure isolation rules: capabilities, security options, namespaces, resources,
sizes, seccomp conversion, hooks selection — no I/O, no containers."""

from __future__ import annotations

import json

import pytest

from podkit_common import errors
from podkit_runtime import BundleOptions, User, build_config
from podkit_runtime._hooks import hook_applies, select_hooks, validate_hook
from podkit_runtime._hostfacts import HostFacts
from podkit_runtime._isolation import BUILTIN_CAPABILITIES, cli_options
from podkit_runtime._namespaces import NamespaceMode, namespace_list, parse_mode
from podkit_runtime._parse_units import parse_cpus, parse_size
from podkit_runtime._resources import (
    HostDevice,
    ResourceOpts,
    cgroups_path,
    linux_resources,
    parse_device,
    parse_ulimit,
    rlimits,
    sysctls,
)
from podkit_runtime._seccomp import convert_profile
from podkit_runtime._security import (
    LINUX_CAPABILITIES,
    capability_sets,
    caps_from_mask,
    masked_and_readonly,
    merge_capabilities,
    normalize_capability,
    parse_security_opts,
)

CTR = {"id": "c" * 64, "name": "web", "rootfs": "/r/merged"}
ALL = LINUX_CAPABILITIES
NO_SYS_RESOURCE = tuple(c for c in ALL if c != "CAP_SYS_RESOURCE")


def config(host: HostFacts | None = None, **opts) -> dict:
    return build_config({"Cmd": ["sh"]}, CTR, User(uid=opts.pop("uid", 0)),
                        BundleOptions(**opts), bundle_files={"/etc/hosts": "/b/hosts"},
                        cgroups_path="/podkit/podkit-" + "c" * 64, host=host)


# -- capabilities -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "full"), [
    ("net_raw", "CAP_NET_RAW"), ("CAP_NET_RAW", "CAP_NET_RAW"), ("Net_Raw", "CAP_NET_RAW"),
    ("cap_sys_admin", "CAP_SYS_ADMIN"), ("all", "ALL"), ("ALL", "ALL"),
])
def test_capability_names_any_case_with_or_without_prefix(name, full):
    assert normalize_capability(name) == full


def test_unknown_capability_is_a_usage_error_naming_it():
    with pytest.raises(errors.UsageError, match="NOT_REAL") as e:
        normalize_capability("NOT_REAL")
    assert e.value.exit_code == 2


def test_merge_follows_c_common():
    base = ("CAP_CHOWN", "CAP_KILL")
    assert merge_capabilities(base, ("net_raw",), ("kill",), ALL) == ["CAP_CHOWN",
                                                                      "CAP_NET_RAW"]
    assert merge_capabilities(base, ("NET_RAW",), ("ALL",), ALL) == ["CAP_NET_RAW"]
    assert merge_capabilities(base, ("ALL",), ("CAP_KILL",), NO_SYS_RESOURCE) == \
        sorted(c for c in NO_SYS_RESOURCE if c != "CAP_KILL")
    with pytest.raises(errors.UsageError, match="adding all caps and removing all caps"):
        merge_capabilities(base, ("ALL",), ("ALL",), ALL)
    with pytest.raises(errors.UsageError, match="cannot be dropped and added"):
        merge_capabilities(base, ("NET_RAW",), ("net_raw",), ALL)
    with pytest.raises(errors.UsageError, match="not available on this host"):
        merge_capabilities(base, ("SYS_RESOURCE",), (), NO_SYS_RESOURCE)


def test_root_gets_the_set_and_others_only_what_was_added():
    root = capability_sets(BUILTIN_CAPABILITIES, (), (), privileged=False, uid=0,
                           available=ALL)
    assert root["effective"] == root["bounding"] == sorted(BUILTIN_CAPABILITIES)
    assert root["inheritable"] == root["ambient"] == []
    user = capability_sets(BUILTIN_CAPABILITIES, ("SYS_TIME",), (), privileged=False,
                           uid=1000, available=ALL)
    assert "CAP_SYS_TIME" in user["bounding"]
    assert user["effective"] == user["ambient"] == user["inheritable"] == ["CAP_SYS_TIME"]
    plain = capability_sets(BUILTIN_CAPABILITIES, (), (), privileged=False, uid=1000,
                            available=ALL)
    assert plain["effective"] == plain["ambient"] == []


def test_privileged_gets_every_available_capability():
    sets = capability_sets(BUILTIN_CAPABILITIES, (), ("NET_RAW",), privileged=True, uid=0,
                           available=NO_SYS_RESOURCE)
    assert sets["bounding"] == sorted(NO_SYS_RESOURCE)


def test_caps_from_a_status_mask():
    assert caps_from_mask(0x2000) == ("CAP_NET_RAW",)
    assert caps_from_mask(0x1fffeffffff) == NO_SYS_RESOURCE


def test_default_config_uses_containers_conf_caps_when_given():
    cfg = config(HostFacts(default_caps=("CAP_CHOWN",)))
    assert cfg["process"]["capabilities"]["bounding"] == ["CAP_CHOWN"]
    assert cfg["process"]["capabilities"]["inheritable"] == []
    assert config()["process"]["capabilities"]["bounding"] == sorted(BUILTIN_CAPABILITIES)


# -- security options ---------------------------------------------------------------

def test_security_opts_parse():
    sec = parse_security_opts(("no-new-privileges", "seccomp=/p.json", "mask=/a:/b",
                               "unmask=/proc/kcore", "label=disable"))
    assert sec.no_new_privileges and sec.seccomp == "/p.json"
    assert sec.mask == ("/a", "/b") and sec.unmask == ("/proc/kcore",)
    assert not parse_security_opts(("no-new-privileges=false",)).no_new_privileges
    with pytest.raises(errors.UsageError, match="bogus"):
        parse_security_opts(("bogus=1",))


def test_mask_unmask_and_privileged_paths():
    masked, readonly = masked_and_readonly(["/proc/kcore", "/proc/keys"], ["/proc/sys"],
                                           parse_security_opts(("unmask=/proc/kcore",
                                                                "mask=/x")),
                                           privileged=False)
    assert masked == ["/proc/keys", "/x"] and readonly == ["/proc/sys"]
    assert masked_and_readonly(["/a"], ["/b"], parse_security_opts(("unmask=ALL",)),
                               privileged=False) == ([], [])
    assert masked_and_readonly(["/a"], ["/b"], parse_security_opts(()),
                               privileged=True) == ([], [])


def test_privileged_config():
    host = HostFacts(privileged_devices=(HostDevice("/dev/loop0", "b", 7, 0, 0o660),),
                     seccomp={"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []})
    cfg = config(host, privileged=True)
    linux = cfg["linux"]
    assert "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert linux["devices"][0]["path"] == "/dev/loop0"
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "rw" in sys_mount["options"] and "ro" not in sys_mount["options"]
    assert "seccomp" in config(host)["linux"]


def test_no_new_privileges_and_read_only_tmpfs():
    cfg = config(security_opt=("no-new-privileges",), read_only=True)
    assert cfg["process"]["noNewPrivileges"] is True
    tmpfs = {m["destination"] for m in cfg["mounts"] if m["type"] == "tmpfs"}
    assert {"/tmp", "/var/tmp", "/run"} <= tmpfs
    cfg = config(read_only=True, read_only_tmpfs=False)
    assert "/tmp" not in {m["destination"] for m in cfg["mounts"]}


# -- namespaces -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "mode"), [
    (None, NamespaceMode()), ("private", NamespaceMode()), ("host", NamespaceMode("host")),
    ("container:abc", NamespaceMode("container", "abc")),
    ("ns:/proc/1/ns/pid", NamespaceMode("path", "/proc/1/ns/pid")),
])
def test_namespace_modes(value, mode):
    assert parse_mode(value, "--pid") == mode


@pytest.mark.parametrize("value", ["bogus", "ns:relative", "container:"])
def test_bad_namespace_modes(value):
    with pytest.raises(errors.UsageError):
        parse_mode(value, "--pid")


def test_default_namespaces_include_cgroup_and_host_ones_are_left_out():
    types = [ns["type"] for ns in config()["linux"]["namespaces"]]
    assert sorted(types) == ["cgroup", "ipc", "mount", "network", "pid", "uts"]
    cfg = config(pid="host", uts="host", cgroupns="host")
    assert sorted(ns["type"] for ns in cfg["linux"]["namespaces"]) == ["ipc", "mount",
                                                                      "network"]
    assert "hostname" not in cfg  # runc cannot set it in the host's UTS namespace
    named = config(HostFacts(host_hostname="thehost"), uts="host")
    assert "HOSTNAME=thehost" in named["process"]["env"]
    joined = config(HostFacts(namespaces={"pid": "/proc/9/ns/pid", "network": None,
                                          "mount": None}), pid="container:x")
    assert {"type": "pid", "path": "/proc/9/ns/pid"} in joined["linux"]["namespaces"]
    assert namespace_list({"uts": None}) == [{"type": "uts"}]
    by_path = config(ipc="ns:/run/ipc-ns")
    assert {"type": "ipc", "path": "/run/ipc-ns"} in by_path["linux"]["namespaces"]


# -- resources ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "size"), [
    ("64m", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("1024", 1024), ("1.5g", 3 << 29),
    ("10MB", 10 << 20), ("2GiB", 2 << 30), ("100b", 100),
])
def test_sizes(text, size):
    assert parse_size(text, "memory") == size


@pytest.mark.parametrize("text", ["12q", "", "m", "-5m", "1..2g"])
def test_bad_sizes_say_what_podman_says(text):
    with pytest.raises(errors.UsageError, match=f"invalid value for memory: invalid size: "
                                                f"'{text}'"):
        parse_size(text, "memory")


def test_cpus():
    assert parse_cpus("0.5") == (50000, 100000)
    assert parse_cpus("2") == (200000, 100000)
    for bad in ("0", "-1", "x"):
        with pytest.raises(errors.UsageError):
            parse_cpus(bad)


def test_resources_like_podman():
    res = linux_resources(ResourceOpts(memory="64m", cpus="0.5", pids_limit="100"))
    assert res == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                   "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}}
    assert linux_resources(ResourceOpts()) == {"pids": {"limit": 2048}}
    assert linux_resources(ResourceOpts(pids_limit="-1")) == {"pids": {"limit": 0}}
    assert linux_resources(ResourceOpts(memory="1g", memory_swap="-1"))["memory"] == {
        "limit": 1 << 30}
    with pytest.raises(errors.UsageError, match="always set a memory limit"):
        linux_resources(ResourceOpts(memory_swap="1g"))
    with pytest.raises(errors.UsageError, match="larger than memory limit"):
        linux_resources(ResourceOpts(memory="1g", memory_swap="512m"))
    with pytest.raises(errors.UsageError, match="cannot be set together"):
        linux_resources(ResourceOpts(cpus="1", cpu_quota="1000"))
    with pytest.raises(errors.UsageError, match="blkio-weight"):
        linux_resources(ResourceOpts(blkio_weight="5"))
    with pytest.raises(errors.UsageError, match="cpuset-cpus"):
        linux_resources(ResourceOpts(cpuset_cpus="3-1"))


def test_ulimits_never_above_the_hosts_hard_limit_without_cap_sys_resource():
    assert parse_ulimit("nofile=1024:2048") == ("RLIMIT_NOFILE", 1024, 2048)
    assert parse_ulimit("core=-1") == ("RLIMIT_CORE", 2**64 - 1, 2**64 - 1)
    assert parse_ulimit("nproc=50") == ("RLIMIT_NPROC", 50, 50)
    host = {"RLIMIT_NOFILE": 20000}
    assert rlimits(("nofile=10:20000",), host, False) == [
        {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 10}]
    with pytest.raises(errors.PermissionDenied, match="CAP_SYS_RESOURCE") as e:
        rlimits(("nofile=10:20001",), host, False)
    assert e.value.exit_code == 12
    assert rlimits(("nofile=10:20001",), host, True)[0]["hard"] == 20001
    for bad in ("nofile", "bogus=1", "nofile=2:1", "nofile=x"):
        with pytest.raises(errors.UsageError):
            parse_ulimit(bad)


def test_only_namespaced_sysctls():
    assert sysctls(("net.ipv4.ip_forward=1", "kernel.msgmax=10", "fs.mqueue.msg_max=5"),
                   host_ipc=False, host_net=False, host_uts=False) == {
        "net.ipv4.ip_forward": "1", "kernel.msgmax": "10", "fs.mqueue.msg_max": "5"}
    with pytest.raises(errors.UsageError, match="not allowed"):
        sysctls(("kernel.panic=1",), host_ipc=False, host_net=False, host_uts=False)
    with pytest.raises(errors.UsageError, match="IPC Namespace set to host"):
        sysctls(("kernel.shmmax=1",), host_ipc=True, host_net=False, host_uts=False)


def test_devices():
    assert parse_device("/dev/null") == ("/dev/null", "/dev/null", "rwm")
    assert parse_device("/dev/null:r") == ("/dev/null", "/dev/null", "r")
    assert parse_device("/dev/null:/dev/x") == ("/dev/null", "/dev/x", "rwm")
    assert parse_device("/dev/null:/dev/x:rw") == ("/dev/null", "/dev/x", "rw")
    for bad in ("null", "/dev/null:/dev/x:rwz", "/dev/null:/a:r:x"):
        with pytest.raises(errors.UsageError):
            parse_device(bad)
    host = HostFacts(devices=((HostDevice("/dev/null", "c", 1, 3, 0o666), "/dev/x", "rw"),))
    linux = config(host)["linux"]
    assert linux["devices"] == [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                 "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert linux["resources"]["devices"][-1] == {"allow": True, "type": "c", "major": 1,
                                                 "minor": 3, "access": "rw"}


def test_cgroup_parent():
    assert cgroups_path("/mine", "/podkit/podkit-x", "x") == "/mine/podkit-x"
    assert cgroups_path(None, "/podkit/podkit-x", "x") == "/podkit/podkit-x"
    with pytest.raises(errors.UsageError):
        cgroups_path("relative", "/d", "x")


def test_cli_options_turn_raw_values_into_fields():
    fields = cli_options({"cap_add": ["a"], "label": ["k=v"], "annotation": ["x=y"],
                          "read_only_tmpfs": "false", "hooks_dir": [], "memory": "1g",
                          "ignored": 1})
    assert fields["cap_add"] == ("a",) and fields["labels"] == {"k": "v"}
    assert fields["annotations"] == {"x": "y"} and fields["read_only_tmpfs"] is False
    assert "hooks_dir" not in fields and fields["memory"] == "1g" and "ignored" not in fields
    BundleOptions(**fields)


# -- seccomp ----------------------------------------------------------------------------

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "x",
         "includes": {}, "excludes": {}},
        {"name": "personality", "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["s390x"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["new_one"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.0"}},
        {"names": ["old_one"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.0"}},
    ],
}


def test_seccomp_conversion_follows_c_common():
    out = convert_profile(json.loads(json.dumps(PROFILE)), ["CAP_CHOWN"], arch="amd64",
                          kernel="6.18.44-fc")
    assert out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 38
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert out["syscalls"] == [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["new_one"], "action": "SCMP_ACT_ALLOW"},
    ]
    admin = convert_profile(PROFILE, ["CAP_SYS_ADMIN"], arch="amd64", kernel="5.10.0")
    names = [r["names"][0] for r in admin["syscalls"]]
    assert names == ["read", "personality", "arch_prctl", "bpf", "old_one"]
    arm = convert_profile(PROFILE, [], arch="arm64", kernel="6.1")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "reboot" in [r["names"][0] for r in arm["syscalls"]]


def test_seccomp_profile_errors_and_disabled():
    assert convert_profile({}, [], arch="amd64", kernel="6.1") is None
    with pytest.raises(errors.InvalidDocument, match="'name' and 'names'"):
        convert_profile({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"name": "a", "names": ["b"], "action": "x"}]}, [],
                        arch="amd64", kernel="6.1")
    with pytest.raises(errors.InvalidDocument, match="architectures' and 'archMap"):
        convert_profile({"defaultAction": "A", "architectures": ["X"], "archMap": [{}]}, [],
                        arch="amd64", kernel="6.1")


# -- hooks ------------------------------------------------------------------------------

def hook(when, stages=("prestart",), path="/bin/true"):
    return {"version": "1.0.0", "hook": {"path": path}, "when": when, "stages": list(stages)}


def test_hook_conditions():
    cfg = {"process": {"args": ["/usr/bin/nginx", "-g"]},
           "annotations": {"io.example.gpu": "yes"},
           "mounts": [{"destination": "/etc/hosts", "type": "bind", "options": ["rbind"]}]}
    assert hook_applies(hook({"always": True}), cfg)
    assert not hook_applies(hook({"always": False}), cfg)
    assert hook_applies(hook({"commands": ["nginx$"]}), cfg)
    assert not hook_applies(hook({"commands": ["^sh$"]}), cfg)
    assert hook_applies(hook({"annotations": {"gpu$": "^yes$"}}), cfg)
    assert not hook_applies(hook({"annotations": {"gpu$": "^no$"}}), cfg)
    # the engine's own /etc/hosts does not count as a bind mount, a volume does
    assert not hook_applies(hook({"hasBindMounts": True}), cfg)
    cfg["mounts"].append({"destination": "/data", "type": "bind", "options": ["rbind"]})
    assert hook_applies(hook({"hasBindMounts": True}), cfg)


def test_hooks_section_in_file_order_per_stage():
    hooks = [("a.json", hook({"always": True}, ("prestart", "poststop"), "/bin/a")),
             ("b.json", hook({"commands": ["^x$"]}, ("prestart",), "/bin/b")),
             ("c.json", hook({"always": True}, ("prestart",), "/bin/c"))]
    section = select_hooks(hooks, {"process": {"args": ["sh"]}})
    assert section == {"prestart": [{"path": "/bin/a"}, {"path": "/bin/c"}],
                       "poststop": [{"path": "/bin/a"}]}


@pytest.mark.parametrize(("doc", "words"), [
    ({"version": "0.1.0"}, "unsupported version"),
    (hook({"always": True}, path="relative"), "absolute"),
    (hook({"always": True}, stages=()), "non-empty"),
    (hook({"always": True}, stages=("later",)), "unknown stage"),
    (hook({}), "no conditions"),
    (hook({"commands": ["("]}), "regular expression"),
])
def test_bad_hooks_are_invalid_documents(doc, words):
    with pytest.raises(errors.InvalidDocument, match=words):
        validate_hook("x.json", doc)


def test_validate_checks_every_isolation_option_without_io():
    from podkit_runtime._isolation import validate

    validate(BundleOptions(cap_add=("net_raw",), memory="1g", sysctl=("net.x=1",)))
    for bad in (dict(cap_add=("nope",)), dict(memory="12q"), dict(ulimit=("x=1",)),
                dict(security_opt=("mask=relative",)), dict(sysctl=("kernel.panic=1",)),
                dict(pid="bogus"), dict(cgroup_parent="rel"), dict(device=("dev",)),
                dict(oom_score_adj="5000")):
        with pytest.raises(errors.UsageError):
            validate(BundleOptions(**bad))


def test_seccomp_errno_names_win_over_numbers_like_c_common():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS",
               "defaultErrnoRet": 1,
               "syscalls": [{"names": ["quotactl"], "action": "SCMP_ACT_ERRNO",
                             "errno": "EACCES"}]}
    out = convert_profile(profile, [], arch="amd64", kernel="6.1")
    assert out["defaultErrnoRet"] == 38 and out["syscalls"][0]["errnoRet"] == 13
    with pytest.raises(errors.InvalidDocument, match="ENOTREAL"):
        convert_profile({**profile, "defaultErrno": "ENOTREAL"}, [], arch="amd64",
                        kernel="6.1")


def test_seccomp_conversion_is_cached_by_profile_and_caps(tmp_path):
    from podkit_runtime._seccomp import load_seccomp

    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE))
    cache = tmp_path / "cache"
    first = load_seccomp(path, ["CAP_CHOWN"], cache)
    assert len(list(cache.iterdir())) == 1
    assert load_seccomp(path, ["CAP_CHOWN"], cache) == first
    other = load_seccomp(path, ["CAP_SYS_ADMIN"], cache)  # other caps: another entry
    assert other != first and len(list(cache.iterdir())) == 2
    entry = sorted(cache.iterdir())[0]
    entry.write_text("{broken")  # a damaged entry is converted again
    again = {json.dumps(load_seccomp(path, caps, cache), sort_keys=True)
             for caps in (["CAP_CHOWN"], ["CAP_SYS_ADMIN"])}
    assert again == {json.dumps(first, sort_keys=True), json.dumps(other, sort_keys=True)}
    with pytest.raises(errors.NotFound):
        load_seccomp(tmp_path / "missing.json", [], cache)


def test_default_sysctls_from_containers_conf_are_skipped_where_they_cannot_apply():
    host = HostFacts(default_sysctls=("net.ipv4.ping_group_range=0 0", "kernel.shmmax=1"))
    assert config(host)["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 0",
                                               "kernel.shmmax": "1"}
    assert config(host, ipc="host")["linux"]["sysctl"] == {
        "net.ipv4.ping_group_range": "0 0"}
    with pytest.raises(errors.UsageError):
        config(host, ipc="host", sysctl=("kernel.shmmax=2",))
