"""Every config.json pod-runtime writes validates against the official OCI runtime-spec
schema (Debian's golang-github-opencontainers-specs-dev), its relative $refs resolved
from the local files with `referencing` — nothing is fetched."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from podkit_runtime import BundleOptions, User, build_config
from podkit_runtime._hostfacts import HostFacts
from podkit_runtime._resources import HostDevice
from tests.runtime import _isolation_helpers as h

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")
CTR = {"id": "b" * 64, "name": "web", "rootfs": "/r/merged", "image_name": "x/busybox"}

#: Option sets for real bundles (pod-runtime bundle OPTS), "{tmp}" is the test's tmp_path.
OPTION_SETS: list[list[str]] = [
    [],
    ["--cap-drop", "ALL", "--cap-add", "NET_RAW", "--security-opt", "no-new-privileges"],
    ["--privileged"],
    ["--read-only"],
    ["--read-only", "--read-only-tmpfs=false"],
    ["--memory", "64m", "--memory-swap", "-1", "--memory-reservation", "32m", "--cpus", "1.5",
     "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "100",
     "--oom-score-adj", "-100"],
    ["--cpu-period", "50000", "--cpu-quota", "20000", "--cgroup-parent", "/mine",
     "--blkio-weight", "300"],
    ["--user", "1000:1000", "--cap-add", "NET_ADMIN"],
    ["--ulimit", "nofile=1024:2048", "--ulimit", "core=-1"],
    ["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=65536"],
    ["--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "host"],
    ["--device", "/dev/null:/dev/mynull:rw", "--device", "/dev/zero"],
    ["--security-opt", "seccomp=unconfined", "--security-opt", "mask=/proc/x:/proc/y",
     "--security-opt", "unmask=ALL"],
    ["--hooks-dir", "{tmp}/hooks.d", "--annotation", "a.b=c", "--label", "l=1"],
    ["-e", "A=1", "-w", "/tmp", "--tmpfs", "/scratch", "-v", "{tmp}/data:/data:ro"],
]


@cache
def validator():
    """A Draft 4 validator for config-schema.json with its sibling files registered."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    base = SCHEMA_DIR.as_uri() + "/"
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((base + path.name,
                          Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    root = {**json.loads((SCHEMA_DIR / "config-schema.json").read_text()),
            "id": base + "config-schema.json"}
    return jsonschema.Draft4Validator(root, registry=registry)


def check(config: dict) -> None:
    errors = sorted(validator().iter_errors(config), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.fixture(autouse=True)
def _schema_present():
    if not (SCHEMA_DIR / "config-schema.json").is_file():
        pytest.skip(f"needs the OCI runtime-spec schema under {SCHEMA_DIR} "
                    "(apt-get install golang-github-opencontainers-specs-dev)")


def test_the_schema_rejects_a_broken_config():
    """The validator is live: a config with wrong types fails."""
    config = build_config({"Cmd": ["sh"]}, CTR, User(), BundleOptions(), bundle_files={},
                          cgroups_path="/p")
    check(config)
    config["process"]["capabilities"]["bounding"] = ["NOT_A_CAP"]
    config["linux"]["resources"]["memory"] = {"limit": "lots"}
    with pytest.raises(AssertionError):
        check(config)


FULL_HOST = HostFacts(
    devices=((HostDevice("/dev/null", "c", 1, 3, 0o666), "/dev/x", "rw"),),
    privileged_devices=(HostDevice("/dev/loop0", "b", 7, 0, 0o660),),
    seccomp={"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
             "architectures": ["SCMP_ARCH_X86_64"],
             "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                          {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]},
    hooks=(("a.json", {"version": "1.0.0", "hook": {"path": "/bin/true", "timeout": 3},
                       "when": {"always": True}, "stages": ["prestart", "poststop"]}),),
    hard_limits={"RLIMIT_NOFILE": 4096})


@pytest.mark.parametrize("opts", [
    BundleOptions(),
    BundleOptions(privileged=True),
    BundleOptions(read_only=True, cap_add=("ALL",), security_opt=("no-new-privileges",)),
    BundleOptions(memory="1g", memory_swap="2g", cpus="0.25", pids_limit="-1",
                  ulimit=("nofile=100:200",), sysctl=("fs.mqueue.msg_max=20",),
                  oom_score_adj="1000", pid="ns:/proc/1/ns/pid", uts="host"),
], ids=["defaults", "privileged", "read-only-all-caps", "resources-namespaces"])
def test_pure_configs_validate(opts):
    config = build_config({"Cmd": ["sh"], "Env": ["A=1"]}, CTR, User(uid=1000, gid=1000),
                          opts, bundle_files={"/etc/hosts": "/b/hosts"},
                          cgroups_path="/podkit/x", host=FULL_HOST)
    check(config)


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.registry
def test_every_bundle_written_validates(images, podkit_env, tmp_path):
    (tmp_path / "data").mkdir()
    hooks = tmp_path / "hooks.d"
    hooks.mkdir()
    (hooks / "h.json").write_text(json.dumps(
        {"version": "1.0.0", "hook": {"path": "/bin/true", "args": ["true"], "timeout": 5},
         "when": {"always": True}, "stages": ["prestart", "createRuntime", "poststop"]}))
    env = h.env_with_conf(podkit_env, tmp_path)
    image = h.imported(images.ref("busybox:latest"), env)
    checked = 0
    for i, options in enumerate(OPTION_SETS):
        opts = [o.replace("{tmp}", str(tmp_path)) for o in options]
        made = h.bundle(h.create(image, env, f"s{i}"), env, opts)
        assert made.returncode == 0, (opts, made.stderr.decode())
        config = json.loads(Path(h.final(made)["bundle"]["config_path"]).read_text())
        try:
            check(config)
        except AssertionError as e:
            raise AssertionError(f"options {opts}: {e}") from None
        checked += 1
    assert checked == len(OPTION_SETS)
