"""Named volumes, kept where podman keeps them::

    <root>/volumes/<name>/_data          the content, bind-mounted into containers
    <root>/volumes/<name>/volume.json    podkit's record (written last, atomically)

A directory without volume.json is a half-made volume and is ignored (and replaced
by the next create of that name). Each record is changed under its own lock
(``<root>/locks/volume-<name>.lock``); ``users`` lists the containers whose bundles
mount it, so ``rm`` refuses a volume in use unless forced.

Record (what ``inspect`` prints, podman's keys plus ``users``)::

    {"Name": "data", "Driver": "local", "Mountpoint": ".../volumes/data/_data",
     "CreatedAt": "2026-11-28T23:40:00Z", "Labels": {}, "Scope": "local", "Options": {},
     "Anonymous": false, "NeedsCopyUp": true, "users": ["<container id>"]}
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.locks import object_lock
from podkit_common.names import valid_name
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

RECORD = "volume.json"


def volumes_dir(roots: Roots) -> Path:
    return roots.root / "volumes"


def _lock(roots: Roots, name: str):  # type: ignore[no-untyped-def]
    (roots.root / "locks").mkdir(parents=True, exist_ok=True)
    return object_lock(roots.root / "locks", "volume", name, timeout=60)


def _check_name(name: str) -> None:
    if not valid_name(name) or len(name) > 255:
        raise errors.UsageError(f"invalid volume name {name!r}",
                                hint="names match [a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _read(roots: Roots, name: str) -> dict[str, Any] | None:
    try:
        rec = atomic.read_json(volumes_dir(roots) / name / RECORD)
    except FileNotFoundError:
        return None
    except errors.PodkitError:
        return None
    return rec if isinstance(rec, dict) else None


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, "MountCount": len(rec.get("users", []))}


def inspect_volume(roots: Roots, name: str) -> dict[str, Any]:
    """The record of volume ``name`` (NotFound if there is none)."""
    _check_name(name)
    rec = _read(roots, name)
    if rec is None:
        raise errors.NotFound(f"no such volume {name}",
                              hint="`volume ls` lists the volumes")
    return _public(rec)


def volume_exists(roots: Roots, name: str) -> bool:
    _check_name(name)
    return _read(roots, name) is not None


def create_volume(roots: Roots, name: str | None = None, *,
                  labels: Mapping[str, str] | None = None, anonymous: bool = False,
                  ignore: bool = False) -> tuple[dict[str, Any], bool]:
    """Make a volume (a random 64-hex name when ``name`` is None); returns the record
    and whether it was made. An existing name is a Conflict unless ``ignore``."""
    import shutil

    if name is None:
        name = os.urandom(32).hex()
    _check_name(name)
    base = volumes_dir(roots) / name
    with _lock(roots, name):
        existing = _read(roots, name)
        if existing is not None:
            if ignore:
                return _public(existing), False
            raise errors.Conflict(f"volume with name {name} already exists: volume already "
                                  "exists", hint="use it as it is, or pass --ignore")
        if base.exists():
            shutil.rmtree(base)  # half-made by a killed create
        (base / "_data").mkdir(parents=True, mode=0o755)
        rec = {"Name": name, "Driver": "local", "Mountpoint": str(base / "_data"),
               "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "Labels": dict(labels or {}), "Scope": "local", "Options": {},
               "Anonymous": anonymous, "NeedsCopyUp": True, "users": []}
        atomic.write_json(base / RECORD, rec)
    from podkit_common.events import record as event

    event(roots, "volume", "create", name=name)
    return _public(rec), True


def list_volumes(roots: Roots) -> list[dict[str, Any]]:
    """Every volume's record, sorted by name."""
    base = volumes_dir(roots)
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(os.listdir(base)):
        rec = _read(roots, entry)
        if rec is not None:
            out.append(_public(rec))
    return out


def remove_volume(roots: Roots, name: str, *, force: bool = False) -> bool:
    """Delete volume ``name``; a volume in use is a Conflict unless ``force``."""
    import shutil

    _check_name(name)
    base = volumes_dir(roots) / name
    with _lock(roots, name):
        rec = _read(roots, name)
        if rec is None:
            raise errors.NotFound(f"no volume with name {name!r} found: no such volume")
        users = rec.get("users", [])
        if users and not force:
            raise errors.Conflict(
                f"volume {name} is being used by the following container(s): "
                f"{', '.join(users)}: volume is being used",
                hint="remove those containers first, or pass --force")
        # The record goes first: a crash mid-way leaves a dir that is not a volume.
        os.unlink(base / RECORD)
        shutil.rmtree(base, ignore_errors=True)
    from podkit_common.events import record as event

    event(roots, "volume", "remove", name=name)
    return True


def prune_volumes(roots: Roots) -> list[str]:
    """Remove every volume no container uses; the names removed."""
    removed = []
    for rec in list_volumes(roots):
        if rec.get("users"):
            continue
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            remove_volume(roots, rec["Name"])
            removed.append(rec["Name"])
    return removed


def acquire_volume(roots: Roots, name: str | None, container_id: str) -> dict[str, Any]:
    """The volume ``name`` (made when missing; a new anonymous one when None), with
    ``container_id`` recorded as a user."""
    if name is None:
        name = create_volume(roots, None, anonymous=True)[0]["Name"]
    else:
        create_volume(roots, name, ignore=True)

    def add(rec: dict[str, Any]) -> None:
        if container_id not in rec["users"]:
            rec["users"].append(container_id)

    return _update(roots, name, add)


def _update(roots: Roots, name: str | None, change: Any) -> dict[str, Any]:
    assert name is not None
    with _lock(roots, name):
        rec = _read(roots, name)
        if rec is None:
            raise errors.NotFound(f"no such volume {name}")
        change(rec)
        atomic.write_json(volumes_dir(roots) / name / RECORD, rec)
    return _public(rec)


def release_volumes(roots: Roots, names: list[str], container_id: str, *,
                    remove_anonymous: bool = False) -> list[str]:
    """Drop ``container_id`` from the users of ``names``; with ``remove_anonymous``,
    delete the anonymous ones nobody uses any more (podman's ``rm --volumes``)."""
    removed = []
    for name in names:
        try:
            rec = _update(roots, name, lambda r: r.__setitem__(
                "users", [u for u in r.get("users", []) if u != container_id]))
        except errors.NotFound:
            continue
        if remove_anonymous and rec.get("Anonymous") and not rec.get("users"):
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                remove_volume(roots, name)
                removed.append(name)
    return removed


def initialise_volume(roots: Roots, name: str, *, owner: tuple[int, int],
                      source: str | None) -> bool:
    """On a volume's first use (podman's NeedsCopyUp): give ``_data`` to ``owner``,
    then fill it from the image's directory ``source`` (which also brings that
    directory's owner and mode). Under the volume's lock, so two containers starting
    together copy once. False when the volume was initialised before."""
    with _lock(roots, name):
        rec = _read(roots, name)
        if rec is None:
            raise errors.NotFound(f"no such volume {name}")
        if not rec.get("NeedsCopyUp"):
            return False
        os.chown(rec["Mountpoint"], owner[0], owner[1])
        if source is not None:
            copy_up(source, rec["Mountpoint"])
        rec["NeedsCopyUp"] = False
        atomic.write_json(volumes_dir(roots) / name / RECORD, rec)
    return True


def copy_up(source: str, dest: str) -> bool:
    """Fill the empty volume directory ``dest`` from the image's directory ``source``
    (a symlink-free path inside the rootfs), keeping modes, owners and symlinks as they
    are: nothing is followed. False when there was nothing to copy."""
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode) or os.listdir(dest):
        return False
    # Directory modes go on last, deepest first: a 0555 directory must still take files.
    modes = [(dest, st)]
    for path, dirs, files in _walk(source):
        rel = os.path.relpath(path, source)
        target_dir = os.path.join(dest, rel) if rel != "." else dest
        for d in dirs:
            t = os.path.join(target_dir, d)
            os.mkdir(t, 0o700)
            modes.append((t, os.lstat(os.path.join(path, d))))
        for f in files:
            _copy_entry(os.path.join(path, f), os.path.join(target_dir, f))
    for t, s in reversed(modes):
        os.chown(t, s.st_uid, s.st_gid)
        os.chmod(t, stat.S_IMODE(s.st_mode))
    return True


def _walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for path, dirs, files in os.walk(top, followlinks=False):
        real_dirs = []
        for d in dirs:
            if os.path.islink(os.path.join(path, d)):
                files.append(d)  # a symlink to a dir is copied as a symlink
            else:
                real_dirs.append(d)
        dirs[:] = real_dirs
        yield path, dirs, files


def _copy_entry(src: str, dst: str) -> None:
    import shutil

    s = os.lstat(src)
    if stat.S_ISLNK(s.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(s.st_mode):
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            with open(dst, "xb") as out, os.fdopen(fd, "rb", closefd=False) as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
        finally:
            os.close(fd)
        os.chmod(dst, stat.S_IMODE(s.st_mode))
    elif stat.S_ISFIFO(s.st_mode):
        os.mkfifo(dst, stat.S_IMODE(s.st_mode))
    else:
        return  # devices and sockets are not copied into volumes
    os.chown(dst, s.st_uid, s.st_gid, follow_symlinks=False)
