"""What the bundle step learns from the host for the isolation options (the I/O half).

:func:`gather_host_facts` reads the engine's capability sets and hard rlimits, stats
``--device`` nodes (and every /dev node for ``--privileged``), loads and converts the
seccomp profile (cached), resolves ``container:ID``/``ns:PATH`` namespaces and reads
the hooks directories. The result is plain data for the pure ``_isolation`` rules.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podkit_common import errors
from podkit_common.records import field, record
from podkit_runtime import _security
from podkit_runtime._resources import RLIMITS, HostDevice, parse_device

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Directories of /dev that are not device nodes a privileged container should get.
_DEV_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


@record(frozen=True)
class HostFacts:
    """Host facts the pure isolation rules need; the defaults describe a host that
    grants everything and has no seccomp profile (for unit tests)."""

    available_caps: tuple[str, ...] = _security.LINUX_CAPABILITIES
    can_raise_rlimits: bool = True
    hard_limits: dict[str, int] = field(default_factory=dict)
    devices: tuple[tuple[HostDevice, str, str], ...] = ()
    privileged_devices: tuple[HostDevice, ...] = ()
    seccomp: dict[str, Any] | None = None
    namespaces: dict[str, str | None] | None = None   # None: all private
    hooks: tuple[tuple[str, dict[str, Any]], ...] = ()
    host_hostname: str = ""
    default_caps: tuple[str, ...] | None = None     # containers.conf; None: built in
    default_sysctls: tuple[str, ...] = ()           # containers.conf default_sysctls
    blkio_weight: bool = True                       # the kernel has blkio.weight
    shm_source: str | None = None   # --ipc host|container:ID: the /dev/shm to bind


#: containers.conf files podman reads when CONTAINERS_CONF is not set (later wins).
CONTAINERS_CONF_FILES = ("/usr/share/containers/containers.conf",
                         "/etc/containers/containers.conf")


def containers_conf_defaults(cache_dir: Path | None = None
                             ) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(default_capabilities, default_sysctls) from podman's containers.conf: the file
    named by $CONTAINERS_CONF alone, else the system files in order. With ``cache_dir``
    the two settings of each file are cached there by content hash: parsing the ~30 KB
    system file (and importing tomllib) is most of a small bundle's time."""
    env = os.environ.get("CONTAINERS_CONF")
    files = (env,) if env else CONTAINERS_CONF_FILES
    caps: tuple[str, ...] | None = None
    sysctl: tuple[str, ...] = ()
    for name in files:
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise errors.InvalidDocument(f"read containers.conf {name}: {e}",
                                         hint="fix the file or point CONTAINERS_CONF "
                                              "elsewhere") from None
        found = _conf_settings(name, data, cache_dir)
        if found.get("caps") is not None:
            caps = tuple(found["caps"])
        if found.get("sysctls") is not None:
            sysctl = tuple(found["sysctls"])
    return caps, sysctl


def _conf_settings(name: str, data: bytes, cache_dir: Path | None) -> dict[str, Any]:
    """{"caps", "sysctls"} set by one containers.conf (None: not set), via the cache."""
    import contextlib

    from podkit_common import atomic
    from podkit_common.jsonio import dumps, loads
    from podkit_runtime._seccomp import cache_key

    key = cache_key(b"containers-conf-1\0" + data)
    cached = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cached is not None:
        with contextlib.suppress(OSError, errors.InvalidDocument):
            found = loads(cached.read_bytes(), what=str(cached))
            if isinstance(found, dict):
                return found
    import tomllib

    try:
        section = tomllib.loads(data.decode()).get("containers") or {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise errors.InvalidDocument(f"read containers.conf {name}: {e}",
                                     hint="fix the file or point CONTAINERS_CONF "
                                          "elsewhere") from None
    found = {"caps": None, "sysctls": None}
    if "default_capabilities" in section:
        found["caps"] = [_security.normalize_capability(c)
                         for c in section["default_capabilities"]]
    if "default_sysctls" in section:
        found["sysctls"] = list(section["default_sysctls"])
    if cached is not None:
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(cached, dumps(found), durable=False)
    return found


def own_capabilities() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(bounding, effective) capability names of this process."""
    masks = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("CapBnd:", "CapEff:")):
                key, value = line.split(":", 1)
                masks[key] = int(value.strip(), 16)
    return (_security.caps_from_mask(masks.get("CapBnd", 0)),
            _security.caps_from_mask(masks.get("CapEff", 0)))


def host_hard_limits() -> dict[str, int]:
    import resource

    out = {}
    for name in RLIMITS:
        const = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if const is None:
            continue
        hard = resource.getrlimit(const)[1]
        out[f"RLIMIT_{name.upper()}"] = 2**64 - 1 if hard == resource.RLIM_INFINITY else hard
    return out


def stat_device(path: str) -> HostDevice:
    """The device node at ``path`` (symlinks followed, like podman); NotFound if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.NotFound(f"device {path} does not exist on the host",
                              hint="check the host path given to --device") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise errors.UsageError(f"{path} is not a device node",
                                hint="--device takes a character or block device")
    return HostDevice(path=path, kind=kind, major=os.major(st.st_rdev),
                      minor=os.minor(st.st_rdev), mode=st.st_mode & 0o777,
                      uid=st.st_uid, gid=st.st_gid)


def host_devices(root: str = "/dev") -> tuple[HostDevice, ...]:
    """Every device node under /dev (what podman gives a --privileged container)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _DEV_SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path == os.path.join(root, "console"):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(HostDevice(path=path, kind="c" if stat.S_ISCHR(st.st_mode) else "b",
                                        major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                                        mode=st.st_mode & 0o777, uid=st.st_uid,
                                        gid=st.st_gid))
    return tuple(found)


def shm_source(ipc: Any, runroot: Path) -> str | None:
    """The /dev/shm podman bind-mounts when the IPC namespace is shared: the host's, or
    the other container's (from its bundle's config.json)."""
    from podkit_common import atomic
    from podkit_runtime import _namespaces

    if ipc.kind == "host":
        return "/dev/shm"
    if ipc.kind != "container":
        return None
    cid = _namespaces._full_id(runroot / "runc", ipc.target)
    try:
        config = atomic.read_json(runroot / "bundles" / cid / "config.json")
    except (OSError, errors.PodkitError):
        return None
    for m in config.get("mounts") or []:
        if m.get("destination") == "/dev/shm" and m.get("type") == "bind":
            return str(m.get("source"))
    return None


def device_specs(items: tuple[str, ...]) -> list[tuple[HostDevice, str, str]]:
    """--device items stat'ed; a directory gives every device node below it, placed at
    the same relative path under the container path (like podman)."""
    out = []
    for host, ctr, perms in map(parse_device, items):
        if os.path.isdir(host):
            found = host_devices(host)
            if not found:
                raise errors.NotFound(f"no device nodes under {host}",
                                      hint="give --device a device or a directory of them")
            for dev in found:
                rel = os.path.relpath(dev.path, host)
                out.append((dev, os.path.join(ctr, rel), perms))
        else:
            out.append((stat_device(host), ctr, perms))
    return out


def gather_host_facts(opts: Any, runroot: Path, uid: int) -> HostFacts:
    """Everything the isolation options need from the host, for ``opts`` (BundleOptions)."""
    from podkit_runtime import _hooks, _isolation, _namespaces, _seccomp

    bounding, effective = own_capabilities()
    default_caps, default_sysctls = containers_conf_defaults(runroot / "containers-conf-cache")
    facts: dict[str, Any] = {
        "default_caps": default_caps, "default_sysctls": default_sysctls,
        "available_caps": bounding,
        "can_raise_rlimits": "CAP_SYS_RESOURCE" in effective,
        "hard_limits": host_hard_limits() if opts.ulimit else {},
        # gethostname(2) is uname's nodename: no socket module to import for it
        "host_hostname": os.uname().nodename if opts.uts == "host" else "",
        # c/common's sysinfo test: podman drops --blkio-weight without this file
        "blkio_weight": opts.blkio_weight is None
        or os.path.exists("/sys/fs/cgroup/blkio/blkio.weight"),
    }
    facts["devices"] = tuple(device_specs(opts.device))
    if opts.privileged:
        facts["privileged_devices"] = host_devices()
    modes = _isolation.namespace_modes(opts)
    if any(m.kind in ("container", "path") for m in modes.values()):
        facts["namespaces"] = _namespaces.resolve_modes(modes, runroot / "runc")
    facts["shm_source"] = shm_source(modes["ipc"], runroot)
    sec = _security.parse_security_opts(opts.security_opt)
    if not opts.privileged and sec.seccomp != "unconfined":
        caps = _isolation.capabilities_for(opts, uid, bounding, default_caps)["bounding"]
        path = Path(sec.seccomp) if sec.seccomp else _seccomp.default_profile_path()
        if path is not None:
            facts["seccomp"] = _seccomp.load_seccomp(path, caps, runroot / "seccomp-cache")
    facts["hooks"] = tuple(_hooks.read_hook_dirs(
        tuple(opts.hooks_dir) if opts.hooks_dir is not None else None))
    return HostFacts(**facts)
