"""A burst: 100 `pod run -d` at once, all running, `pod ps` lists them, then stopped and
removed concurrently with nothing left: no processes (conmon, exit commands, container
processes), no runc state, no mounts, no cgroups, no records, bundles or storage
containers. Real conmon + runc + overlay, all through the installed `pod`.

BURST (100) can be lowered with PODKIT_BURST on a slow machine; WORKERS bounds how many
`pod` processes run at once (each is a Python start-up plus a conmon + runc create, so
more than a few per core only queues on the CPU).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podkit_common import jsonio
from tests.runtime.test_lifecycle import eventually, leftovers, run_cli, runc_ids

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

BURST = int(os.environ.get("PODKIT_BURST", "100"))
WORKERS = 8
#: stops at once on SIGTERM (a bare `sleep` as pid 1 would ignore it)
SCRIPT = "trap 'exit 0' TERM; sleep 1000 & wait"


def _cgroup_dirs(cgroups_path: str) -> list[Path]:
    """The cgroup v1 directories runc (cgroupfs) makes for ``cgroups_path``."""
    base = Path("/sys/fs/cgroup")
    found = []
    for controller in ("memory", "pids", "cpu,cpuacct", "devices", "freezer"):
        d = base / controller / cgroups_path.lstrip("/")
        if d.exists():
            found.append(d)
    return found


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if str(path) in line.split()[4]]


def _all_ok(procs) -> list[str]:
    failed = [f"{p.args[-1]}: exit {p.returncode}: {p.stderr.decode()[-2000:]}" for p in procs
              if p.returncode != 0]
    if failed:
        pytest.fail("\n".join(failed), pytrace=False)
    return failed


def test_a_burst_of_100_detached_containers_leaves_nothing(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    pulled = run_cli(f"pod pull -q --tls-verify=false {ref}", podkit_env)
    assert pulled.returncode == 0, pulled.stderr.decode()
    names = [f"burst{i}" for i in range(BURST)]

    def run_one(name: str):
        return run_cli(f"pod run -d --network none --name {name} {ref} sh -c "
                       f"{shlex.quote(SCRIPT)}", podkit_env)

    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        ran = list(pool.map(run_one, names))
    t_run = time.monotonic() - t0
    assert _all_ok(ran) == []
    ids = [p.stdout.decode().strip() for p in ran]
    assert len(set(ids)) == BURST

    t0 = time.monotonic()
    listed = jsonio.loads(run_cli("pod ps --format json", podkit_env).stdout)  # an array
    t_ps = time.monotonic() - t0
    assert sorted(x["Id"] for x in listed) == sorted(ids)
    assert {x["State"] for x in listed} == {"running"}
    table = run_cli("pod ps", podkit_env).stdout.decode().splitlines()
    assert len(table) == BURST + 1  # the header and one line each
    assert len(runc_ids(podkit_env)) == BURST
    runroot = Path(podkit_env["PODKIT_RUNROOT"])
    cgroups = {cid: jsonio.loads((runroot / "bundles" / cid / "config.json").read_bytes())
               ["linux"]["cgroupsPath"] for cid in ids}
    assert all(_cgroup_dirs(p) for p in cgroups.values())

    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        stopped = list(pool.map(lambda n: run_cli(f"pod stop -t 5 {n}", podkit_env), names))
        assert _all_ok(stopped) == []
        removed = list(pool.map(lambda n: run_cli(f"pod rm {n}", podkit_env), names))
    t_rm = time.monotonic() - t0
    assert _all_ok(removed) == []
    assert sorted(p.stdout.decode().strip() for p in removed) == sorted(names)  # as podman

    assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
    storage = run_cli("pod-storage containers", podkit_env)
    assert storage.returncode == 0 and storage.stdout.strip() == b""
    eventually(lambda: leftovers(tmp_path) == [], "no conmon, exit command or container left",
               120)
    assert runc_ids(podkit_env) == []
    assert _mounts_under(tmp_path) == []
    assert [d for p in cgroups.values() for d in _cgroup_dirs(p)] == []
    root = Path(podkit_env["PODKIT_ROOT"])
    assert list((root / "runtime" / "containers").iterdir()) == []
    assert list((runroot / "bundles").iterdir()) == []
    # exits/ stays, and versions.json: the runc/conmon verdict cache of this runroot
    assert [p for p in (runroot / "runtime").iterdir()
            if p.name not in ("exits", "versions.json")] == []
    sys.stderr.write(f"\nburst of {BURST} ({WORKERS} at a time): run -d {t_run:.1f}s, "
                     f"ps {t_ps:.2f}s, stop+rm {t_rm:.1f}s\n")


def test_a_temporary_name_always_names_its_live_writer(tmp_path):
    """The burst found it: a random part of all digits (1 name in ~40) read as the
    writer's pid, so a concurrent bundler swept a live bundler's work directory."""
    from podkit_common import atomic

    for _ in range(2000):
        name = atomic.temp_path_for(tmp_path / "bundle").name
        assert atomic.writer_pid(name) == os.getpid() and not atomic.abandoned(name)
