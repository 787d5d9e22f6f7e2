"""Hostile images at the storage level, from import to a container's rootfs: a layer
whose /dev is a symlink to an absolute host path, and one whose /etc/passwd is a
symlink to /dev/zero. Import keeps both as symlinks inside the layer dir; create (overlay
and vfs) keeps them as symlinks in the rootfs; diff and check read the rootfs without
following them. Every case proves a sentinel dir under tmp_path untouched (never a real
host path: the "host path" here is that sentinel dir)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from podkit_common import jsonio
from tests.storage.test_extract import snapshot
from tests.storage.test_store import _tar, image_doc

pytestmark = [pytest.mark.root]


def storage(env: dict, *args: str, doc: dict | None = None) -> subprocess.CompletedProcess:
    data = jsonio.dumps(doc) if doc is not None else None
    # A read that followed /etc/passwd -> /dev/zero would never end: the timeout says so.
    return subprocess.run(["pod-storage", *args], input=data, capture_output=True, env=env,
                          timeout=120)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """The sentinel 'host directory' the hostile /dev points at, with files in it."""
    host = tmp_path / "outside" / "hostdev"
    host.mkdir(parents=True)
    (host / "secret").write_bytes(b"host secret\n")
    (host / "sub").mkdir()
    (host / "sub" / "deeper").write_bytes(b"deeper\n")
    return host


def hostile_image(tmp_path: Path, host_dir: Path) -> dict:
    base = _tar(("bin", None, None), ("bin/sh", b"#!busybox\n", None),
                ("etc", None, None), ("dev", None, str(host_dir)),
                ("etc/passwd", None, "/dev/zero"), ("etc/group", b"root:x:0:\n", None))
    doc = image_doc(tmp_path / "img", base)
    doc["image"]["name"] = "localhost/hostile:1"
    return doc


def assert_hostile_links(top: Path, host_dir: Path) -> None:
    assert os.path.islink(top / "dev") and os.readlink(top / "dev") == str(host_dir)
    assert os.path.islink(top / "etc" / "passwd")
    assert os.readlink(top / "etc" / "passwd") == "/dev/zero"


def test_import_keeps_the_links_inside_the_layer(tmp_path, podkit_env, outside):
    before = snapshot(outside.parent)
    proc = storage(podkit_env, "import", doc=hostile_image(tmp_path, outside))
    assert proc.returncode == 0, proc.stderr
    layer = jsonio.loads(proc.stdout)["image"]["layers"][0]
    assert_hostile_links(Path(layer["diff_path"]), outside)
    # check summarises the layer (and unpacks its blob afresh) without following them.
    check = storage(podkit_env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert snapshot(outside.parent) == before


@pytest.mark.parametrize("driver", [pytest.param("overlay", marks=pytest.mark.overlay), "vfs"])
def test_create_and_diff_never_follow_them_out(tmp_path, podkit_env, outside, driver):
    before = snapshot(outside.parent)
    proc = storage(podkit_env, "import", doc=hostile_image(tmp_path, outside))
    assert proc.returncode == 0, proc.stderr
    made = storage(podkit_env, "create", "--name", "hostile", "--driver", driver,
                   doc=jsonio.loads(proc.stdout))
    assert made.returncode == 0, made.stderr
    container = jsonio.loads(made.stdout)["container"]
    assert container["driver"] == driver
    rootfs = Path(container["rootfs"])
    assert_hostile_links(rootfs, outside)
    # A fresh container changed nothing, and diff did not walk into the host dir.
    diff = storage(podkit_env, "diff", "hostile")
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.strip() == b""
    # The container adds its own link to the host dir: diff lists the link, only.
    os.symlink(str(outside), rootfs / "newlink")
    (rootfs / "etc" / "group").write_bytes(b"root:x:0:\nwheel:x:10:\n")
    diff = storage(podkit_env, "diff", "hostile")
    assert diff.returncode == 0, diff.stderr
    changes = [jsonio.loads(line) for line in diff.stdout.splitlines()]
    assert {(c["path"], c["kind"]) for c in changes} == {
        ("/newlink", "A"), ("/etc", "C"), ("/etc/group", "C")}
    assert snapshot(outside.parent) == before
    rm = storage(podkit_env, "rm", "hostile")
    assert rm.returncode == 0, rm.stderr
    assert snapshot(outside.parent) == before
    assert (outside / "secret").read_bytes() == b"host secret\n"
