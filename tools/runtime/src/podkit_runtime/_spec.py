"""The OCI runtime config (config.json) of a container, as podman would write it.

Pure: :func:`build_config` computes the whole spec from the image config, the container
and the run options, with no I/O. Everything that needs the filesystem (resolving a
user name in the container's /etc/passwd, writing files) happens in ``_bundle``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: podman 4.x's default capability set (containers.conf default_capabilities).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT",
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/fs/selinux", "/sys/dev/block",
]
READONLY_PATHS = [
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]


@dataclass(frozen=True)
class User:
    """A resolved process user."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class BundleOptions:
    """Run options that shape the config (podman's names in comments)."""

    command: tuple[str, ...] = ()            # arguments after the image
    entrypoint: tuple[str, ...] | None = None  # --entrypoint; () clears the image's
    env: tuple[str, ...] = ()                # --env KEY=VALUE (KEY alone: from our env)
    workdir: str | None = None               # --workdir
    user: str | None = None                  # --user name|uid[:gid]
    hostname: str | None = None              # --hostname
    tty: bool = False                        # --tty
    read_only: bool = False                  # --read-only
    annotations: dict[str, str] = field(default_factory=dict)


def process_args(image_config: dict[str, Any], opts: BundleOptions) -> list[str]:
    """podman's rules: an --entrypoint replaces the image's and drops its Cmd; a command
    after the image replaces Cmd only."""
    if opts.entrypoint is not None:
        entrypoint = list(opts.entrypoint)
        cmd = list(opts.command)
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = list(opts.command) or list(image_config.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        from podkit_common.errors import UsageError

        raise UsageError("no command specified: the image has no Cmd or Entrypoint",
                         hint="give a command after the image")
    return args


def merge_env(image_env: list[str], extra: list[str], *, hostname: str, tty: bool,
              home: str) -> list[str]:
    """Image env, then --env (later wins), with PATH, HOSTNAME, HOME and TERM defaults."""
    order: list[str] = []
    values: dict[str, str] = {}

    def put(item: str) -> None:
        key, _, value = item.partition("=")
        if key not in values:
            order.append(key)
        values[key] = value

    for item in image_env:
        put(item)
    if "PATH" not in values:
        put(f"PATH={DEFAULT_PATH}")
    if tty and "TERM" not in values:
        put("TERM=xterm")
    put("container=podkit")
    for item in extra:
        put(item)
    if "HOSTNAME" not in values:
        put(f"HOSTNAME={hostname}")
    if "HOME" not in values:
        put(f"HOME={home}")
    return [f"{k}={values[k]}" for k in order]


def default_mounts(bundle_files: dict[str, str]) -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, plus its generated /etc files."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536000"]},
    ]
    for dest, src in sorted(bundle_files.items()):
        mounts.append({"destination": dest, "type": "bind", "source": src,
                       "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
    return mounts


def build_config(image_config: dict[str, Any], container: dict[str, Any], user: User,
                 opts: BundleOptions, *, bundle_files: dict[str, str],
                 cgroups_path: str) -> dict[str, Any]:
    """The complete OCI config.json for ``container`` (pure)."""
    cfg = image_config or {}
    hostname = opts.hostname or container["id"][:12]
    caps = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": opts.tty,
            "user": {"uid": user.uid, "gid": user.gid,
                     **({"additionalGids": list(user.additional_gids)}
                        if user.additional_gids else {})},
            "args": process_args(cfg, opts),
            "env": merge_env(list(cfg.get("Env") or []), list(opts.env), hostname=hostname,
                             tty=opts.tty, home=user.home),
            "cwd": opts.workdir or cfg.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": container["rootfs"], "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": default_mounts(bundle_files),
        "annotations": {"io.podkit.container.name": container.get("name", ""),
                        "io.podkit.container.image": container.get("image_name") or "",
                        **opts.annotations},
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def with_network(config: dict[str, Any], network: dict[str, Any] | None) -> dict[str, Any]:
    """The config with its network namespace set from pod-netsetup's section (pure):
    ``none`` a new empty one, ``host`` none at all (share the host's), otherwise the
    namespace path the network stage made."""
    namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    mode = (network or {}).get("mode", "none")
    if mode != "host":
        ns: dict[str, Any] = {"type": "network"}
        if network and network.get("netns"):
            ns["path"] = network["netns"]
        namespaces.append(ns)
    return {**config, "linux": {**config["linux"], "namespaces": namespaces}}
