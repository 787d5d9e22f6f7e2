"""The layer extractor: same tree as GNU tar, nothing written outside the root, verified.

Tar streams are produced with Python's tarfile or GNU tar (as producers only) or as raw
bytes for malformed cases; the extraction under test is podkit's own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import subprocess
import tarfile
import threading
import time
import zlib
from pathlib import Path

import pytest
import zstandard

from podkit_common.errors import (
    NotImplementedYet,
    PodkitError,
    ResourceExhausted,
    UnsafeContent,
    VerificationFailed,
)
from podkit_storage import _rootdir
from podkit_storage._extract import LayerStats, UnpackOptions, apply_layer, clean_name

IS_ROOT = os.geteuid() == 0


def as_root(test):
    """Needs root: chown, mknod, trusted.* xattrs."""
    return pytest.mark.root(pytest.mark.skipif(not IS_ROOT, reason="needs root")(test))


# --- building layers --------------------------------------------------------------------

def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *, link: str = "",
           mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: float = 1_600_000_000,
           pax: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    info.uid, info.gid, info.mtime = uid, gid, mtime
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.pax_headers = pax or {}
    return info, data


def d(name, **kw):
    return member(name, tarfile.DIRTYPE, mode=kw.pop("mode", 0o755), **kw)


def sym(name, target, **kw):
    return member(name, tarfile.SYMTYPE, link=target, **kw)


def hard(name, target, **kw):
    return member(name, tarfile.LNKTYPE, link=target, **kw)


def tar_bytes(*members, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def raw_header(name: bytes, *, size: int = 0, kind: bytes = b"0",
               size_field: bytes | None = None) -> bytes:
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = size_field or b"%011o\0" % size
    h[136:148] = b"%011o\0" % 1_600_000_000
    h[156:157] = kind
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def unpack(data: bytes, dest: Path, **kw) -> LayerStats:
    dest.mkdir(exist_ok=True)
    kw.setdefault("options", UnpackOptions(same_owner=IS_ROOT))
    return apply_layer(io.BytesIO(data), dest, **kw)


def snapshot(top: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Everything a user could notice about a tree, by relative path; hard links grouped."""
    out: dict[str, tuple] = {}
    first_by_inode: dict[int, str] = {}
    paths = [top]
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(n for n in dirnames if Path(dirpath, n) != skip)
        paths += [Path(dirpath, n) for n in sorted(dirnames + filenames)]
    for p in paths:
        st = p.lstat()
        rel = str(p.relative_to(top))
        kind = stat.S_IFMT(st.st_mode)
        content = (hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(kind) else
                   os.readlink(p) if stat.S_ISLNK(kind) else None)
        xattrs = {n: os.getxattr(p, n, follow_symlinks=False)
                  for n in sorted(os.listxattr(p, follow_symlinks=False))}
        group = first_by_inode.setdefault(st.st_ino, rel) if st.st_nlink > 1 else None
        out[rel] = (st.st_mode, st.st_uid, st.st_gid, None if stat.S_ISDIR(kind) else st.st_size,
                    content, st.st_rdev, st.st_mtime_ns, xattrs, group)
    return out


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# --- names ------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "clean"), [
    (b"usr/bin/sh", b"usr/bin/sh"), (b"./usr/bin/", b"usr/bin"), (b"/etc/passwd", b"etc/passwd"),
    (b"../../etc/passwd", b"etc/passwd"), (b"a/../../b", b"b"), (b"a//b/./c", b"a/b/c"),
    (b".", b""), (b"./", b""), (b"", b""), (b"..", b""), (b"a/..", b""), (b".bashrc", b".bashrc"),
    (b"a/.hidden/..x", b"a/.hidden/..x"), (b"a/b/../../../..", b""),
])
def test_names_are_cleaned_lexically(raw, clean):
    assert clean_name(raw) == clean


# --- a normal tree, against GNU tar -----------------------------------------------------

CAP_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def build_tree(src: Path) -> None:
    """A tree with every member type and the metadata extraction must keep."""
    (src / "etc").mkdir(parents=True)
    (src / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (src / "bin").mkdir()
    (src / "bin/big").write_bytes(os.urandom(3 << 20) + bytes(1 << 20))
    (src / "bin/empty").write_bytes(b"")
    (src / "bin/ping").write_bytes(b"\x7fELF ping")
    os.setxattr(src / "bin/ping", "security.capability", CAP_NET_RAW)
    (src / "bin/su").write_bytes(b"\x7fELF su")
    os.chmod(src / "bin/su", 0o4755)
    os.link(src / "bin/su", src / "bin/su-again")
    os.symlink("su", src / "bin/su-link")
    os.symlink("/etc/passwd", src / "etc/abs-link")
    os.symlink("../nowhere", src / "etc/dangling")
    (src / "home/app/.config").mkdir(parents=True)
    (src / "home/app/.config/x").write_text("x")
    os.chown(src / "home/app/.config/x", 1000, 1000)
    os.chown(src / "home/app", 1000, 1000)
    os.setxattr(src / "home/app", "user.note", b"kept")
    (src / "srv").mkdir(mode=0o2775)
    os.chmod(src / "srv", 0o2775)
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    (src / "ro").mkdir()
    (src / "ro/file").write_text("read-only dir")
    os.chmod(src / "ro", 0o555)
    os.mkfifo(src / "fifo")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    os.chown(src / "loop9", 0, 6, follow_symlinks=False)
    for i, p in enumerate(sorted(src.rglob("*"), reverse=True)):
        t = 1_500_000_000_123_456_789 + i * 1_000_000_007
        os.utime(p, ns=(t, t), follow_symlinks=False)
    os.utime(src, ns=(1_400_000_000_000_000_001,) * 2)


@as_root
@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_tree_matches_gnu_tar(tmp_path, monkeypatch, resolver):
    if resolver == "walk":
        monkeypatch.setattr(_rootdir, "_openat2_usable", False)
    src, ours, theirs = tmp_path / "src", tmp_path / "ours", tmp_path / "theirs"
    src.mkdir()
    build_tree(src)
    layer = tmp_path / "layer.tar"
    subprocess.run(["tar", "--format=posix", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                    "-C", src, "-cf", layer, "."], check=True)
    theirs.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", layer,
                    "-C", theirs], check=True)
    data = layer.read_bytes()
    with tarfile.open(layer) as tf:
        count = len(tf.getmembers())
    fds = open_fds()
    stats = unpack(data, ours)
    assert open_fds() == fds
    assert stats == LayerStats("sha256:" + hashlib.sha256(data).hexdigest(), len(data), count)
    assert snapshot(ours) == snapshot(theirs)
    mine = snapshot(ours)
    assert mine == snapshot(src)
    assert mine["bin/ping"][7] == {"security.capability": CAP_NET_RAW}
    assert stat.S_IMODE(mine["bin/su"][0]) == 0o4755
    assert mine["home/app/.config/x"][1:3] == (1000, 1000)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_and_links(tmp_path, fmt):
    deep = "/".join(["d" * 60] * 2) + "/" + "f" * 40         # needs the ustar prefix field
    longer = "/".join(["e" * 90] * 4) + "/file"               # needs pax or GNU 'L'
    link = "t" * 150                                          # needs pax or GNU 'K'
    members = [member(deep, data=b"deep")]
    if fmt != tarfile.USTAR_FORMAT:
        members += [member(longer, data=b"long"), sym("s", link), hard("h", longer)]
    unpack(tar_bytes(*members, fmt=fmt), tmp_path / "out")
    assert (tmp_path / "out" / deep).read_bytes() == b"deep"
    if fmt != tarfile.USTAR_FORMAT:
        assert (tmp_path / "out" / longer).read_bytes() == b"long"
        assert os.readlink(tmp_path / "out/s") == link
        assert (tmp_path / "out/h").stat().st_ino == (tmp_path / "out" / longer).stat().st_ino


def test_pax_mtime_keeps_nanoseconds(tmp_path):
    layer = tar_bytes(member("f", data=b"x", pax={"mtime": "1500000000.123456789"}),
                      d("dir", pax={"mtime": "-1.5"}), member("dir/child"))
    unpack(layer, tmp_path / "out")
    assert (tmp_path / "out/f").stat().st_mtime_ns == 1_500_000_000_123_456_789
    assert (tmp_path / "out/dir").stat().st_mtime_ns == -1_500_000_000


def test_base256_numbers(tmp_path):
    size = b"\x80" + (5).to_bytes(11, "big")
    layer = raw_header(b"b256", size_field=size) + pad(b"hello") + bytes(1024)
    unpack(layer, tmp_path / "out")
    assert (tmp_path / "out/b256").read_bytes() == b"hello"


@as_root
def test_large_ids_use_base256_in_gnu_format(tmp_path):
    layer = tar_bytes(member("f", uid=3_000_000, gid=4_000_000), fmt=tarfile.GNU_FORMAT)
    assert b"\x80" in layer[108:124]
    unpack(layer, tmp_path / "out")
    st = (tmp_path / "out/f").stat()
    assert (st.st_uid, st.st_gid) == (3_000_000, 4_000_000)


def test_global_pax_header_applies_but_cannot_rename(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"mtime": "1234567890", "path": "evil"}) as tf:
        info, _ = member("f", mtime=1)
        tf.addfile(info)
    unpack(out.getvalue(), tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["f"]
    assert (tmp_path / "out/f").stat().st_mtime_ns == 1_234_567_890 * 10**9


def test_same_owner_false_leaves_files_to_the_caller(tmp_path):
    unpack(tar_bytes(member("f", uid=1234, gid=1234), d("d", uid=1234, mode=0o500),
                     member("d/x")),
           tmp_path / "out", options=UnpackOptions(same_owner=False))
    assert (tmp_path / "out/f").stat().st_uid == os.geteuid()
    assert stat.S_IMODE((tmp_path / "out/d").stat().st_mode) == 0o500


# --- compression and the diff_id --------------------------------------------------------

def _zstd_two_frames(data: bytes) -> bytes:
    half = len(data) // 2
    return (zstandard.ZstdCompressor().compress(data[:half])
            + zstandard.ZstdCompressor(write_checksum=True).compress(data[half:]))


COMPRESSORS = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "gzip-multi": lambda b: gzip.compress(b[:1000]) + gzip.compress(b[1000:]),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "zstd-multi": _zstd_two_frames,
}


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@pytest.mark.parametrize("declared", ["auto", "exact"])
def test_compression_and_diff_id(tmp_path, name, declared):
    layer = tar_bytes(member("a", data=os.urandom(70_000)), d("b"), sym("b/c", "../a"))
    layer += bytes(10240)                                     # trailing padding is hashed too
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    compression = "auto" if declared == "auto" else name.split("-")[0]
    stats = unpack(COMPRESSORS[name](layer), tmp_path / "out", compression=compression,
                   expected_diff_id=diff_id)
    assert stats == LayerStats(diff_id, len(layer), 3)
    assert os.readlink(tmp_path / "out/b/c") == "../a"


def test_diff_id_mismatch(tmp_path):
    with pytest.raises(VerificationFailed, match=r"unpack layer sha256:0+: diff_id mismatch"):
        unpack(tar_bytes(member("a")), tmp_path / "out", expected_diff_id="sha256:" + "0" * 64)


def test_empty_stream_is_an_empty_layer(tmp_path):
    stats = unpack(b"", tmp_path / "out")
    assert stats == LayerStats("sha256:" + hashlib.sha256(b"").hexdigest(), 0, 0)


LAYER = tar_bytes(member("a", data=os.urandom(5000)), member("b", data=b"b" * 3000))


@pytest.mark.parametrize(("what", "data"), [
    ("cut in file data", LAYER[:1000]),
    ("cut in a header", LAYER[:5632 + 100]),
    ("cut gzip", gzip.compress(LAYER)[:-30]),
    ("cut zstd", zstandard.ZstdCompressor().compress(LAYER)[:-3]),
    ("gzip garbage", gzip.compress(LAYER)[:50] + b"\0" * 40 + gzip.compress(LAYER)[90:]),
    ("bad checksum", LAYER[:5682] + b"X" + LAYER[5683:]),
    ("not a tar", b"hello world" * 100),
    ("junk after zero block", bytes(512) + raw_header(b"x") + bytes(1024)),
])
def test_corrupt_streams_fail_verification(tmp_path, what, data):
    fds = open_fds()
    with pytest.raises(VerificationFailed, match=r"^unpack layer: "):
        unpack(data, tmp_path / "out")
    assert open_fds() == fds


def test_gzip_bomb_stops_at_max_bytes(tmp_path):
    member_gz = gzip.compress(bytes(64 << 20), 1)
    bomb = gzip.compress(raw_header(b"zeros", size=4 << 30), 1) + member_gz * 64
    start, threads = time.monotonic(), threading.active_count()
    with pytest.raises(ResourceExhausted, match="byte limit"):
        unpack(bomb, tmp_path / "out", options=UnpackOptions(max_bytes=16 << 20))
    assert time.monotonic() - start < 5
    assert threading.active_count() == threads
    assert (tmp_path / "out/zeros").stat().st_size <= 17 << 20


def test_trailing_zeros_count_against_max_bytes(tmp_path):
    bomb = gzip.compress(tar_bytes(member("a")), 1) + gzip.compress(bytes(32 << 20), 1)
    with pytest.raises(ResourceExhausted):
        unpack(bomb, tmp_path / "out", options=UnpackOptions(max_bytes=8 << 20))


def test_max_entries(tmp_path):
    with pytest.raises(ResourceExhausted, match="more than 2 entries"):
        unpack(tar_bytes(*(member(f"f{i}") for i in range(5))), tmp_path / "out",
               options=UnpackOptions(max_entries=2))


def test_sparse_members_are_refused(tmp_path):
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(1 << 20)
        f.write(b"data")
    for fmt in ("gnu", "posix"):
        layer = subprocess.run(["tar", f"--format={fmt}", "-S", "-C", tmp_path, "-cf", "-",
                                "sparse"], check=True, capture_output=True).stdout
        with pytest.raises(NotImplementedYet, match="sparse"):
            unpack(layer, tmp_path / f"out-{fmt}")


# --- replacing and whiteouts ------------------------------------------------------------

def test_later_members_replace_earlier_ones(tmp_path):
    out = tmp_path / "out"
    target = tmp_path / "target"
    target.write_text("outside")
    unpack(tar_bytes(
        d("was-dir"), member("was-dir/child"), member("was-dir", data=b"now a file"),
        member("was-file"), d("was-file", mode=0o700),
        sym("was-link", str(target)), member("was-link", data=b"replaced"),
        d("kept"), member("kept/old"), d("kept", mode=0o750),
        member("not-a-dir", data=b"x"), member("not-a-dir/child", data=b"y"),
        member("same", data=b"1"), hard("same", "same"),
    ), out)
    assert (out / "was-dir").read_bytes() == b"now a file"
    assert (out / "was-file").is_dir()
    assert not (out / "was-link").is_symlink() and (out / "was-link").read_bytes() == b"replaced"
    assert target.read_text() == "outside"
    assert (out / "kept/old").exists() and stat.S_IMODE((out / "kept").stat().st_mode) == 0o750
    assert (out / "not-a-dir/child").read_bytes() == b"y"
    assert (out / "same").read_bytes() == b"1"


@as_root
def test_whiteouts_become_overlay_whiteouts(tmp_path):
    out = tmp_path / "out"
    unpack(tar_bytes(
        member("etc/issue"), member("etc/.wh.issue"),
        d("opt/tree"), member("opt/tree/x"), member("opt/.wh.tree"),
        member("var/.wh.missing"),
        d("usr/doc"), member("usr/doc/.wh..wh..opq"), member("usr/doc/AFTER"),
        member(".wh..wh..opq"),
        d("x"), member("x/.wh..wh.plnk"), member("x/.wh..wh.aufs"),
        member("gone/.wh.sub"), member("gone/sub/back", data=b"again"),
    ), out)
    for name in ("etc/issue", "opt/tree", "var/missing"):
        st = os.lstat(out / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, name
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0, 0, 0)
    assert os.getxattr(out / "usr/doc", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(out, "trusted.overlay.opaque") == b"y"
    assert os.listdir(out / "usr/doc") == ["AFTER"]
    assert os.listdir(out / "x") == []
    assert os.getxattr(out / "gone/sub", "trusted.overlay.opaque") == b"y"
    assert (out / "gone/sub/back").read_bytes() == b"again"


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh...", "a/.wh..", ".wh..wh..opqX",
                                  "a/.wh..wh..opq.x"])
def test_bad_whiteout_names_are_unsafe(tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(UnsafeContent):
        unpack(tar_bytes(member("a/keep"), member("keep"), member(name)), out)
    assert (out / "a/keep").exists() and (out / "keep").exists()


def test_overlay_xattrs_in_a_layer_are_dropped(tmp_path):
    unpack(tar_bytes(d("d", pax={"SCHILY.xattr.user.overlay.opaque": "y",
                                 "SCHILY.xattr.user.ok": "1"})), tmp_path / "out")
    assert os.listxattr(tmp_path / "out/d") == ["user.ok"]


@as_root
def test_root_member_sets_the_root_metadata(tmp_path):
    out = tmp_path / "out"
    unpack(tar_bytes(d("./", mode=0o711, uid=7, mtime=1_000_000_000), member("./f")), out)
    st = out.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime_ns) == (0o711, 7, 10**18)


@pytest.mark.parametrize("root_member", [sym(".", "/etc"), member("./"), hard("/", "x")])
def test_the_root_cannot_change_type(tmp_path, root_member):
    with pytest.raises(UnsafeContent, match="layer root"):
        unpack(tar_bytes(member("x"), root_member), tmp_path / "out")


# --- traversal: nothing outside the root may change -------------------------------------

# Every case aims at sentinels under the test's own tmp_path, never at a host path such
# as /etc: if the resolver regresses, the damage stays inside the test's directory.


def traversal_cases(outside: str) -> list[tuple[str, list, str | None]]:
    """(case, members, a path that must then exist inside the root or None)."""
    up = "../" * 12
    return [
        ("dotdot file", [member("../sentinel", data=b"evil")], "sentinel"),
        ("deep dotdot", [member(f"{up}{outside}/sentinel", data=b"evil")],
         f"{outside}/sentinel"),
        ("absolute name", [member(f"{outside}/sentinel", data=b"evil")], f"{outside}/sentinel"),
        ("dotdot dir", [d(f"{up}{outside}/sentdir", mode=0o777)], f"{outside}/sentdir"),
        ("link to /", [sym("l", "/"), member(f"l/{outside}/sentinel", data=b"evil")],
         f"{outside}/sentinel"),
        ("link up", [sym("l", up), member(f"l/{outside}/sentinel", data=b"evil")],
         f"{outside}/sentinel"),
        ("link to outside dir", [sym("l", outside), member("l/sentinel", data=b"evil")],
         f"{outside}/sentinel"),
        ("link to parent", [sym("l", ".."), member("l/sentinel", data=b"evil")], "sentinel"),
        ("dir link then dir", [sym("l", f"{outside}/sentdir"), d("l/sub")],
         f"{outside}/sentdir/sub"),
        ("link chain", [sym("a", "b"), sym("b", "c/../../sentdir"), d("c"),
                        member("a/inside", data=b"evil")], "sentdir/inside"),
        ("chain via dir link", [d("x"), sym("x/up", "../../.."),
                                member(f"x/up/{outside}/sentinel", data=b"evil")],
         f"{outside}/sentinel"),
        ("magic link", [sym("l", f"/proc/self/root{outside}"), member("l/sentinel")], None),
        ("replace link to file", [sym("l", f"{outside}/sentinel"), member("l", data=b"evil")],
         "l"),
        ("chmod via link", [sym("l", f"{outside}/sentinel"), d("l", mode=0o777)], "l"),
        ("device via dotdot", [member("../sentinel", tarfile.FIFOTYPE)], "sentinel"),
        ("hardlink dotdot", [hard("h", "../sentinel")], None),
        ("hardlink absolute", [hard("h", f"{outside}/sentinel")], None),
        ("hardlink via link", [sym("l", outside), hard("h", "l/sentinel")], None),
        ("hardlink to link", [sym("l", f"{outside}/sentinel"), hard("h", "l")], "h"),
        ("hardlink parent link", [sym("l", outside), member("f"), hard("l/sentinel", "f")],
         f"{outside}/sentinel"),
        ("whiteout dotdot", [member("../.wh.sentinel")], None),
        ("whiteout via link", [sym("l", f"{outside}/sentdir"), member("l/.wh.inside")], None),
        ("whiteout the link", [sym("l", f"{outside}/sentdir"), member(".wh.l")], None),
        ("opaque via link", [sym("l", f"{outside}/sentdir"), member("l/.wh..wh..opq")], None),
        ("whiteout up", [member(f"{up}{outside}/.wh.sentdir")], None),
        ("symlink loop", [sym("a", "b"), sym("b", "a"), member("a/x")], None),
        ("replace dir via link", [sym("l", outside), member("l/sentdir", data=b"evil")], None),
    ]


def _case_ids() -> list[str]:
    return [case for case, _, _ in traversal_cases("/x")]


@as_root
@pytest.mark.parametrize("resolver", ["openat2", "walk"])
@pytest.mark.parametrize("case", _case_ids())
def test_nothing_outside_the_root_changes(tmp_path, monkeypatch, resolver, case):
    if resolver == "walk":
        monkeypatch.setattr(_rootdir, "_openat2_usable", False)
    outside = str(tmp_path)
    (tmp_path / "sentinel").write_bytes(b"secret")
    (tmp_path / "sentdir").mkdir()
    (tmp_path / "sentdir/inside").write_bytes(b"inside")
    os.setxattr(tmp_path / "sentdir", "user.mark", b"1")
    for p in (tmp_path / "sentinel", tmp_path / "sentdir/inside", tmp_path / "sentdir"):
        os.utime(p, ns=(1_000_000_000_000_000_000,) * 2)
    root = tmp_path / "root"
    root.mkdir()
    before = snapshot(tmp_path, skip=root)
    members, expect = next((m, e) for c, m, e in traversal_cases(outside) if c == case)
    fds = open_fds()
    try:
        unpack(tar_bytes(*members), root)
    except PodkitError as exc:
        assert expect is None, f"{case}: {exc}"
    assert snapshot(tmp_path, skip=root) == before
    assert open_fds() == fds
    if expect is not None:
        assert os.path.lexists(root / expect.lstrip("/"))


def test_hard_link_targets_must_exist_inside(tmp_path):
    (tmp_path / "secret").write_text("s")
    with pytest.raises(VerificationFailed, match="link h: No such file"):
        unpack(tar_bytes(hard("h", "../secret")), tmp_path / "out")


def test_no_fds_or_threads_left_after_an_error(tmp_path):
    fds, threads = open_fds(), threading.active_count()
    for bad in (LAYER[:1000], zlib.compress(LAYER)):
        with pytest.raises(PodkitError):
            unpack(bad, tmp_path / "out", compression="gzip")
    with pytest.raises(UnsafeContent):
        unpack(tar_bytes(member(".wh..")), tmp_path / "out2")
    assert open_fds() == fds
    assert threading.active_count() == threads


# --- odds and ends ----------------------------------------------------------------------

def test_missing_destination_is_not_found(tmp_path):
    from podkit_common.errors import NotFound

    with pytest.raises(NotFound, match="unpack layer: open"):
        apply_layer(io.BytesIO(tar_bytes(member("a"))), tmp_path / "absent")


def test_kernel_without_openat2_falls_back_to_the_walk(tmp_path, monkeypatch):
    monkeypatch.setattr(_rootdir, "_SYS_OPENAT2", 1_000_000)     # answers ENOSYS
    monkeypatch.setattr(_rootdir, "_openat2_usable", None)
    unpack(tar_bytes(sym("l", "/x"), member("l/y/z", data=b"z")), tmp_path / "out")
    assert _rootdir._openat2_usable is False
    assert (tmp_path / "out/x/y/z").read_bytes() == b"z"


def test_gnu_dumpdir_is_a_directory(tmp_path):
    listing = b"Yfile\0\0"
    layer = raw_header(b"dumped/", kind=b"D", size=len(listing)) + pad(listing)
    layer += raw_header(b"dumped/file", size=2) + pad(b"hi") + bytes(1024)
    unpack(layer, tmp_path / "out")
    assert (tmp_path / "out/dumped/file").read_bytes() == b"hi"


def test_empty_pax_record_cancels_a_global_one(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"mtime": "1234567890"}) as tf:
        tf.addfile(member("f", mtime=7, pax={"mtime": ""})[0])
    unpack(out.getvalue(), tmp_path / "out")
    assert (tmp_path / "out/f").stat().st_mtime == 7


def test_many_gzip_members_and_zstd_skippable_frames(tmp_path):
    layer = tar_bytes(*(member(f"f{i}", data=b"%d" % i) for i in range(50)))
    many = b"".join(gzip.compress(layer[i:i + 100]) for i in range(0, len(layer), 100))
    assert unpack(many, tmp_path / "gz").entries == 50
    skippable = struct.pack("<II", 0x184D2A5E, 3) + b"abc"
    zst = skippable + zstandard.ZstdCompressor().compress(layer) + skippable
    assert unpack(zst, tmp_path / "zst").entries == 50
