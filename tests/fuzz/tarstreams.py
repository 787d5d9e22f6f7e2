"""hypothesis strategies for hostile layer tar streams: names with ``../`` and absolute
prefixes, symlink chains pointing out, files written through symlinks, hard links to
outside or to symlinks, device and fifo nodes, whiteouts in odd places, duplicates,
long (GNU and pax) names, truncated streams and compression garbage.

Device nodes are only ever 1:3 and 1:5 (null, zero) or 0:0 (whiteouts): a bug that
wrote through one must not be able to hurt the host."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import zstandard
from hypothesis import strategies as st

PARTS = ["a", "b", "etc", "..", ".", "lnk", "dir", ".wh.a", ".wh..wh..opq", ".wh.lnk",
         ".wh..", "passwd", "x" * 120, "é", "sub"]


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes        # tarfile type
    target: str = ""   # symlink or hard link target
    data: bytes = b""
    mode: int = 0o644
    dev: tuple[int, int] = (0, 0)


def names(outside: str):
    parts = st.lists(st.sampled_from(PARTS), min_size=1, max_size=5).map("/".join)
    prefix = st.sampled_from(["", "", "./", "/", "../", "../../", "/../", outside + "/"])
    return st.builds(lambda p, n: p + n, prefix, parts)


def link_targets(outside: str):
    return st.one_of(
        st.sampled_from(["/", "..", "../..", "../../..", "/etc", outside, outside + "/sentinel",
                         outside + "/dir", "../../outside/sentinel", "../outside", "lnk",
                         "lnk/sentinel", "a", "a/b", "dir/../../..", ".", ""]),
        names(outside))


def members(outside: str):
    name = names(outside)
    reg = st.builds(Member, name, st.just(tarfile.REGTYPE),
                    data=st.binary(max_size=64), mode=st.sampled_from([0o644, 0o4755, 0o000,
                                                                       0o777, 0o1777]))
    dirs = st.builds(Member, name, st.just(tarfile.DIRTYPE),
                     mode=st.sampled_from([0o755, 0o000, 0o500, 0o1777]))
    sym = st.builds(Member, name, st.just(tarfile.SYMTYPE), target=link_targets(outside))
    hard = st.builds(Member, name, st.just(tarfile.LNKTYPE), target=link_targets(outside))
    dev = st.builds(Member, name, st.sampled_from([tarfile.CHRTYPE, tarfile.FIFOTYPE]),
                    dev=st.sampled_from([(0, 0), (1, 3), (1, 5)]))
    return st.one_of(reg, reg, dirs, sym, sym, hard, dev)


def build_tar(items: list[Member], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for m in items:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.mtime = 1_700_000_000
            if m.kind == tarfile.REGTYPE:
                info.size = len(m.data)
            elif m.kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = m.target
            elif m.kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = m.dev
            tar.addfile(info, io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    return out.getvalue()


@dataclass(frozen=True)
class Stream:
    """A layer as hypothesis shows it on failure: the members and what was done to the
    bytes (``damage``: none, truncate at N, flip byte N with X, append bytes)."""

    members: tuple[Member, ...]
    fmt: int
    compression: str
    damage: tuple = ("none",)

    def data(self) -> bytes:
        data = build_tar(list(self.members), self.fmt)
        if self.compression == "gzip":
            data = gzip.compress(data, mtime=0)
        elif self.compression == "zstd":
            data = zstandard.ZstdCompressor().compress(data)
        kind, *args = self.damage
        if kind == "truncate":
            data = data[:args[0] % max(len(data), 1)]
        elif kind == "flip" and data:
            at = args[0] % len(data)
            data = data[:at] + bytes([data[at] ^ args[1]]) + data[at + 1:]
        elif kind == "append":
            data += args[0]
        return data


def layer_streams(outside: str):
    """One layer: a tar of hostile members, maybe compressed, maybe damaged."""
    damage = st.one_of(
        st.just(("none",)), st.just(("none",)), st.just(("none",)),
        st.tuples(st.just("truncate"), st.integers(0, 1 << 16)),
        st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=600)))
    return st.builds(Stream, st.lists(members(outside), min_size=1, max_size=12).map(tuple),
                     st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
                     st.sampled_from(["none", "none", "gzip", "zstd"]), damage)
