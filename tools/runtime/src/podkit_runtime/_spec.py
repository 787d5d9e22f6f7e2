"""The OCI runtime config (config.json) of a container, as podman would write it.

Pure: :func:`build_config` computes the whole spec from the image config, the container
and the run options, with no I/O. Everything that needs the filesystem (resolving a
user name in the container's /etc/passwd, writing files) happens in ``_bundle``.
"""

from __future__ import annotations

from podkit_common.records import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
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


@record(frozen=True)
class User:
    """A resolved process user."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@record(frozen=True)
class BundleOptions:
    """Run options that shape the config (podman's names in comments)."""

    command: tuple[str, ...] = ()            # arguments after the image
    entrypoint: tuple[str, ...] | None = None  # --entrypoint; () clears the image's
    env: tuple[str, ...] = ()                # --env KEY=VALUE (KEY alone: from our env)
    workdir: str | None = None               # --workdir
    user: str | None = None                  # --user name|uid[:gid]
    hostname: str | None = None              # --hostname
    tty: bool = False                        # --tty
    # engineer A (process, users, mounts): parsed by _process_opts / _mounts
    env_files: tuple[str, ...] = ()          # --env-file FILE (read at bundle time)
    group_add: tuple[str, ...] = ()          # --group-add name|gid
    init: bool = False                       # --init (catatonit at /run/podman-init)
    init_path: str | None = None             # --init-path
    shm_size: str | None = None              # --shm-size 64m
    volumes: tuple[str, ...] = ()            # -v/--volume SRC:DST[:OPTS]
    mounts: tuple[str, ...] = ()             # --mount type=bind|tmpfs|volume,...
    tmpfs: tuple[str, ...] = ()              # --tmpfs DST[:OPTS]
    image_volume: str = "bind"               # --image-volume bind|tmpfs|ignore
    read_only: bool = False                  # --read-only
    # engineer B (namespaces, security, resources, hooks): raw strings, parsed and
    # checked by _isolation / _security / _resources / _namespaces / _hooks
    read_only_tmpfs: bool = True             # --read-only-tmpfs (with --read-only)
    pid: str | None = None                   # --pid host|private|container:ID|ns:PATH
    ipc: str | None = None                   # --ipc ...
    uts: str | None = None                   # --uts ...
    cgroupns: str | None = None              # --cgroupns ...
    cap_add: tuple[str, ...] = ()            # --cap-add NET_RAW|net_raw|ALL
    cap_drop: tuple[str, ...] = ()           # --cap-drop ...
    privileged: bool = False                 # --privileged
    security_opt: tuple[str, ...] = ()       # --security-opt no-new-privileges|seccomp=...
    memory: str | None = None                # --memory 64m
    memory_swap: str | None = None           # --memory-swap
    memory_reservation: str | None = None    # --memory-reservation
    cpus: str | None = None                  # --cpus 0.5
    cpu_shares: str | None = None            # --cpu-shares
    cpu_period: str | None = None            # --cpu-period
    cpu_quota: str | None = None             # --cpu-quota
    cpuset_cpus: str | None = None           # --cpuset-cpus 0-1
    cpuset_mems: str | None = None           # --cpuset-mems
    pids_limit: str | None = None            # --pids-limit (default 2048 like podman)
    blkio_weight: str | None = None          # --blkio-weight 10..1000
    oom_score_adj: str | None = None         # --oom-score-adj
    ulimit: tuple[str, ...] = ()             # --ulimit nofile=1024:2048
    sysctl: tuple[str, ...] = ()             # --sysctl net.ipv4.ip_forward=1
    device: tuple[str, ...] = ()             # --device HOST[:CTR[:PERMS]]
    cgroup_parent: str | None = None         # --cgroup-parent /mygroup
    hooks_dir: tuple[str, ...] | None = None  # --hooks-dir (None: podman's default dirs)
    labels: dict[str, str] = field(default_factory=dict)  # --label (kept in the document)
    annotations: dict[str, str] = field(default_factory=dict)
    pod: str | None = None                   # --pod NAME|ID: join it (_pod_members)


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
    if "TERM" not in values:  # podman's containers.conf env: with or without a tty
        put("TERM=xterm")
    put("container=podkit")
    for item in extra:
        put(item)
    if "HOSTNAME" not in values:
        put(f"HOSTNAME={hostname}")
    if "HOME" not in values:
        put(f"HOME={home}")
    return [f"{k}={values[k]}" for k in order]


def default_mounts(bundle_files: dict[str, str], *, read_only: bool = False
                   ) -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, plus its generated /etc files
    (read-only too with --read-only, like podman's)."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
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
                       "options": ["bind", "rprivate",
                                   *(["ro", "nosuid", "noexec", "nodev"] if read_only else [])]})
    return mounts


def build_config(image_config: dict[str, Any], container: dict[str, Any], user: User,
                 opts: BundleOptions, *, bundle_files: dict[str, str],
                 cgroups_path: str,
                 user_mounts: list[dict[str, Any]] | None = None,
                 host: Any = None) -> dict[str, Any]:
    """The complete OCI config.json for ``container`` (pure). ``user_mounts``: the
    resolved -v/--mount/--tmpfs/image-volume mounts (``_bundle_prep``); ``host``: the
    ``_hostfacts.HostFacts`` for the isolation options (``_isolation``)."""
    from podkit_runtime import _mounts, _process_opts

    cfg = image_config or {}
    hostname = opts.hostname or container["id"][:12]
    caps = list(DEFAULT_CAPABILITIES)
    config = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": opts.tty,
            "user": {"uid": user.uid, "gid": user.gid,
                     **({"additionalGids": list(user.additional_gids)}
                        if user.additional_gids else {})},
            "args": _process_opts.args_for(process_args(cfg, opts), opts),
            "env": merge_env(list(cfg.get("Env") or []), list(opts.env), hostname=hostname,
                             tty=opts.tty, home=user.home),
            "cwd": opts.workdir or cfg.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": container["rootfs"], "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": _mounts.merge_mounts(default_mounts(bundle_files, read_only=opts.read_only),
                                       [*_process_opts.init_mounts(opts), *(user_mounts or [])],
                                       shm_size=opts.shm_size),
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
    from podkit_runtime import _isolation

    return _isolation.apply_isolation(config, opts, user.uid, container["id"], host)


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
    linux = {**config["linux"], "namespaces": namespaces}
    if mode == "host" and linux.get("sysctl"):  # net.* belong to the host's netns then
        linux["sysctl"] = {k: v for k, v in linux["sysctl"].items() if not k.startswith("net.")}
    return {**config, "linux": linux}
