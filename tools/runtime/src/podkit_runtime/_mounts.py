"""podman's mount options as data: ``-v/--volume``, ``--mount``, ``--tmpfs``, ``--shm-size``.

Pure: parsing turns each option into a :class:`MountSpec`; :func:`oci_mount` and
:func:`merge_mounts` turn specs (whose volume sources the bundle step has resolved to
host directories) into config.json mounts. Nothing here touches the filesystem.

    -v /host:/ctr[:ro,z,rshared,...]   bind mount
    -v name:/ctr[:OPTS]                named volume (made on first use)
    -v /ctr                            anonymous volume
    --mount type=bind|tmpfs|volume,src=...,dst=...,ro,bind-propagation=...,tmpfs-size=...
    --tmpfs /ctr[:size=64m,mode=1777,...]
"""

from __future__ import annotations

import posixpath
import re

from podkit_common import errors
from podkit_common.names import valid_name
from podkit_common.records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave",
                "unbindable", "runbindable")
_FLAG_PAIRS = {"nosuid": "suid", "nodev": "dev", "noexec": "exec", "ro": "rw",
               "suid": "nosuid", "dev": "nodev", "exec": "noexec", "rw": "ro"}
_PLAIN_FLAGS = ("ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec")
#: podman 4.3's options for --tmpfs and --mount type=tmpfs (tmpcopyup: runc fills the
#: tmpfs with what the image has at that path).
TMPFS_DEFAULTS = ("rw", "rprivate", "nosuid", "nodev", "tmpcopyup")


@record(frozen=True)
class MountSpec:
    """One user mount. ``kind``: "bind" (source a host path), "volume" (source a volume
    name, or None for a new anonymous one) or "tmpfs"."""

    kind: str
    destination: str
    source: str | None = None
    options: tuple[str, ...] = ()
    copy_up: bool = True          # volumes: fill an empty new volume from the image


def parse_size(text: str, what: str) -> int:
    """podman's sizes: a number with an optional b/k/m/g unit (1024-based)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", text.lower())
    if not m:
        raise errors.UsageError(f"invalid size for {what}: {text!r}",
                                hint="use a number with an optional unit: 64m, 1g, 512k")
    scale = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _check_destination(dest: str, option: str) -> str:
    if not dest.startswith("/"):
        raise errors.UsageError(f"invalid container path {dest!r} in {option}, must be an "
                                "absolute path")
    clean = posixpath.normpath(dest)
    return "/" + clean.lstrip("/") if clean != "/" else "/"


def _refuse(opt: str, option: str) -> None:
    if opt == "U":
        raise errors.NotImplementedYet(
            f"{option}: the U option (chown the source to the container user) is not "
            "supported by podkit", hint="chown the directory yourself before the run")
    if opt == "O":
        raise errors.NotImplementedYet(
            f"{option}: overlay volumes (O) are not supported by podkit",
            hint="use a bind mount, or a named volume for a writable copy")
    if opt == "idmap" or opt.startswith("idmap="):
        raise errors.NotImplementedYet(f"{option}: idmapped mounts are not supported")


def _bind_options(opts: Iterable[str], option: str) -> tuple[tuple[str, ...], bool]:
    """OCI options for a bind mount from podman's comma list; also whether to copy up."""
    flags: list[str] = []
    recursive = "rbind"
    propagation = None
    copy_up = True
    for opt in opts:
        if opt == "":
            continue
        _refuse(opt, option)
        if opt in ("z", "Z"):
            continue  # SELinux relabel: nothing to do on a host without SELinux
        if opt in ("bind", "rbind"):
            recursive = opt
        elif opt in PROPAGATIONS:
            if propagation is not None:
                raise errors.UsageError(f"{option}: only one propagation mode is allowed")
            propagation = opt
        elif opt in _PLAIN_FLAGS:
            if _FLAG_PAIRS[opt] in flags:
                raise errors.UsageError(f"{option}: cannot set both {opt} and "
                                        f"{_FLAG_PAIRS[opt]}")
            if opt not in flags:
                flags.append(opt)
        elif opt in ("copy", "nocopy"):
            copy_up = opt == "copy"
        else:
            raise errors.UsageError(f"{option}: invalid option type {opt!r}",
                                    hint="known: ro, rw, z, Z, bind, rbind, "
                                         f"{', '.join(PROPAGATIONS)}, nosuid, nodev, noexec")
    if "ro" not in flags and "rw" not in flags:
        flags.insert(0, "rw")
    # podman 4.3's order: ro|rw, the propagation, rbind|bind, then the flags.
    rw = [f for f in flags if f in ("ro", "rw")]
    rest = [f for f in flags if f not in ("ro", "rw")]
    return (*rw, propagation or "rprivate", recursive, *rest), copy_up


def parse_volume(spec: str) -> MountSpec:
    """``-v SRC:DST[:OPTS]``, ``-v NAME:DST[:OPTS]`` or ``-v DST`` (anonymous)."""
    option = f"-v {spec}"
    parts = spec.split(":")
    if len(parts) > 3 or not spec:
        raise errors.UsageError(f"{option}: incorrect volume format, should be "
                                "[host-dir:]ctr-dir[:option]")
    if len(parts) == 1:
        src, dest, opts = None, parts[0], ""
    elif len(parts) == 2 and not parts[1].startswith("/"):
        src, dest, opts = None, parts[0], parts[1]
    elif len(parts) == 2:
        src, dest, opts = parts[0], parts[1], ""
    else:
        src, dest, opts = parts
    dest = _check_destination(dest, option)
    options, copy_up = _bind_options(opts.split(","), option)
    if src is None:
        return MountSpec("volume", dest, None, options, copy_up)
    if src.startswith(("/", ".")):
        return MountSpec("bind", dest, src, options)
    if not valid_name(src):
        raise errors.UsageError(f"{option}: {src!r} is neither an absolute path nor a valid "
                                "volume name", hint="volume names match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return MountSpec("volume", dest, src, options, copy_up)


def _truthy(value: str | None, option: str) -> bool:
    if value is None or value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise errors.UsageError(f"{option}: expected true or false, got {value!r}")


def parse_mount(spec: str) -> MountSpec:
    """podman's ``--mount type=bind|tmpfs|volume,key=value,...``."""
    option = f"--mount {spec}"
    fields: list[tuple[str, str | None]] = []
    for item in spec.split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        fields.append((key.strip().lower(), value if eq else None))
    kinds = [v for k, v in fields if k == "type"]
    if len(kinds) != 1 or kinds[0] is None:
        raise errors.UsageError(f"{option}: exactly one type= is required",
                                hint="type=bind, type=tmpfs or type=volume")
    kind = kinds[0]
    if kind not in ("bind", "tmpfs", "volume"):
        raise errors.NotImplementedYet(f"{option}: mount type {kind!r} is not supported",
                                       hint="podkit knows type=bind, type=tmpfs, type=volume")
    src = dest = None
    opts: list[str] = []
    tmpfs: list[str] = []
    for key, value in fields:
        if key == "type":
            continue
        if key in ("src", "source"):
            src = value
        elif key in ("dst", "destination", "target"):
            dest = value
        elif key in ("ro", "readonly"):
            opts.append("ro" if _truthy(value, option) else "rw")
        elif key == "rw":
            opts.append("rw" if _truthy(value, option) else "ro")
        elif key == "bind-propagation" and kind == "bind":
            opts.append(value or "")
        elif key == "bind-nonrecursive" and kind == "bind":
            if _truthy(value, option):
                opts.append("bind")
        elif key == "relabel" or key == "consistency":
            continue
        elif key in ("volume-nocopy", "nocopy") and kind == "volume":
            if _truthy(value, option):
                opts.append("nocopy")
        elif key == "tmpfs-size" and kind == "tmpfs":
            tmpfs.append(f"size={value or ''}")
        elif key == "tmpfs-mode" and kind == "tmpfs":
            if not value or not re.fullmatch(r"[0-7]{1,4}", value):
                raise errors.UsageError(f"{option}: tmpfs-mode must be octal, got {value!r}")
            tmpfs.append(f"mode={value}")
        elif key in ("u", "chown"):
            _refuse("U", option)
        elif key in _PLAIN_FLAGS and value is None:
            opts.append(key)
        else:
            raise errors.UsageError(f"{option}: unknown or misplaced key {key!r} for "
                                    f"type={kind}")
    if dest is None:
        raise errors.UsageError(f"{option}: a destination (dst=, destination=, target=) "
                                "is required")
    dest = _check_destination(dest, option)
    if kind == "tmpfs":
        if src:
            raise errors.UsageError(f"{option}: type=tmpfs takes no source")
        return MountSpec("tmpfs", dest, None, tmpfs_options(tmpfs + opts, option))
    options, copy_up = _bind_options(opts, option)
    if kind == "bind":
        if not src:
            raise errors.UsageError(f"{option}: type=bind needs src=")
        if not src.startswith("/"):
            raise errors.UsageError(f"{option}: bind source {src!r} must be an absolute path")
        return MountSpec("bind", dest, src, options)
    if src and not valid_name(src):
        raise errors.UsageError(f"{option}: invalid volume name {src!r}")
    return MountSpec("volume", dest, src or None, options, copy_up)


def tmpfs_options(user: Iterable[str], option: str) -> tuple[str, ...]:
    """podman's tmpfs defaults (TMPFS_DEFAULTS) with the user's options on top."""
    out = list(TMPFS_DEFAULTS)
    for opt in user:
        if not opt:
            continue
        if opt in _PLAIN_FLAGS:
            if _FLAG_PAIRS[opt] in out:
                out.remove(_FLAG_PAIRS[opt])
            if opt not in out:
                out.append(opt)
        elif opt.startswith("size="):
            out = [o for o in out if not o.startswith("size=")]
            size = opt[5:]  # podman puts the size first
            if not re.fullmatch(r"\d+[kmg]?", size):  # what the kernel's tmpfs reads as is
                size = str(parse_size(size, option))
            out.insert(0, f"size={size}")
        elif opt.startswith("mode="):
            if not re.fullmatch(r"[0-7]{1,4}", opt[5:]):
                raise errors.UsageError(f"{option}: mode must be octal, got {opt[5:]!r}")
            out = [o for o in out if not o.startswith("mode=")]
            out.append(opt)
        elif opt == "notmpcopyup":
            out = [o for o in out if o != "tmpcopyup"]
        elif opt.startswith(("uid=", "gid=", "nr_inodes=")) or opt in (
                "strictatime", "relatime", "noatime", "nodiratime", "tmpcopyup"):
            if opt not in out:
                out.append(opt)
        elif opt in PROPAGATIONS:
            out = [o for o in out if o not in PROPAGATIONS]
            out.insert(1, opt)
        else:
            raise errors.UsageError(f"{option}: invalid tmpfs option {opt!r}")
    return tuple(out)


def parse_tmpfs(spec: str) -> MountSpec:
    """``--tmpfs /ctr[:opts]``."""
    option = f"--tmpfs {spec}"
    dest, _, opts = spec.partition(":")
    return MountSpec("tmpfs", _check_destination(dest, option), None,
                     tmpfs_options(opts.split(","), option))


def parse_all(volumes: Iterable[str], mounts: Iterable[str],
              tmpfs: Iterable[str]) -> list[MountSpec]:
    """Every user mount, refusing two at one destination like podman."""
    specs = ([parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts]
             + [parse_tmpfs(t) for t in tmpfs])
    seen: set[str] = set()
    for spec in specs:
        if spec.destination in seen:
            raise errors.UsageError(f"{spec.destination}: duplicate mount destination")
        seen.add(spec.destination)
    return specs


def image_volume_specs(image_volumes: Iterable[str], taken: Iterable[str],
                       mode: str) -> list[MountSpec]:
    """The image's ``VOLUME``s not covered by a user mount: anonymous volumes (podman's
    default, --image-volume bind), tmpfs, or nothing (ignore)."""
    if mode not in ("bind", "tmpfs", "ignore"):
        raise errors.UsageError(f"--image-volume must be bind, tmpfs or ignore, not {mode!r}")
    if mode == "ignore":
        return []
    taken_set = set(taken)
    out = []
    for raw in sorted(image_volumes):
        if not raw.startswith("/"):
            continue
        dest = _check_destination(raw, "image VOLUME")
        if dest in taken_set:
            continue
        taken_set.add(dest)
        if mode == "tmpfs":
            out.append(MountSpec("tmpfs", dest, None, tmpfs_options(("exec",), "image VOLUME")))
        else:
            out.append(MountSpec("volume", dest, None, ("rw", "rprivate", "rbind")))
    return out


def oci_mount(spec: MountSpec, host_source: str | None, destination: str | None = None
              ) -> dict[str, Any]:
    """The config.json entry for ``spec``; ``host_source`` is the bind source or the
    volume's _data directory, ``destination`` the symlink-free path in the rootfs."""
    dest = destination or spec.destination
    if spec.kind == "tmpfs":
        return {"destination": dest, "type": "tmpfs", "source": "tmpfs",
                "options": list(spec.options)}
    opts = list(spec.options)
    if spec.kind == "volume":
        for flag in ("nosuid", "nodev"):
            if flag not in opts and _FLAG_PAIRS[flag] not in opts:
                opts.append(flag)
    return {"destination": dest, "type": "bind", "source": host_source, "options": opts}


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def merge_mounts(defaults: list[dict[str, Any]], user: list[dict[str, Any]], *,
                 shm_size: str | None = None) -> list[dict[str, Any]]:
    """The default mounts with ``--shm-size`` applied, minus those a user mount replaces,
    then the user mounts, parents before children (podman's order)."""
    taken = {m["destination"] for m in user}
    out = []
    for m in defaults:
        if m["destination"] in taken:
            continue
        if shm_size is not None and m["destination"] == "/dev/shm":
            size = parse_size(shm_size, "--shm-size")
            if size <= 0:
                raise errors.UsageError("--shm-size must be greater than 0")
            m = {**m, "options": [o for o in m["options"] if not o.startswith("size=")]
                 + [f"size={size}"]}
        out.append(m)
    return out + sorted(user, key=lambda m: _depth(m["destination"]))
