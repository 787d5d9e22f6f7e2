"""Real containers (pull | import | create | bundle OPTS | netsetup none | run) checked
from inside: capability sets, seccomp and no_new_privs from /proc/self/status, cgroup
limits from the container's own cgroup files, rlimits, sysctls, devices, hooks that ran
at their stage, --privileged, --read-only, namespaces joined from another container;
and bad options that fail cleanly, leaving no bundle behind."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from podkit_common import errors
from podkit_common.schemas import SchemaSet
from podkit_runtime._hostfacts import own_capabilities
from podkit_runtime._security import LINUX_CAPABILITIES
from tests.runtime import _isolation_helpers as h
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_image_pull", "podkit_storage", "podkit_runtime",
                     "podkit_netsetup"])
STATUS = "grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status"


def mask(*caps: str) -> str:
    bits = 0
    for cap in caps:
        name = cap if cap.startswith("CAP_") else "CAP_" + cap
        bits |= 1 << LINUX_CAPABILITIES.index(name)
    return f"{bits:016x}"


class Containers:
    """Makes a fresh container (from one imported image) for each run of a test."""

    def __init__(self, image_doc: bytes, env: dict[str, str]) -> None:
        self.image_doc, self.env, self.count = image_doc, env, 0

    def new(self) -> bytes:
        self.count += 1
        return h.create(self.image_doc, self.env, f"c{self.count}")


@pytest.fixture
def ctr(images, podkit_env, tmp_path):
    """Containers of busybox:latest, with our own containers.conf in the env."""
    env = h.env_with_conf(podkit_env, tmp_path)
    return Containers(h.imported(images.ref("busybox:latest"), env), env)


def inside(ctr, opts, script):
    proc = h.run(ctr.new(), ctr.env, opts, script)
    assert proc.returncode == 0, proc.stderr.decode()
    final = h.final(proc)
    SCHEMAS.validate(final, "urn:podkit:runtime:bundle")
    return proc.stderr.decode(), final


def test_default_capabilities_seccomp_and_privileges(ctr):
    out, _ = inside(ctr, [], STATUS)
    status = h.status_fields(out)
    default = mask(*h.DEBIAN_CAPS)
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == default
    assert status["CapInh"] == status["CapAmb"] == "0" * 16
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "0"


def test_cap_drop_all_add_one_and_no_new_privileges(ctr):
    out, _ = inside(ctr, ["--cap-drop", "ALL", "--cap-add", "cap_net_raw",
                          "--security-opt", "no-new-privileges"], STATUS)
    status = h.status_fields(out)
    assert status["CapEff"] == status["CapBnd"] == mask("NET_RAW")
    assert status["NoNewPrivs"] == "1"


def test_a_user_gets_added_caps_as_ambient_only(ctr):
    out, _ = inside(ctr, ["--user", "1000:1000", "--cap-add", "NET_RAW"], STATUS + "; id")
    status = h.status_fields(out)
    assert status["CapAmb"] == status["CapEff"] == status["CapInh"] == mask("NET_RAW")
    assert status["CapBnd"] == mask(*h.DEBIAN_CAPS, "NET_RAW")
    assert "uid=1000" in out


def test_a_seccomp_profile_is_enforced(ctr, tmp_path):
    """A containers-format profile of our own, converted by podkit and loaded by runc:
    the syscalls it denies fail with the errno it names."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    (tmp_path / "deny-mkdir.json").write_text(json.dumps(profile))
    opt = f"seccomp={tmp_path}/deny-mkdir.json"
    script = "mkdir /tmp/d 2>&1; echo rc=$?"
    denied, _ = inside(ctr, ["--security-opt", opt], script)
    assert "Operation not permitted" in denied and "rc=1" in denied
    # the rule is excluded when the container has CAP_SYS_ADMIN
    allowed, _ = inside(ctr, ["--security-opt", opt, "--cap-add", "SYS_ADMIN"], script)
    assert "rc=0" in allowed


def test_seccomp_unconfined(ctr):
    unconfined, final = inside(ctr, ["--security-opt", "seccomp=unconfined"],
                               STATUS)
    assert h.status_fields(unconfined)["Seccomp"] == "0"
    config = json.loads(Path(final["bundle"]["config_path"]).read_text())
    assert "seccomp" not in config["linux"]


def test_cgroup_limits_are_in_force(ctr):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
              "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes "
              "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
              "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max "
              "/sys/fs/cgroup/cpuset/cpuset.cpus")
    out, _ = inside(ctr, ["--memory", "64m", "--memory-reservation", "32m", "--cpus", "0.5",
                          "--cpu-shares", "512", "--pids-limit", "100",
                          "--cpuset-cpus", "0"], script)
    assert out.split() == [str(64 << 20), str(32 << 20), "50000", "100000", "512", "100",
                           "0"]


def test_default_pids_limit_is_podmans(ctr):
    out, _ = inside(ctr, [], "cat /sys/fs/cgroup/pids/pids.max")
    assert out.split() == ["2048"]


def test_rlimits_oom_score_and_sysctls(ctr):
    script = ("ulimit -Sn; ulimit -Hn; cat /proc/self/oom_score_adj; "
              "cat /proc/sys/kernel/msgmax")
    out, _ = inside(ctr, ["--ulimit", "nofile=1024:2048", "--oom-score-adj", "100",
                          "--sysctl", "kernel.msgmax=65536"], script)
    assert out.split() == ["1024", "2048", "100", "65536"]


def test_device_is_created_and_usable(ctr):
    out, _ = inside(ctr, ["--device", "/dev/null:/dev/mynull:rw"],
                    "stat -c '%t:%T %F' /dev/mynull; echo hi > /dev/mynull && echo wrote")
    assert "1:3 character special file" in out
    assert "wrote" in out


def test_a_device_directory_gives_the_nodes_below_it(ctr):
    if not Path("/dev/net/tun").exists():
        pytest.skip("needs /dev/net/tun on the host")
    out, _ = inside(ctr, ["--device", "/dev/net:/dev/hostnet"],
                    "stat -c '%t:%T %F' /dev/hostnet/tun")
    tun = os.stat("/dev/net/tun").st_rdev
    assert f"{os.major(tun):x}:{os.minor(tun):x} character special file" in out


def test_privileged_gets_every_capability_no_seccomp_and_writable_sys(ctr):
    script = STATUS + "; grep ' /sys ' /proc/self/mounts; test -b /dev/loop0 && echo loop"
    out, _ = inside(ctr, ["--privileged"], script)
    status = h.status_fields(out)
    bounding, _ = own_capabilities()
    assert status["CapEff"] == status["CapBnd"] == mask(*bounding)
    assert status["Seccomp"] == "0"
    sys_line = next(line for line in out.splitlines() if " /sys " in line)
    assert " rw," in sys_line
    if Path("/dev/loop0").exists():
        assert "loop" in out.split()


def test_read_only_refuses_writes_but_tmp_is_writable(ctr):
    script = ("touch /etc/x 2>&1; echo etc=$?; touch /tmp/x && echo tmp=ok; "
              "touch /run/x && echo run=ok")
    out, _ = inside(ctr, ["--read-only"], script)
    assert "etc=1" in out and "Read-only file system" in out
    assert "tmp=ok" in out and "run=ok" in out
    out, _ = inside(ctr, ["--read-only", "--read-only-tmpfs=false"],
                    "touch /tmp/x 2>&1; echo tmp=$?")
    assert "tmp=1" in out


def test_masked_and_unmasked_paths(ctr):
    script = "ls /sys/kernel | wc -l; ls /sys/firmware | wc -l"
    out, final = inside(ctr, ["--security-opt", "unmask=/sys/firmware",
                              "--security-opt", "mask=/sys/kernel"], script)
    config = json.loads(Path(final["bundle"]["config_path"]).read_text())
    assert "/sys/firmware" not in config["linux"]["maskedPaths"]
    assert "/sys/kernel" in config["linux"]["maskedPaths"]
    kernel, firmware = out.split()
    assert kernel == "0"  # masked: an empty directory over it
    assert firmware == str(len(os.listdir("/sys/firmware")))


def test_cgroup_namespace_is_private_unless_host(ctr):
    private, _ = inside(ctr, [], "grep memory /proc/self/cgroup")
    assert private.strip().endswith(":memory:/")
    host, final = inside(ctr, ["--cgroupns", "host"], "grep memory /proc/self/cgroup")
    assert final["container"]["id"] in host


def hook_doc(program: Path, stage: str, when: dict) -> dict:
    return {"version": "1.0.0",
            "hook": {"path": str(program), "args": ["hook", stage], "timeout": 10},
            "when": when, "stages": [stage]}


def test_hooks_run_at_their_stage(ctr, tmp_path):
    doc, env = ctr.new(), ctr.env
    marks = tmp_path / "marks"
    marks.mkdir()
    program = tmp_path / "hook.sh"
    # A hook gets the container state on stdin; record it per stage.
    program.write_text(f"#!/bin/sh\ncat > {marks}/$1.json\n")
    program.chmod(0o755)
    low, high = tmp_path / "hooks-a", tmp_path / "hooks-b"
    low.mkdir()
    high.mkdir()
    (low / "10-prestart.json").write_text(json.dumps(
        hook_doc(program, "prestart", {"always": True})))
    (low / "20-poststop.json").write_text(json.dumps(
        hook_doc(program, "poststop", {"commands": ["^sh$"]})))
    (low / "30-never.json").write_text(json.dumps(
        hook_doc(program, "createRuntime", {"annotations": {"^example\\.hook$": "^on$"}})))
    # the later directory's file of the same name wins: this one never matches
    (low / "40-replaced.json").write_text(json.dumps(
        hook_doc(program, "poststart", {"always": True})))
    (high / "40-replaced.json").write_text(json.dumps(
        hook_doc(program, "poststart", {"hasBindMounts": True})))
    proc = h.run(doc, env, ["--hooks-dir", str(low), "--hooks-dir", str(high)], "true")
    assert proc.returncode == 0, proc.stderr.decode()
    cid = h.final(proc)["container"]["id"]
    assert sorted(p.name for p in marks.iterdir()) == ["poststop.json", "prestart.json"]
    assert json.loads((marks / "prestart.json").read_text())["id"] == cid


def test_hook_selected_by_annotation(ctr, tmp_path):
    doc, env = ctr.new(), ctr.env
    marks = tmp_path / "marks"
    marks.mkdir()
    program = tmp_path / "hook.sh"
    program.write_text(f"#!/bin/sh\ntouch {marks}/$1\n")
    program.chmod(0o755)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "a.json").write_text(json.dumps(
        hook_doc(program, "createRuntime", {"annotations": {"^example\\.hook$": "^on$"}})))
    proc = h.run(doc, env, ["--hooks-dir", str(hooks), "--annotation", "example.hook=on",
                            "--label", "tier=web"], "true")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (marks / "createRuntime").exists()
    final = h.final(proc)
    SCHEMAS.validate(final, "urn:podkit:runtime:bundle")
    assert final["bundle"]["labels"] == {"tier": "web"}
    config = json.loads(Path(final["bundle"]["config_path"]).read_text())
    assert config["annotations"]["example.hook"] == "on"


def test_joining_another_containers_namespaces(ctr, images):
    """--pid/--ipc/--uts container:ID: the second container sees the first's processes,
    hostname and /dev/shm (what pods need)."""
    doc, env = ctr.new(), ctr.env
    first = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c",
         f"pod-runtime bundle --hooks-dir {env['TEST_EMPTY_HOOKS_DIR']} --hostname first"
         " -- sh -c 'touch /dev/shm/from-first; "
         "exec sleep 60' | pod-netsetup attach --network none | pod-runtime run"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    assert first.stdin is not None
    first.stdin.write(doc)
    first.stdin.close()
    try:
        runc_root = Path(env["PODKIT_RUNROOT"]) / "runc"
        cid = json.loads(doc)["container"]["id"]
        bundle = Path(env["PODKIT_RUNROOT"]) / "bundles" / cid
        for _ in range(200):  # wait (bounded) until it runs and has touched its marker
            state = sh(f"runc --root {runc_root} state {cid}", env=env)
            if state.returncode == 0 and json.loads(state.stdout)["status"] == "running" \
                    and _shm_marker(bundle).exists():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first container did not start")
        second_doc = ctr.new()
        proc = h.run(second_doc, env, ["--pid", f"container:{cid}", "--ipc",
                                       f"container:{cid[:12]}", "--uts", f"container:{cid}"],
                     "hostname; tr '\\0' ' ' < /proc/1/cmdline; ls /dev/shm")
        assert proc.returncode == 0, proc.stderr.decode()
        out = proc.stderr.decode().split()
        assert out == ["first", "sleep", "60", "from-first"]
        config = json.loads(Path(h.final(proc)["bundle"]["config_path"]).read_text())
        paths = {ns["type"]: ns.get("path") for ns in config["linux"]["namespaces"]}
        assert paths["pid"].endswith("/ns/pid") and paths["uts"].endswith("/ns/uts")
        assert "hostname" not in config
    finally:
        os.killpg(first.pid, 9)
        first.wait()


def _shm_marker(bundle: Path) -> Path:
    """The first container's /dev/shm/from-first, seen from the host."""
    try:
        config = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError):
        return bundle / "no-config-yet"
    shm = next(m for m in config["mounts"] if m["destination"] == "/dev/shm")
    return Path(shm["source"]) / "from-first"


@pytest.mark.parametrize(("opts", "code", "words"), [
    (["--cap-add", "NOT_A_CAP"], errors.UsageError.exit_code, "NOT_A_CAP"),
    (["--memory", "12q"], errors.UsageError.exit_code, "invalid size: '12q'"),
    (["--memory-swap", "1g"], errors.UsageError.exit_code, "memory limit"),
    (["--cpus", "lots"], errors.UsageError.exit_code, "cpus"),
    (["--ulimit", "nofile=1024:99999999"], errors.PermissionDenied.exit_code,
     "hard limit"),
    (["--ulimit", "bogus=1"], errors.UsageError.exit_code, "bogus"),
    (["--sysctl", "kernel.panic=1"], errors.UsageError.exit_code, "not allowed"),
    (["--device", "/dev/no-such-device-here"], errors.NotFound.exit_code, "does not exist"),
    (["--security-opt", "seccomp=/no/such/profile.json"], errors.NotFound.exit_code,
     "does not exist"),
    (["--security-opt", "bogus"], errors.UsageError.exit_code, "bogus"),
    (["--pid", "container:nosuchcontainer"], errors.NotFound.exit_code, "nosuchcontainer"),
    (["--hooks-dir", "/no/such/hooks.d"], errors.NotFound.exit_code, "does not exist"),
])
def test_bad_options_fail_cleanly_and_leave_no_bundle(ctr, opts, code, words):
    doc, env = ctr.new(), ctr.env
    proc = h.bundle(doc, env, opts)
    assert proc.returncode == code, proc.stderr.decode()
    assert proc.stdout == b""
    err = json.loads(proc.stderr.decode().strip().splitlines()[-1])["error"]
    assert words in err["message"] and err["hint"]
    bundles = Path(env["PODKIT_RUNROOT"]) / "bundles"
    assert not bundles.exists() or list(bundles.iterdir()) == []


def test_pod_run_takes_podmans_option_names(images, podkit_env, tmp_path):
    env = h.env_with_conf(podkit_env, tmp_path)
    ref = images.ref("busybox:latest").removeprefix("docker://")
    script = STATUS + "; cat /sys/fs/cgroup/pids/pids.max; ulimit -n"
    proc = sh(f"pod run --rm --network none --tls-verify=false --cap-drop ALL "
              f"--hooks-dir {env['TEST_EMPTY_HOOKS_DIR']} "
              f"--cap-add net_raw --security-opt no-new-privileges --pids-limit 50 "
              f"--ulimit nofile=512:1024 {ref} sh -c \"{script}\"", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    status = h.status_fields(out)
    assert status["CapEff"] == mask("NET_RAW") and status["NoNewPrivs"] == "1"
    assert out.split()[-2:] == ["50", "512"]
    bad = sh(f"pod run --rm --network none --tls-verify=false --memory 12q "
             f"--hooks-dir {env['TEST_EMPTY_HOOKS_DIR']} {ref} true", env=env)
    assert bad.returncode == errors.EXIT_RUN_OWN_ERROR
    assert "invalid size: '12q'" in bad.stderr.decode()


def test_a_bad_isolation_option_is_refused_before_anything_is_written(ctr):
    doc = ctr.new()
    rootfs = Path(json.loads(doc)["container"]["rootfs"])
    proc = h.bundle(doc, ctr.env, ["-w", "/made-by-workdir", "--cap-drop", "NOPE"])
    assert proc.returncode == errors.UsageError.exit_code
    assert not (rootfs / "made-by-workdir").exists()


def test_host_namespaces(ctr):
    import socket

    out, final = inside(ctr, ["--pid", "host", "--uts", "host", "--ipc", "host"],
                        "hostname; echo $HOSTNAME")
    lines = out.splitlines()
    assert lines[:2] == [socket.gethostname()] * 2
    config = json.loads(Path(final["bundle"]["config_path"]).read_text())
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert types == {"mount", "network", "cgroup"}
    # the pid namespace is the host's: this test's own process is visible inside
    check, _ = inside(ctr, ["--pid", "host"], f"test -d /proc/{os.getpid()} && echo seen")
    assert "seen" in check
