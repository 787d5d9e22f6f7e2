"""Private state stays private, and nothing of ours leaks into a container.

- root, runroot and every per-container state dir are 0700; every socket and fifo under
  them (attach socket, ctl/winsz fifos) has no group or other access;
- a container's process holds fds 0-2 only, under `pod run` and `pod exec`, with and
  without a terminal (cf. CVE-2024-21626: a leaked fd is a way out);
- conmon holds only what it is meant to: its own container's bundle files, log, cgroup
  files, /dev/null, pipes, sockets, event fds, the terminal: nothing of another container
  and nothing of the store (a lock, a blob) from the `pod` that started it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from tests.pod.test_cli_containers import bare, ok, pod
from tests.runtime.test_tty import PtySession
from tests.security.conftest import inspect

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

#: prints the fds of the shell that is the container's (or exec's) process itself
#: (`; true` keeps busybox sh from exec'ing ls in its place)
LIST_FDS = 'echo BEGIN; ls -1 /proc/$$/fd; echo END; true'


def private(path: Path) -> bool:
    return os.lstat(path).st_mode & 0o077 == 0


def walk_state(base: Path):
    """Every entry under base, not crossing into mounts (container rootfs, /dev/shm)."""
    for top, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(top, d))]
        for name in dirs + files:
            yield Path(top, name)


def test_state_dirs_are_0700_and_sockets_and_fifos_private(two_running) -> None:
    env = two_running
    root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
    # the test bed made both roots 0755 beforehand: podkit took the access away
    assert private(root) and private(runroot), (oct(root.stat().st_mode),
                                                oct(runroot.stat().st_mode))
    for name in ("alpha", "beta"):
        cid = inspect(env, name)["Id"]
        for d in (root / "containers" / cid, root / "runtime" / "containers" / cid,
                  runroot / "bundles" / cid, runroot / "runtime" / cid):
            assert d.is_dir() and private(d), (d, oct(d.stat().st_mode))
    specials = [p for p in walk_state(runroot) if stat.S_ISSOCK(os.lstat(p).st_mode)
                or stat.S_ISFIFO(os.lstat(p).st_mode)]
    specials += [p for p in walk_state(root) if stat.S_ISSOCK(os.lstat(p).st_mode)
                 or stat.S_ISFIFO(os.lstat(p).st_mode)]
    names = {p.name for p in specials}
    assert {"attach", "ctl", "winsz"} <= names, names  # they were looked at
    loose = [(str(p), oct(os.lstat(p).st_mode)) for p in specials if not private(p)]
    assert loose == []


def fds_printed(text: str) -> list[str]:
    body = text.replace("\r", "").split("BEGIN\n", 1)[1].split("END", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def test_only_stdio_reaches_the_container_without_a_terminal(two_running, images) -> None:
    env = two_running
    run = pod(env, "run", "--rm", bare(images), "sh", "-c", LIST_FDS)
    assert fds_printed(ok(run)) == ["0", "1", "2"]
    interactive = pod(env, "run", "--rm", "-i", bare(images), "sh", "-c", LIST_FDS, input="")
    assert fds_printed(ok(interactive)) == ["0", "1", "2"]
    assert fds_printed(ok(pod(env, "exec", "beta", "sh", "-c", LIST_FDS))) == ["0", "1", "2"]
    assert fds_printed(ok(pod(env, "exec", "-i", "beta", "sh", "-c", LIST_FDS,
                              input=""))) == ["0", "1", "2"]
    # seen from the host: the container's first process holds 0-2 only
    pid = inspect(env, "beta")["State"]["Pid"]
    assert sorted(os.listdir(f"/proc/{pid}/fd"), key=int) == ["0", "1", "2"]


def test_only_stdio_reaches_the_container_with_a_terminal(two_running, images) -> None:
    env = two_running
    for argv in (["pod", "run", "--rm", "-it", bare(images), "sh", "-c", LIST_FDS],
                 ["pod", "exec", "-it", "beta", "sh", "-c", LIST_FDS]):
        session = PtySession(argv, env)
        try:
            # the terminal echoes nothing of ours; the shell prints BEGIN, fds, END
            printed = session.expect(rb"BEGIN\r?\n[\s\S]*?END").group(0).decode()
            assert session.wait() == 0
        finally:
            session.close()
        assert fds_printed(printed) == ["0", "1", "2"], (argv, printed)


def fd_targets(pid: int) -> dict[str, str]:
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
    return out


def test_conmon_holds_only_its_own_containers_files(two_running) -> None:
    env = two_running
    root, runroot = env["PODKIT_ROOT"], env["PODKIT_RUNROOT"]
    alpha, beta = inspect(env, "alpha"), inspect(env, "beta")
    for me, other in ((alpha, beta), (beta, alpha)):
        cid = me["Id"]
        targets = fd_targets(me["State"]["ConmonPid"])
        allowed = (f"{runroot}/bundles/{cid}/", f"{root}/runtime/containers/{cid}/",
                   f"{runroot}/runtime/{cid}/", "/sys/fs/cgroup/", "/dev/pts/")
        unexpected = {fd: t for fd, t in targets.items()
                      if not (t in ("/dev/null", "/dev/ptmx")
                              or re.match(r"(pipe|socket|anon_inode):", t)
                              or t.startswith(allowed))}
        assert unexpected == {}, unexpected
        assert not any(other["Id"] in t for t in targets.values())
        assert not any(t.startswith((f"{root}/locks", f"{root}/blobs", f"{root}/layers"))
                       for t in targets.values())
        # and it is running this container's log and fifos, i.e. the check looked
        assert any(t.endswith(f"/{cid}/ctl") for t in targets.values()), targets


def test_runc_init_of_a_created_container_holds_nothing_of_conmon_or_pod(
        podkit_env, images, needs_conmon) -> None:
    """Between `runc create` and `runc start` the container's process is `runc init`:
    besides 0-2 it may hold runc's own exec fifo and its Go runtime's epoll and pipe
    (all close-on-exec); nothing conmon or pod had open (sockets, logs, locks, fifos)."""
    import json
    import subprocess

    env = podkit_env
    runroot = env["PODKIT_RUNROOT"]
    pipeline = (f"pod-image-pull --tls-verify=false {images.ref('busybox:latest')} "
                "| pod-storage import | pod-storage create --name pre "
                "| pod-runtime bundle -- sleep 100 | pod-runtime create")
    made = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], env=env,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    state = json.loads(made.stdout)["state"]
    cid = json.loads(made.stdout)["container"]["id"]
    try:
        assert state["status"] == "created"
        assert "runc" in Path(f"/proc/{state['pid']}/cmdline").read_text()
        targets = fd_targets(state["pid"])
        assert {"0", "1", "2"} <= set(targets)
        unexpected = {fd: t for fd, t in targets.items() if fd not in ("0", "1", "2")
                      and not (t.startswith(f"{runroot}/runc/{cid}/")
                               or re.match(r"(pipe|anon_inode):", t))}
        assert unexpected == {}, targets
    finally:
        subprocess.run(["pod-runtime", "rm", "--force", cid], env=env,
                       capture_output=True, timeout=120)
