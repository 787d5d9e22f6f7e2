"""Container filesystems: the vfs driver (a plain copy equal to the overlay view), counted
mounts, deep images through short links, and `diff` like podman's."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.roots import Roots
from podkit_common.schemas import SchemaSet
from tests.storage.test_store import image_doc, storage

SCHEMAS = SchemaSet(["podkit_storage"])
T = 1_600_000_000


def _tar(*infos: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in infos:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _e(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None, *, mode: int = 0o644,
       uid: int = 0, gid: int = 0, link: str = "", dev: tuple[int, int] = (0, 0),
       xattrs: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, T
    info.linkname = link
    info.devmajor, info.devminor = dev
    if kind == tarfile.DIRTYPE and mode == 0o644:
        info.mode = 0o755
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    if data is not None:
        info.size = len(data)
    return info, data


D = tarfile.DIRTYPE


def rich_image(tmp_path: Path) -> dict:
    """Two layers exercising everything a copy must keep and every whiteout form."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    base = _tar(
        _e("etc", D), _e("etc/motd", data=b"base\n", xattrs={"user.note": "kept"}),
        _e("bin", D), _e("bin/su", data=b"#!su\n", mode=0o4755),
        _e("data", D, mode=0o750, uid=1000, gid=1000),
        _e("data/owned", data=b"mine\n", mode=0o640, uid=1000, gid=1000),
        _e("data/hard1", data=b"linked\n"), _e("data/hard2", tarfile.LNKTYPE, link="data/hard1"),
        _e("dev", D), _e("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        _e("run", D), _e("run/fifo", tarfile.FIFOTYPE, mode=0o600),
        _e("lib", tarfile.SYMTYPE, link="bin"),
        _e("escape", tarfile.SYMTYPE, link=str(outside)),
        _e("gone", D), _e("gone/x", data=b"x"),
        _e("opq", D), _e("opq/old", data=b"old"),
    )
    top = _tar(
        # A dir over the lower symlink to the host: must become a dir, never write through.
        _e("escape", D), _e("escape/pwned", data=b"pwned"),
        _e(".wh.gone", data=b""),
        _e("opq", D), _e("opq/.wh..wh..opq", data=b""), _e("opq/new", data=b"new"),
        _e("etc/hostname", data=b"top\n"),
    )
    return image_doc(tmp_path, base, top)


def _out(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return jsonio.loads(proc.stdout)


def _lines(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [jsonio.loads(line) for line in proc.stdout.splitlines()]


def _created(env: dict, *args: str) -> dict:
    doc = _out(storage(env, "create", "--image", "localhost/test:1", *args))
    SCHEMAS.validate(doc, "urn:podkit:storage:container")
    return doc["container"]


@pytest.mark.root
@pytest.mark.overlay
def test_vfs_copy_equals_the_overlay_view(tmp_path, podkit_env):
    from podkit_storage._changes import plain_tree

    _out(storage(podkit_env, "import", doc=rich_image(tmp_path)))
    vfs = _created(podkit_env, "--driver", "vfs", "--name", "v")
    ovl = _created(podkit_env, "--name", "o")
    assert vfs["driver"] == "vfs" and "upper" not in vfs and vfs["mounted"] is True
    assert ovl["driver"] == "overlay"
    a, b = Path(vfs["rootfs"]), Path(ovl["rootfs"])
    assert a == Path(podkit_env["PODKIT_ROOT"]) / "containers" / vfs["id"] / "rootfs"
    copy, merged = plain_tree(a), plain_tree(b)
    assert sorted(copy) == sorted(merged)
    assert [p for p in copy if copy[p].differs(merged[p])] == []

    assert not any((tmp_path / "outside").iterdir())
    assert (a / "escape").is_dir() and not (a / "escape").is_symlink()
    assert not (a / "gone").exists()
    assert sorted(os.listdir(a / "opq")) == ["new"]
    assert (a / "etc/motd").read_text() == "base\n"
    assert os.getxattr(a / "etc/motd", "user.note") == b"kept"
    st = os.stat(a / "bin/su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == T
    owned = os.stat(a / "data/owned")
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (1000, 1000, 0o640)
    assert os.stat(a / "data/hard1").st_ino == os.stat(a / "data/hard2").st_ino
    assert stat.S_ISCHR(os.lstat(a / "dev/null").st_mode)
    assert os.lstat(a / "dev/null").st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(a / "run/fifo").st_mode)
    assert os.readlink(a / "lib") == "bin"
    with pytest.raises(OSError):
        os.getxattr(a / "opq", "trusted.overlay.opaque")

    # mount of a vfs container mounts nothing and reports its directory.
    mounted = _out(storage(podkit_env, "mount", "v"))["container"]
    assert mounted["rootfs"] == vfs["rootfs"] and mounted["mounted"] is True
    listed = {c["name"]: c for c in _lines(storage(podkit_env, "containers"))}
    assert listed["v"]["mounted"] is True and listed["v"]["driver"] == "vfs"
    for name in ("v", "o"):
        _out(storage(podkit_env, "rm", name))
    assert not a.exists() and not b.exists()


@pytest.mark.root
@pytest.mark.overlay
def test_mounts_are_counted(tmp_path, podkit_env):
    from podkit_storage._mount import is_mounted

    _out(storage(podkit_env, "import", doc=rich_image(tmp_path)))
    c = _created(podkit_env, "--name", "c")
    rootfs = Path(c["rootfs"])
    assert c["mount_count"] == 1
    assert _out(storage(podkit_env, "mount", "c"))["container"]["mount_count"] == 2
    once = _out(storage(podkit_env, "umount", "c"))["container"]
    assert (once["mount_count"], once["mounted"]) == (1, True) and is_mounted(rootfs)
    last = _out(storage(podkit_env, "umount", "c"))["container"]
    assert (last["mount_count"], last["mounted"]) == (0, False) and not is_mounted(rootfs)
    assert _out(storage(podkit_env, "umount", "c"))["container"]["mount_count"] == 0

    for _ in range(3):
        _out(storage(podkit_env, "mount", "c"))
    forced = _out(storage(podkit_env, "umount", "--force", "c"))["container"]
    assert (forced["mount_count"], forced["mounted"]) == (0, False) and not is_mounted(rootfs)

    # A mount removed behind our back does not leave a count that keeps lying.
    _out(storage(podkit_env, "mount", "c"))
    _out(storage(podkit_env, "mount", "c"))
    subprocess.run(["umount", str(rootfs)], check=True)
    again = _out(storage(podkit_env, "mount", "c"))["container"]
    assert again["mount_count"] == 1 and is_mounted(rootfs)

    # rm unmounts whatever the count says, and forgets the count.
    _out(storage(podkit_env, "mount", "c"))
    _out(storage(podkit_env, "rm", "c"))
    assert not is_mounted(rootfs)
    assert not (Path(podkit_env["PODKIT_RUNROOT"]) / "storage" / f"{c['id']}.json").exists()


@pytest.mark.root
def test_overlay_failure_falls_back_to_vfs_with_a_note(tmp_path, monkeypatch):
    from podkit_storage import _rootfs, create_container, import_image, list_containers

    roots = Roots(tmp_path / "root", tmp_path / "run")
    doc = import_image(rich_image(tmp_path), roots)

    def broken(*_args, **_kw):
        raise errors.RuntimeFailure("mount overlay on /x: No such device")

    monkeypatch.setattr(_rootfs, "mount_overlay", broken)
    with pytest.raises(errors.RuntimeFailure):
        create_container(doc, roots, name="strict", driver="overlay")
    assert list_containers(roots) == []
    assert not (roots.root / "containers" / "names" / "strict").exists()

    c = create_container(doc, roots, name="auto")["container"]
    assert c["driver"] == "vfs" and "No such device" in c["note"] and "vfs" in c["note"]
    assert (Path(c["rootfs"]) / "opq/new").read_text() == "new"
    cdir = roots.root / "containers" / c["id"]
    assert sorted(os.listdir(cdir)) == ["container.json", "rootfs"]
    assert list_containers(roots)[0]["driver"] == "vfs"


@pytest.mark.root
@pytest.mark.overlay
def test_an_image_of_120_layers_mounts_under_a_long_root(tmp_path, podkit_env):
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "root"
    env = {**podkit_env, "PODKIT_ROOT": str(deep)}
    layers = [_tar(_e("layers", D), _e(f"layers/f{i:03d}", data=f"{i}\n".encode()))
              for i in range(120)]
    _out(storage(env, "import", doc=image_doc(tmp_path, *layers)))
    c = _created(env, "--driver", "overlay")
    assert c["driver"] == "overlay" and len(c["lower"]) == 120
    shown = sorted(os.listdir(Path(c["rootfs"]) / "layers"))
    assert shown == [f"f{i:03d}" for i in range(120)]
    assert all((Path(c["rootfs"]) / "layers" / f"f{i:03d}").read_text() == f"{i}\n"
               for i in range(120))
    links = deep / "overlay" / "l"
    assert len(os.listdir(links)) == 120
    assert all(len(n) == 26 and not os.path.isabs(os.readlink(links / n))
               for n in os.listdir(links))
    _out(storage(env, "rm", c["id"]))


def test_short_links_keep_120_lowers_within_a_page(tmp_path):
    from podkit_storage._mount import overlay_options
    from podkit_storage._overlay_links import link_name

    root = tmp_path / ("x" * 200)
    lower = [root / "layers" / f"{i:064x}" / "diff" for i in range(120)]
    links = [root / "overlay" / "l" / link_name(p) for p in lower]
    assert len(set(links)) == 120
    data = overlay_options(links, root / "containers" / ("c" * 64) / "upper",
                           root / "containers" / ("c" * 64) / "work", base=root / "overlay")
    assert data.startswith("lowerdir=l/") and len(data) < 4096
    assert len(overlay_options(lower, root / "u", root / "w")) > 4096


def _write_changes(rootfs: Path) -> None:
    (rootfs / "etc/motd").write_text("changed\n")
    (rootfs / "data/new").write_text("new\n")
    os.unlink(rootfs / "data/owned")
    (rootfs / "made/deep").mkdir(parents=True)
    (rootfs / "made/deep/file").write_text("f")
    os.chmod(rootfs / "bin/su", 0o755)


@pytest.mark.root
@pytest.mark.overlay
def test_diff_reports_what_the_container_changed(tmp_path, podkit_env):
    import shutil

    _out(storage(podkit_env, "import", doc=rich_image(tmp_path)))
    common = [
        {"path": "/bin", "kind": "C"}, {"path": "/bin/su", "kind": "C"},
        {"path": "/data", "kind": "C"}, {"path": "/data/new", "kind": "A"},
        {"path": "/data/owned", "kind": "D"},
        {"path": "/etc", "kind": "C"}, {"path": "/etc/motd", "kind": "C"},
        {"path": "/made", "kind": "A"}, {"path": "/made/deep", "kind": "A"},
        {"path": "/made/deep/file", "kind": "A"},
    ]
    for driver, opq in (("overlay", [{"path": "/opq", "kind": "D"},
                                     {"path": "/opq/fresh", "kind": "A"}]),
                        ("vfs", [{"path": "/opq", "kind": "C"},
                                 {"path": "/opq/fresh", "kind": "A"},
                                 {"path": "/opq/new", "kind": "D"}])):
        c = _created(podkit_env, "--driver", driver)
        assert _lines(storage(podkit_env, "diff", c["id"])) == []
        rootfs = Path(c["rootfs"])
        _write_changes(rootfs)
        shutil.rmtree(rootfs / "opq")
        (rootfs / "opq").mkdir()
        (rootfs / "opq/fresh").write_text("f")
        got = _lines(storage(podkit_env, "diff", c["id"]))
        for line in got:
            SCHEMAS.validate(line, "urn:podkit:storage:change")
        want = sorted(common + opq, key=lambda e: e["path"])
        assert got == want, driver
        # `changes` is the same command; an unmounted container still knows its changes.
        _out(storage(podkit_env, "umount", c["id"]))
        assert _lines(storage(podkit_env, "changes", c["id"])) == want
        _out(storage(podkit_env, "rm", c["id"]))
