"""Resolve ``--user name|uid[:gid]`` against the container's own /etc/passwd and /etc/group.

The files are read without following any symlink (an image's /etc/passwd may point
anywhere on the host) and only if they are regular files of bounded size (an image
whose /etc/passwd is /dev/zero must not hang us).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podkit_common import errors
from podkit_runtime._spec import User

MAX_DB_BYTES = 4 * 1024 * 1024


def read_rootfs_file(rootfs: str | os.PathLike[str], rel: str, limit: int = MAX_DB_BYTES) -> bytes:
    """Read ``rel`` inside ``rootfs`` refusing symlinks at every component; b"" if absent."""
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise errors.UnsafeContent(f"refusing path with '..': {rel}")
    try:
        fd = os.open(rootfs, flags_dir)
    except OSError as exc:
        raise errors.from_os_error(exc, "open container rootfs") from None
    try:
        for part in parts[:-1]:
            nfd = os.open(part, flags_dir, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                      dir_fd=fd)
    except OSError:
        return b""
    finally:
        os.close(fd)
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return b""
        return os.read(ffd, limit)
    finally:
        os.close(ffd)


def _rows(data: bytes) -> list[list[str]]:
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def resolve_user(rootfs: str | Path, spec: str | None) -> User:
    """The uid, gid, supplementary groups and home for ``spec`` (None: the image default, root)."""
    passwd = _rows(read_rootfs_file(rootfs, "etc/passwd"))
    if not spec:
        spec = "0"
    name, _, group = spec.partition(":")
    uid = gid = None
    home = "/"
    username = None
    for row in passwd:
        if len(row) < 7:
            continue
        if row[0] == name or (name.isdigit() and row[2] == name):
            username, uid, gid, home = row[0], int(row[2]), int(row[3]), row[5] or "/"
            break
    if uid is None:
        if not name.isdigit():
            raise errors.NotFound(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), 0
        home = "/root" if uid == 0 else "/"
    groups = _rows(read_rootfs_file(rootfs, "etc/group"))
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            for row in groups:
                if len(row) >= 3 and row[0] == group:
                    gid = int(row[2])
                    break
            else:
                raise errors.NotFound(f"unable to find group {group}: no matching entries "
                                      "in group file")
    extra: list[int] = []
    if username is not None and not group:
        for row in groups:
            if len(row) >= 4 and username in row[3].split(",") and row[2].isdigit():
                g = int(row[2])
                if g != gid and g not in extra:
                    extra.append(g)
    return User(uid=uid, gid=gid or 0, additional_gids=tuple(extra), home=home)
