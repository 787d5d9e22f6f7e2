"""conmon's cgroup, like podman with cgroupfs: conmon goes into `<CgroupParent>/conmon`
before it forks (so runc and the exit command are there too), not left in the
caller's cgroup; `rm` removes that cgroup once it is empty. Real conmon + runc,
cgroup v1 (hybrid) on this machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_runtime._conmon_cgroup import CGROUP_ROOT, conmon_cgroup, hierarchies, of_process
from tests.runtime.test_lifecycle import loads, roots_of, run_cli, save

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


@pytest.fixture
def parent() -> str:
    """A cgroup parent of this test's own; whatever is left under it goes at the end."""
    name = f"/podkit-test-{secrets.token_hex(4)}"
    yield name
    for hierarchy in CGROUP_ROOT.iterdir():  # named ones (name=systemd) too: runc uses them
        top = hierarchy / name.lstrip("/")
        if top.exists():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            with contextlib.suppress(OSError):
                os.rmdir(top)


def test_conmon_cgroup_path_is_podmans() -> None:
    assert conmon_cgroup("/podkit/podkit-abc") == "/podkit/conmon"
    assert conmon_cgroup("/my/parent/podkit-abc") == "/my/parent/conmon"
    assert conmon_cgroup("machine.slice:libpod:abc") is None  # systemd: not ours to place
    assert conmon_cgroup("") is None and conmon_cgroup(None) is None


def _run_detached(images, env, tmp_path: Path, name: str, parent: str, *command: str
                  ) -> dict:
    from podkit_image_pull import pull
    from podkit_netsetup import attach
    from podkit_runtime import BundleOptions, write_bundle
    from podkit_storage import create_container, import_image

    roots = roots_of(env)
    doc = import_image(pull(images.ref("busybox:latest"), root=roots.root, tls_verify=False),
                       roots)
    doc = create_container(doc, roots, name=name)
    doc = attach(write_bundle(doc, roots, BundleOptions(command=command,
                                                        cgroup_parent=parent)), "none")
    return loads(run_cli(f"pod-runtime run -d --input {save(doc, tmp_path, name)}", env))


def _v1_paths(pid: int) -> dict[str, str]:
    return {k: v for k, v in of_process(pid).items()
            if k not in ("unified", "name=systemd")}


def test_conmon_lives_in_the_parents_conmon_cgroup(images, podkit_env, tmp_path,
                                                   parent) -> None:
    out = _run_detached(images, podkit_env, tmp_path, "cg1", parent, "sleep", "1000")
    conmon_pid, pid = out["state"]["conmon_pid"], out["state"]["pid"]
    try:
        ours = _v1_paths(os.getpid())
        theirs = _v1_paths(conmon_pid)
        assert theirs, of_process(conmon_pid)
        # every controller: <parent>/conmon (podman's cgroupfs layout), not ours
        assert set(theirs.values()) == {f"{parent}/conmon"}, sorted(theirs.items())
        assert theirs != ours
        cid = out["container"]["id"]
        assert set(_v1_paths(pid).values()) == {f"{parent}/podkit-{cid}"}
        memory = CGROUP_ROOT / "memory" / parent.lstrip("/") / "conmon"
        assert str(conmon_pid) in (memory / "cgroup.procs").read_text().split()
        # a second container shares the directory
        out2 = _run_detached(images, podkit_env, tmp_path, "cg2", parent, "sleep", "1000")
        assert set(_v1_paths(out2["state"]["conmon_pid"]).values()) == {f"{parent}/conmon"}
        # an exec session's conmon goes there too (it is a child of ours only briefly)
        proc = run_cli("pod-runtime exec cg1 cat /proc/1/cgroup", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
    finally:
        run_cli("pod-runtime rm -f -t 0 cg1", podkit_env)
    # one conmon still there: the directory stays
    assert memory.exists()
    run_cli("pod-runtime rm -f -t 0 cg2", podkit_env)
    # the last one gone: rm removed the empty cgroup in every hierarchy
    left = [h / parent.lstrip("/") / "conmon" for h in hierarchies()
            if (h / parent.lstrip("/") / "conmon").exists()]
    assert left == []


def test_a_restarted_containers_conmon_goes_there_too(images, podkit_env, tmp_path,
                                                     parent) -> None:
    """The exit command (forked by conmon) restarts the container with a new conmon:
    it lands in <parent>/conmon as well."""
    from podkit_image_pull import pull
    from podkit_netsetup import attach
    from podkit_runtime import BundleOptions, write_bundle
    from podkit_storage import create_container, import_image

    roots = roots_of(podkit_env)
    doc = import_image(pull(images.ref("busybox:latest"), root=roots.root, tls_verify=False),
                       roots)
    doc = create_container(doc, roots, name="cg3")
    doc = attach(write_bundle(doc, roots, BundleOptions(
        command=("sh", "-c", "test -f /again && exec sleep 1000; touch /again; exit 1"),
        cgroup_parent=parent)), "none")
    first = loads(run_cli(f"pod-runtime run -d --restart on-failure:1 --input "
                          f"{save(doc, tmp_path, 'cg3')}", podkit_env))
    try:
        record = {}
        for _ in range(3000):  # until the exit command has restarted it
            record = jsonio.loads(run_cli("pod-runtime inspect cg3", podkit_env).stdout)
            record = record[0] if isinstance(record, list) else record
            if record["RestartCount"] == 1 and record["State"]["Status"] == "running":
                break
        assert record["RestartCount"] == 1 and record["State"]["Status"] == "running"
        conmon = record["State"]["ConmonPid"]
        assert conmon and conmon != first["state"]["conmon_pid"]
        assert set(_v1_paths(conmon).values()) == {f"{parent}/conmon"}
    finally:
        run_cli("pod-runtime rm -f -t 0 cg3", podkit_env)
    left = [h / parent.lstrip("/") / "conmon" for h in hierarchies()
            if (h / parent.lstrip("/") / "conmon").exists()]
    assert left == []


def test_rm_removes_the_containers_cgroup_when_runc_lost_its_state(images, podkit_env,
                                                                   tmp_path, parent) -> None:
    """runc deletes a container's cgroups itself, but not when its state is gone (runc or
    conmon killed, its state dir removed): rm then removes the empty directories in every
    hierarchy, named ones included, rather than leave them until reboot."""
    import signal

    from tests.testbed.procs import is_alive

    out = _run_detached(images, podkit_env, tmp_path, "lost", parent, "sleep", "1000")
    cid = out["container"]["id"]
    mine = f"{parent.lstrip('/')}/podkit-{cid}"
    assert [h for h in CGROUP_ROOT.iterdir() if (h / mine).is_dir()]
    for pid in (out["state"]["conmon_pid"], out["state"]["pid"]):
        os.kill(pid, signal.SIGKILL)
    for pid in (out["state"]["conmon_pid"], out["state"]["pid"]):
        for _ in range(200):
            if not is_alive(pid):
                break
            import time

            time.sleep(0.05)
    shutil.rmtree(Path(podkit_env["PODKIT_RUNROOT"]) / "runc")
    proc = run_cli("pod-runtime rm -f lost", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [h for h in CGROUP_ROOT.iterdir() if (h / mine).exists()] == []


def _warm_in_fresh_process(code: str, **env: str) -> list[str]:
    import subprocess
    import sys

    prelude = ("import os, time\nfrom podkit_runtime import _conmon_cgroup as C\n"
               "before = open('/proc/self/cgroup').read()\n")
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_warming_moves_nothing_and_ends_with_the_moves_it_expected(parent) -> None:
    """warm(): no-op moves of the process into its own cgroups, until the expected
    conmon moves are done; this process's cgroups are the same throughout."""
    lines = _warm_in_fresh_process(
        "C.warm(moves=2)\n"
        "time.sleep(0.05)\n"
        "print(C._warm['running'], open('/proc/self/cgroup').read() == before)\n"
        "import subprocess\n"
        f"p = subprocess.Popen(['sleep', '30'])\n"
        f"print(C.move(p.pid, {parent + '/conmon'!r}), C._warm['running'])\n"
        f"C.move(p.pid, {parent + '/conmon'!r})\n"
        "time.sleep(0.05)\n"
        "print(C._warm['running'], C._warm['moves'])\n"
        f"C.move(p.pid, '/')\n"  # out again, so the parent can go
        "p.kill(); p.wait()\n")
    assert lines == ["True True", "True True", "False 0"]


def test_a_warmer_never_outlives_its_bound_and_can_be_turned_off() -> None:
    lines = _warm_in_fresh_process(
        "C._WARM_MAX = 0.1\nC.warm(moves=5)\ntime.sleep(0.3)\n"
        "print(C._warm['running'])\n")
    assert lines == ["False"]
    lines = _warm_in_fresh_process("C.warm()\nprint(C._warm['running'])\n",
                                   PODKIT_NO_CGROUP_WARM="1")
    assert lines == ["False"]
