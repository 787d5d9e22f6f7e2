"""Deterministic layer tarballs for the test images, built from busybox-static.

Everything here is independent of podkit: it is the oracle that real images are
made from. A layer is produced as an uncompressed tar (its sha256 is the diff_id);
compression is applied separately by :func:`compress`.
"""

from __future__ import annotations

import functools
import gzip
import io
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

BUSYBOX = Path("/bin/busybox")

# Every entry carries this mtime (2023-11-14T22:13:20Z) so rebuilt layers are byte-identical.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"

# What the layers contain, for tests that check an unpacked rootfs.
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
)
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnobody:x:65534:\n"
ISSUE_PATH = "/etc/issue"  # in layer 1, deleted by a whiteout in layer 2
ISSUE_TEXT = "podkit testbed busybox\n"
OPAQUE_DIR = "/usr/share/doc/testbed"  # filled by layer 1, made opaque by layer 2
OPAQUE_HIDDEN = ("/usr/share/doc/testbed/README", "/usr/share/doc/testbed/NOTES")
OPAQUE_KEPT = "/usr/share/doc/testbed/AFTER"  # the only entry left after layer 2
MOTD_PATH = "/etc/motd"
MOTD_TEXT = "welcome to the podkit testbed\n"
MOTD_TEXT_LAYER3 = "motd replaced by layer 3\n"
HELLO_PATH = "/data/hello.txt"
HELLO_TEXT = "hello from layer 2\n"
HARDLINK_PATH = "/data/hello-hardlink.txt"  # hard link to HELLO_PATH, same layer
APP_DIR = "/data/app"  # owned 1000:1000, mode 0750
LAYER3_PATH = "/data/layer3.txt"
LAYER3_TEXT = "hello from layer 3\n"
PLATFORM_MARKER = "/etc/podkit-platform"  # only in the fake foreign-arch images


class BusyboxNotStatic(RuntimeError):
    """/bin/busybox is missing or dynamically linked, so it cannot run in an empty rootfs."""


@dataclass(frozen=True)
class _Entry:
    info: tarfile.TarInfo
    data: bytes | None


class LayerBuilder:
    """Collects tar entries and renders them as a deterministic uncompressed tarball.

    Paths are absolute image paths ("/etc/motd"); they are stored relative ("etc/motd").
    Missing parent directories are added as root-owned 0755 directories.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def _info(self, path: str, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
        name = str(PurePosixPath("/", path).relative_to("/"))
        if name == ".":
            raise ValueError("the root directory itself is not a layer entry")
        self._ensure_parents(name)
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = EPOCH
        return info

    def _ensure_parents(self, name: str) -> None:
        for parent in reversed(PurePosixPath(name).parents[:-1]):
            if str(parent) not in self._entries:
                self.dir("/" + str(parent))

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> LayerBuilder:
        self._entries[info.name] = _Entry(info, data)
        return self

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> LayerBuilder:
        """Add a directory."""
        return self._add(self._info(path, tarfile.DIRTYPE, mode, uid, gid))

    def file(
        self, path: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> LayerBuilder:
        """Add a regular file with the given content."""
        raw = data.encode() if isinstance(data, str) else data
        info = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(raw)
        return self._add(info, raw)

    def symlink(self, path: str, target: str) -> LayerBuilder:
        """Add a symbolic link pointing to target (stored verbatim)."""
        info = self._info(path, tarfile.SYMTYPE, 0o777, 0, 0)
        info.linkname = target
        return self._add(info)

    def hardlink(self, path: str, target: str) -> LayerBuilder:
        """Add a hard link to target, an absolute image path added earlier in this layer."""
        info = self._info(path, tarfile.LNKTYPE, 0o644, 0, 0)
        info.linkname = str(PurePosixPath("/", target).relative_to("/"))
        return self._add(info)

    def whiteout(self, path: str) -> LayerBuilder:
        """Delete path of a lower layer (an empty `.wh.<name>` file)."""
        p = PurePosixPath(path)
        return self.file(str(p.parent / f".wh.{p.name}"), b"", mode=0o600)

    def opaque(self, dir_path: str) -> LayerBuilder:
        """Hide everything lower layers put in dir_path (`.wh..wh..opq`)."""
        return self.file(str(PurePosixPath(dir_path) / ".wh..wh..opq"), b"", mode=0o600)

    def tar(self) -> bytes:
        """Render the entries in insertion order as an uncompressed PAX tarball."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for entry in self._entries.values():
                tf.addfile(entry.info, io.BytesIO(entry.data) if entry.data is not None else None)
        return buf.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    """Compress a layer tarball: compression is "gzip", "zstd" or "none"."""
    return _compress_cached(tar, compression)


@functools.lru_cache(maxsize=32)
def _compress_cached(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(tar, compresslevel=6, mtime=0)
    if compression == "zstd":
        import zstandard  # only images with zstd layers need it

        return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(tar)
    if compression == "none":
        return tar
    raise ValueError(f"unknown compression {compression!r} (gzip, zstd or none)")


def _elf_has_interpreter(data: bytes) -> bool:
    """True if the ELF image in data has a PT_INTERP program header (is dynamically linked)."""
    if data[:4] != b"\x7fELF":
        raise BusyboxNotStatic(f"{BUSYBOX} is not an ELF executable")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    pt_interp = 3
    return any(
        struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] == pt_interp
        for i in range(phnum)
    )


@functools.cache
def busybox_binary() -> bytes:
    """Return the bytes of /bin/busybox after checking it is a static executable."""
    if not BUSYBOX.is_file():
        raise BusyboxNotStatic(f"{BUSYBOX} not found: install the Debian package busybox-static")
    data = BUSYBOX.read_bytes()
    if _elf_has_interpreter(data):
        raise BusyboxNotStatic(
            f"{BUSYBOX} is dynamically linked; install busybox-static (not busybox) "
            "so the test images run without a libc"
        )
    return data


@functools.cache
def busybox_applets() -> tuple[str, ...]:
    """The applet names `busybox --list` reports, sorted."""
    out = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True
    ).stdout
    return tuple(sorted({a for a in out.split() if a and "/" not in a and a != "busybox"}))


@functools.cache
def base_layer_tar() -> bytes:
    """Layer 1: busybox with applet symlinks, users and groups, and the standard dirs."""
    b = LayerBuilder()
    for d in ("/bin", "/dev", "/etc", "/home", "/proc", "/sys", "/usr", "/var"):
        b.dir(d)
    b.dir("/root", mode=0o700)
    b.dir("/tmp", mode=0o1777)
    b.dir("/home/app", uid=1000, gid=1000)
    b.file("/bin/busybox", busybox_binary(), mode=0o755)
    for applet in busybox_applets():
        b.symlink(f"/bin/{applet}", "busybox")
    b.file("/etc/passwd", PASSWD)
    b.file("/etc/group", GROUP)
    b.file(ISSUE_PATH, ISSUE_TEXT)
    b.dir(OPAQUE_DIR)
    for path in OPAQUE_HIDDEN:
        b.file(path, f"{path} from layer 1\n")
    return b.tar()


@functools.cache
def second_layer_tar() -> bytes:
    """Layer 2: motd, /data with a hard link, a whiteout of /etc/issue, an opaque dir."""
    b = LayerBuilder()
    b.file(MOTD_PATH, MOTD_TEXT)
    b.whiteout(ISSUE_PATH)
    b.dir("/data")
    b.file(HELLO_PATH, HELLO_TEXT)
    b.hardlink(HARDLINK_PATH, HELLO_PATH)
    b.dir(APP_DIR, mode=0o750, uid=1000, gid=1000)
    b.opaque(OPAQUE_DIR)
    b.file(OPAQUE_KEPT, "replaced by layer 2\n")
    return b.tar()


@functools.cache
def third_layer_tar() -> bytes:
    """Layer 3: replaces /etc/motd and adds /data/layer3.txt."""
    b = LayerBuilder()
    b.file(MOTD_PATH, MOTD_TEXT_LAYER3)
    b.file(LAYER3_PATH, LAYER3_TEXT)
    return b.tar()


@functools.cache
def platform_marker_tar(platform: str) -> bytes:
    """The single layer of a fake foreign-arch image: one file naming its platform."""
    return LayerBuilder().file(PLATFORM_MARKER, platform + "\n").tar()
