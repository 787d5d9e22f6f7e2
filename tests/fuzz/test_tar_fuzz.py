"""The layer extractor under random and adversarial tar streams (tests/fuzz/tarstreams.py).

Whatever the stream, nothing outside the target root changes: a snapshot of tmp_path
(sentinel files, a sentinel directory and a symlink next to the root, the root's parent)
is identical after every example, and the extraction either succeeds or raises a podkit
error a user can read (UnsafeContent, VerificationFailed for a corrupt stream, ...),
never a bare Python exception, and leaks no file descriptor.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from podkit_common.errors import PodkitError
from podkit_storage._extract import UnpackOptions, apply_layer
from tests.fuzz.strategies import FUZZ, examples
from tests.fuzz.tarstreams import Member, build_tar, layer_streams
from tests.storage.test_extract import open_fds, snapshot

pytestmark = [pytest.mark.root]


def _outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "sentinel").write_bytes(b"do not touch\n")
    (out / "dir" / "inner").write_bytes(b"inner\n")
    os.symlink(out / "sentinel", out / "link-to-sentinel")
    os.mkfifo(out / "fifo")
    return out


def _fresh_root(tree: Path, outside: Path) -> Path:
    root = tree / "root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    # Present before the layer, as a lower layer's content would be in a flattened
    # rootfs: links already pointing out, that members may try to write through.
    os.symlink(outside, root / "lnk")
    os.symlink("../../outside/sentinel", root / "passwd")
    (root / "etc").mkdir()
    os.symlink(outside / "dir", root / "etc" / "dir")
    return root


def _outside_root(tmp_path: Path, root: Path) -> dict:
    """The snapshot of everything but the root (and the time of its parent, which the
    test itself changes by making a fresh root per example)."""
    snap = snapshot(tmp_path, skip=root)
    snap.pop(str(root.parent.relative_to(tmp_path)))
    return snap


def _extract(data: bytes, root: Path) -> PodkitError | None:
    try:
        apply_layer(io.BytesIO(data), root, options=UnpackOptions(max_bytes=1 << 20))
    except PodkitError as exc:
        assert type(exc) is not PodkitError, f"unclassified error: {exc.message}"
        assert exc.message and "unpack layer" in exc.message
        return exc
    return None


def test_random_hostile_streams_never_write_outside_the_root(tmp_path):
    outside = _outside(tmp_path)
    tree = tmp_path / "tree"
    tree.mkdir()
    root = _fresh_root(tree, outside)
    before = _outside_root(tmp_path, root)
    fds = open_fds()
    outcomes: dict[str, int] = {}

    @settings(FUZZ, max_examples=examples(120))
    @given(stream=layer_streams(str(outside)))
    def check(stream):
        root = _fresh_root(tree, outside)
        exc = _extract(stream.data(), root)
        key = "ok" if exc is None else type(exc).__name__
        outcomes[key] = outcomes.get(key, 0) + 1
        # As root nothing in a layer needs a permission we lack: EPERM would be a
        # misreported layer fault (a hard link to a directory once was).
        assert key != "PermissionDenied", exc
        assert _outside_root(tmp_path, root) == before
        assert open_fds() <= fds

    check()
    # The strategy reaches both ends: streams that unpack and streams refused.
    assert outcomes.get("ok") and len(outcomes) > 1, outcomes


ESCAPES = [
    # a symlink out, then a file through it
    [Member("evil", tarfile.SYMTYPE, target="/"), Member("evil/OUT", tarfile.REGTYPE, data=b"x")],
    [Member("evil", tarfile.SYMTYPE, target="../../outside"),
     Member("evil/sentinel", tarfile.REGTYPE, data=b"owned")],
    # a chain of links, each a step further up
    [Member("l1", tarfile.SYMTYPE, target=".."), Member("l1/l2", tarfile.SYMTYPE, target=".."),
     Member("l1/l2/outside/sentinel", tarfile.REGTYPE, data=b"owned")],
    # a hard link to a file outside, then a write into the link
    [Member("h", tarfile.LNKTYPE, target="../../outside/sentinel"),
     Member("h", tarfile.REGTYPE, data=b"owned")],
    # a hard link to a symlink that points out
    [Member("s", tarfile.SYMTYPE, target="/OUTSIDE"), Member("h", tarfile.LNKTYPE, target="s"),
     Member("h", tarfile.REGTYPE, data=b"x")],
    # a file over the pre-existing symlink "passwd" -> ../../outside/sentinel
    [Member("passwd", tarfile.REGTYPE, data=b"owned")],
    # a directory entry and a whiteout through the pre-existing "lnk" -> outside
    [Member("lnk/newdir", tarfile.DIRTYPE, mode=0o777), Member("lnk/.wh.sentinel",
                                                                 tarfile.REGTYPE),
     Member("lnk/dir/.wh..wh..opq", tarfile.REGTYPE), Member("etc/dir/.wh.inner",
                                                              tarfile.REGTYPE)],
    # a file over the fifo's name through the link, and a whiteout of "..":
    [Member("lnk/fifo", tarfile.REGTYPE, data=b"x"), Member(".wh..", tarfile.REGTYPE),
     Member("a/.wh...", tarfile.REGTYPE)],
]


@pytest.mark.parametrize("members", ESCAPES, ids=range(len(ESCAPES)))
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_known_escape_shapes(members, fmt, tmp_path):
    outside = _outside(tmp_path)
    tree = tmp_path / "tree"
    tree.mkdir()
    root = _fresh_root(tree, outside)
    before = snapshot(tmp_path, skip=root)
    _extract(build_tar(members, fmt), root)
    assert snapshot(tmp_path, skip=root) == before


def test_a_hard_link_to_a_directory_is_the_layer_s_fault(tmp_path):
    """Found by the fuzzer: link(2) on a directory says EPERM, once reported as
    PermissionDenied ("run as root") although the layer is what is wrong."""
    from podkit_common.errors import UnsafeContent

    root = tmp_path / "root"
    root.mkdir()
    data = build_tar([Member("d", tarfile.DIRTYPE, mode=0o755),
                      Member("h", tarfile.LNKTYPE, target="d")], tarfile.PAX_FORMAT)
    with pytest.raises(UnsafeContent, match="hard link h to the directory d"):
        apply_layer(io.BytesIO(data), root)
