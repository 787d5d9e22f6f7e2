"""A container cannot reach the host's podkit root or runroot, nor another container's
files; `pod system reset` deletes only what podkit made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pod.test_cli_containers import bare, ok, pod
from tests.security.conftest import inspect
from tests.testbed.env import mounts_under

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


def test_a_container_sees_neither_the_roots_nor_another_container(two_running) -> None:
    env = two_running
    root, runroot = env["PODKIT_ROOT"], env["PODKIT_RUNROOT"]
    alpha = inspect(env, "alpha")
    # alpha's marker is really there, in alpha
    assert ok(pod(env, "exec", "alpha", "cat", "/alpha-marker-7f3")) == "alpha-private\n"
    probe = (
        f"for p in {root} {runroot} /proc/1/root{root} /proc/1/root{runroot} "
        f"/proc/1/root/alpha-marker-7f3; do test -e $p && echo VISIBLE $p; done; "
        "find / -xdev -name 'alpha-marker-7f3' 2>/dev/null | sed 's/^/FOUND /'; "
        f"find / -path /proc -prune -o -path /sys -prune -o -name '*{alpha['Id'][:16]}*' "
        "-print 2>/dev/null | sed 's/^/FOUND /'; "
        "cat /proc/self/mountinfo; true")
    out = ok(pod(env, "exec", "beta", "sh", "-c", probe))
    assert "VISIBLE" not in out and "FOUND" not in out, out
    mountinfo = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert mountinfo, out  # the probe ran to the end
    points = [fields[4] for fields in mountinfo]
    assert not any(p.startswith((root, runroot)) for p in points), points
    # nothing of alpha (its id names its upper dir, bundle and rootfs) is mounted in beta
    assert alpha["Id"] not in out
    # and the host's view agrees: beta's root is its own rootfs, not the host's
    beta_pid = inspect(env, "beta")["State"]["Pid"]
    assert os.stat(f"/proc/{beta_pid}/root").st_ino != os.stat("/").st_ino or \
        os.stat(f"/proc/{beta_pid}/root").st_dev != os.stat("/").st_dev


def test_system_reset_deletes_only_what_podkit_made(podkit_env, images, needs_conmon,
                                                    tmp_path: Path) -> None:
    env = podkit_env
    root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
    outside = tmp_path / "outside"
    (outside / "volume-src").mkdir(parents=True)
    (outside / "volume-src" / "data.txt").write_text("the user's data")
    (outside / "sentinel").write_text("untouched")
    # a user's own files inside the roots, and links out of them
    (root / "notes.txt").write_text("mine")
    (root / "my-dir").mkdir()
    (root / "my-dir" / "kept.bin").write_bytes(b"\0" * 10)
    (root / "link-out").symlink_to(outside)
    (runroot / "user.sock.txt").write_text("mine too")
    ref = bare(images)
    ok(pod(env, "run", "-d", "--tls-verify=false", "--name", "web", "-v",
           f"{outside / 'volume-src'}:/data", ref, "sleep", "1000"))
    ok(pod(env, "run", "--name", "done", "-v", "named:/vol", ref, "sh", "-c",
           "echo hi > /vol/x"))
    ok(pod(env, "network", "create", "resetnet"))
    made_root = {p.name for p in root.iterdir()} - {"notes.txt", "my-dir", "link-out"}
    assert {"containers", "layers", "images", "runtime", "volumes"} <= made_root
    before = sorted(str(p) for p in outside.rglob("*"))
    ok(pod(env, "system", "reset", "--force"))
    # podkit's own entries are gone ...
    assert sorted(p.name for p in root.iterdir()) == ["link-out", "my-dir", "notes.txt"]
    assert sorted(p.name for p in runroot.iterdir()) == ["user.sock.txt"]
    assert mounts_under(tmp_path) == []
    # ... the user's stay, and nothing outside the roots was touched (not even through
    # the bind mount of a running container or a link)
    assert (root / "notes.txt").read_text() == "mine"
    assert (root / "my-dir" / "kept.bin").stat().st_size == 10
    assert (root / "link-out").is_symlink()
    assert (runroot / "user.sock.txt").read_text() == "mine too"
    assert sorted(str(p) for p in outside.rglob("*")) == before
    assert (outside / "volume-src" / "data.txt").read_text() == "the user's data"
    assert (outside / "sentinel").read_text() == "untouched"
    # and podkit starts afresh there
    assert ok(pod(env, "ps", "-a", "--format", "json")) == "[]\n"
    assert "resetnet" not in ok(pod(env, "network", "ls"))
