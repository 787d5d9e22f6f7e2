"""Oracle: the rootfs pod-storage makes (overlay over the unpacked layers) is exactly
the tree `umoci unpack` makes from the same image: names, types, modes, owners, link
targets, xattrs (overlay's own trusted.* ones aside), contents and hard links."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from podkit_common import jsonio
from tests.testbed import layers
from tests.testbed.images import build_image
from tests.testbed.push import push
from tests.testbed.shell import sh
from tests.testbed.skopeo import Skopeo, needs_skopeo

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.registry, needs_skopeo,
              pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci")]


def _special_layer() -> bytes:
    """A setuid file with a user.* xattr, a setgid dir with one, a whiteout, a fifo."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        d = tarfile.TarInfo("opt")
        d.type, d.mode, d.mtime, d.uid, d.gid = tarfile.DIRTYPE, 0o2775, layers.EPOCH, 0, 50
        d.pax_headers = {"SCHILY.xattr.user.kind": "dir"}
        tf.addfile(d)
        data = b"#!/bin/sh\necho su\n"
        f = tarfile.TarInfo("opt/su-helper")
        f.size, f.mode, f.mtime, f.uid, f.gid = len(data), 0o4755, layers.EPOCH, 0, 0
        f.pax_headers = {"SCHILY.xattr.user.podkit": "oracle"}
        tf.addfile(f, io.BytesIO(data))
        p = tarfile.TarInfo("opt/fifo")
        p.type, p.mode, p.mtime = tarfile.FIFOTYPE, 0o640, layers.EPOCH
        tf.addfile(p)
        w = tarfile.TarInfo("etc/.wh.passwd")
        w.mtime = layers.EPOCH
        tf.addfile(w, io.BytesIO(b""))
    return out.getvalue()


def _tree(root: Path) -> dict[str, tuple]:
    entries: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            st = p.lstat()
            xattrs = {}
            for x in os.listxattr(p, follow_symlinks=False):
                if not x.startswith("trusted."):
                    xattrs[x] = os.getxattr(p, x, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(p).encode()
            elif stat.S_ISREG(st.st_mode):
                body = p.read_bytes()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            else:
                body = b""
            entries[rel] = (oct(st.st_mode), st.st_uid, st.st_gid, body, sorted(xattrs.items()))
    for group in inodes.values():
        for rel in group:
            entries[rel] += (tuple(sorted(group)),)
    return entries


@pytest.fixture(scope="module")
def special_ref(registry) -> str:
    img = build_image([layers.base_layer_tar(), layers.second_layer_tar(), _special_layer()])
    push(registry.url, "oracle", "special", img)
    return f"docker://{registry.url}/oracle:special"


@pytest.mark.parametrize("which", ["busybox:oci", "special"])
def test_podkit_rootfs_equals_umoci_unpack(which, images, special_ref, tmp_path, podkit_env):
    ref = images.ref("busybox:oci") if which == "busybox:oci" else special_ref
    proc = sh(f"pod-image-pull --tls-verify=false {ref} | pod-storage import"
              " | pod-storage create --name oracle", env=podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    rootfs = Path(jsonio.loads(proc.stdout)["container"]["rootfs"])

    Skopeo(tmp_path / "skopeo").copy(ref, f"oci:{tmp_path / 'layout'}:img")
    bundle = tmp_path / "bundle"
    umoci = subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'layout'}:img",
                            str(bundle)], capture_output=True, timeout=120)
    assert umoci.returncode == 0, umoci.stderr.decode()

    ours, theirs = _tree(rootfs), _tree(bundle / "rootfs")
    assert sorted(ours) == sorted(theirs)
    assert [k for k in ours if ours[k] != theirs[k]] == []
    if which == "special":
        assert ours["opt/su-helper"][0] == oct(stat.S_IFREG | 0o4755)
        assert ("user.podkit", b"oracle") in ours["opt/su-helper"][4]
        assert "etc/passwd" not in ours
    else:
        assert layers.HARDLINK_PATH.lstrip("/") in ours[layers.HELLO_PATH.lstrip("/")][5]
