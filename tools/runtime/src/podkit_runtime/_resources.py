"""Cgroup limits, rlimits, sysctls and devices from podman's run options (pure).

The host facts these rules need (a device's major/minor, the host's hard rlimits) are
looked up by ``_hostfacts`` in the bundle step and passed in.
"""

from __future__ import annotations

from podkit_common.errors import PermissionDenied, UsageError
from podkit_common.records import record
from podkit_runtime._parse_units import parse_cpus, parse_cpuset, parse_int, parse_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: containers.conf's pids_limit default, which podman applies to every container.
DEFAULT_PIDS_LIMIT = 2048
UNLIMITED = 2**64 - 1

RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")

#: Sysctls that live in a namespace podkit gives the container (podman's list).
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
UTS_SYSCTLS = ("kernel.domainname", "kernel.hostname")


@record(frozen=True)
class ResourceOpts:
    """The raw option strings (parsed and checked here, so errors name the option)."""

    memory: str | None = None
    memory_swap: str | None = None
    memory_reservation: str | None = None
    cpus: str | None = None
    cpu_shares: str | None = None
    cpu_period: str | None = None
    cpu_quota: str | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: str | None = None
    blkio_weight: str | None = None


def linux_resources(o: ResourceOpts) -> dict[str, Any]:
    """linux.resources (without devices) the way podman fills it for cgroups v1."""
    res: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if o.memory is not None:
        memory["limit"] = parse_size(o.memory, "memory")
    if o.memory_swap is not None:
        if "limit" not in memory:
            raise UsageError("you should always set a memory limit when using a memoryswap "
                             "limit, see usage", hint="add --memory")
        swap = -1 if o.memory_swap.strip() == "-1" else parse_size(o.memory_swap, "memory-swap")
        if swap != -1 and swap < memory["limit"]:
            raise UsageError("minimum memoryswap limit should be larger than memory limit, "
                             "see usage", hint="--memory-swap counts memory plus swap")
        if swap != -1:  # podman leaves "unlimited" out
            memory["swap"] = swap
    elif "limit" in memory:
        memory["swap"] = 2 * memory["limit"]  # podman's default: as much swap as memory
    if o.memory_reservation is not None:
        memory["reservation"] = parse_size(o.memory_reservation, "memory-reservation")
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if o.cpu_shares is not None:
        cpu["shares"] = parse_int(o.cpu_shares, "cpu-shares", minimum=2, maximum=262144)
    if o.cpus is not None:
        if o.cpu_quota is not None or o.cpu_period is not None:
            raise UsageError("--cpus and --cpu-period/--cpu-quota cannot be set together",
                             hint="use either --cpus or --cpu-period with --cpu-quota")
        cpu["quota"], cpu["period"] = parse_cpus(o.cpus)
    if o.cpu_quota is not None:
        cpu["quota"] = parse_int(o.cpu_quota, "cpu-quota", minimum=-1)
    if o.cpu_period is not None:
        cpu["period"] = parse_int(o.cpu_period, "cpu-period", minimum=1000, maximum=1_000_000)
    if o.cpuset_cpus is not None:
        cpu["cpus"] = parse_cpuset(o.cpuset_cpus, "cpuset-cpus")
    if o.cpuset_mems is not None:
        cpu["mems"] = parse_cpuset(o.cpuset_mems, "cpuset-mems")
    if cpu:
        res["cpu"] = cpu
    limit = DEFAULT_PIDS_LIMIT if o.pids_limit is None else parse_int(o.pids_limit,
                                                                       "pids-limit")
    # 0 and -1 mean unlimited: podman writes 0, which runc leaves at the cgroup's "max"
    res["pids"] = {"limit": max(limit, 0)}
    if o.blkio_weight is not None:
        res["blockIO"] = {"weight": parse_int(o.blkio_weight, "blkio-weight", minimum=10,
                                              maximum=1000)}
    return res


def parse_ulimit(item: str) -> tuple[str, int, int]:
    """"nofile=1024:2048" -> ("RLIMIT_NOFILE", 1024, 2048); -1 is unlimited."""
    name, sep, values = item.partition("=")
    name = name.strip().lower()
    if not sep or name not in RLIMITS:
        raise UsageError(f"invalid ulimit {item!r}",
                         hint=f"use NAME=SOFT[:HARD] with NAME one of {', '.join(RLIMITS)}")
    soft_s, _, hard_s = values.partition(":")

    def number(text: str) -> int:
        if text.strip() == "-1":
            return UNLIMITED
        return parse_int(text, f"ulimit {name}", minimum=0)

    soft = number(soft_s)
    hard = number(hard_s) if hard_s else soft
    if soft > hard:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: "
                         f"{soft} > {hard}", hint=f"check --ulimit {item}")
    return f"RLIMIT_{name.upper()}", soft, hard


def rlimits(items: tuple[str, ...], host_hard: dict[str, int],
            can_raise: bool) -> list[dict[str, Any]]:
    """process.rlimits; a hard limit above the host's is refused when we cannot raise it
    (no CAP_SYS_RESOURCE): runc would fail to start the container anyway."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        kind, soft, hard = parse_ulimit(item)
        ceiling = host_hard.get(kind)
        if not can_raise and ceiling is not None and hard > ceiling:
            raise PermissionDenied(
                f"--ulimit {item}: hard limit {hard} is above this host's hard limit "
                f"{ceiling} for {kind}, and raising it needs CAP_SYS_RESOURCE",
                hint=f"ask for at most {ceiling}")
        out[kind] = {"type": kind, "hard": hard, "soft": soft}
    return list(out.values())


def sysctls(items: tuple[str, ...], *, host_ipc: bool, host_net: bool,
            host_uts: bool) -> dict[str, str]:
    """linux.sysctl; only namespaced sysctls, and only when that namespace is private."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or key != key.strip() or " " in key:
            raise UsageError(f"invalid sysctl {item!r}", hint="use NAME=VALUE")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            shared = host_ipc and "IPC"
        elif key.startswith("net."):
            shared = host_net and "Network"
        elif key in UTS_SYSCTLS:
            shared = host_uts and "UTS"
        else:
            raise UsageError(f"sysctl {key!r} is not allowed",
                             hint="only namespaced sysctls can be set: net.*, fs.mqueue.*, "
                                  "kernel.msg*/sem/shm*, kernel.hostname/domainname")
        if shared:
            raise UsageError(f"sysctl {key} can't be set since {shared} Namespace set to host",
                             hint="drop the sysctl or keep that namespace private")
        out[key] = value
    return out


@record(frozen=True)
class HostDevice:
    """A host device node as stat() saw it."""

    path: str
    kind: str          # "c" or "b"
    major: int
    minor: int
    mode: int          # permission bits (the OCI schema allows 0..0o777 in fileMode;
                       # podman also writes the file-type bits there)
    uid: int = 0
    gid: int = 0


def parse_device(item: str) -> tuple[str, str, str]:
    """--device HOST[:CTR[:PERMS]] -> (host, container path, permissions)."""
    parts = item.split(":")
    host = parts[0]
    ctr, perms = host, "rwm"
    if len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
            perms = parts[1]
        else:
            ctr = parts[1]
    elif len(parts) == 3:
        ctr, perms = parts[1], parts[2]
    elif len(parts) > 3:
        raise UsageError(f"invalid device specification {item!r}",
                         hint="use HOST[:CONTAINER[:PERMISSIONS]]")
    if not host.startswith("/") or not ctr.startswith("/"):
        raise UsageError(f"invalid device specification {item!r}: paths must be absolute",
                         hint="use HOST[:CONTAINER[:PERMISSIONS]]")
    if not perms or not set(perms) <= set("rwm"):
        raise UsageError(f"invalid device mode {perms!r} in {item!r}",
                         hint="permissions are a combination of r, w and m")
    return host, ctr, perms


def devices(specs: list[tuple[HostDevice, str, str]]) -> tuple[list[dict[str, Any]],
                                                                 list[dict[str, Any]]]:
    """(linux.devices, the resources.devices allow rules) for devices already stat'ed."""
    nodes, rules = [], []
    for dev, ctr, perms in specs:
        nodes.append({"path": ctr, "type": dev.kind, "major": dev.major, "minor": dev.minor,
                      "fileMode": dev.mode, "uid": dev.uid, "gid": dev.gid})
        rules.append({"allow": True, "type": dev.kind, "major": dev.major,
                      "minor": dev.minor, "access": perms})
    return nodes, rules


def cgroups_path(parent: str | None, default: str, cid: str) -> str:
    """``--cgroup-parent`` (cgroupfs: an absolute path) or the default path."""
    if parent is None:
        return default
    if not parent.startswith("/") or ".." in parent.split("/"):
        raise UsageError(f"invalid --cgroup-parent {parent!r}",
                         hint="with the cgroupfs manager give an absolute path like /mygroup")
    return f"{parent.rstrip('/')}/podkit-{cid}"


def oom_score_adj(value: str | None) -> int | None:
    return None if value is None else parse_int(value, "oom-score-adj", minimum=-1000,
                                                 maximum=1000)
