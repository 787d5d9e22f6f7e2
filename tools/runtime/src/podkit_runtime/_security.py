"""Capabilities, privileged mode, no-new-privileges and masked paths, podman's way (pure).

podman (c/common ``capabilities.MergeCapabilities``) starts from containers.conf's
default_capabilities, drops ``--cap-drop`` and adds ``--cap-add``; ``ALL`` means every
capability in the engine's own bounding set (here that lacks CAP_SYS_RESOURCE, so
"ALL" does too). Root gets the result as bounding, effective and permitted; another
user gets it as bounding only, and just the ``--cap-add``-ed ones as effective,
permitted, inheritable and ambient. ``--privileged`` takes every capability, no masked
or read-only paths, a writable /sys and cgroup fs, the host's devices, no seccomp.
"""

from __future__ import annotations

from podkit_common.errors import UsageError
from podkit_common.records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Every Linux capability, in kernel order (CAP_CHOWN is 0).
LINUX_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def caps_from_mask(mask: int) -> tuple[str, ...]:
    """The capability names set in a /proc/PID/status Cap* bit mask."""
    return tuple(c for i, c in enumerate(LINUX_CAPABILITIES) if mask >> i & 1)


def normalize_capability(name: str) -> str:
    """"net_raw", "CAP_NET_RAW", "Net_Raw" -> "CAP_NET_RAW"; "all" -> "ALL"."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in LINUX_CAPABILITIES:
        raise UsageError(f"unknown capability {name!r}",
                         hint="use a Linux capability name such as NET_ADMIN or CAP_NET_ADMIN "
                              "(see capabilities(7)), or ALL")
    return full


def _normalize_all(names: tuple[str, ...], available: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        for part in name.split(","):
            if not part.strip():
                continue
            cap = normalize_capability(part)
            if cap != "ALL" and cap not in available:
                raise UsageError(f"capability {cap} is not available on this host",
                                 hint="the engine's own bounding set lacks it, so no "
                                      "container can have it")
            out.append(cap)
    return out


def merge_capabilities(base: tuple[str, ...], add: tuple[str, ...], drop: tuple[str, ...],
                       available: tuple[str, ...]) -> list[str]:
    """c/common's MergeCapabilities: base - drop + add, sorted; ALL on either side."""
    adds = _normalize_all(add, available)
    drops = _normalize_all(drop, available)
    if "ALL" in drops:
        if "ALL" in adds:
            raise UsageError("adding all caps and removing all caps not allowed",
                             hint="give ALL to only one of --cap-add and --cap-drop")
        return sorted(set(adds))
    start = list(base)
    if "ALL" in adds:
        start, adds = list(available), []
    for cap in adds:
        if cap in drops:
            raise UsageError(f"capability {cap!r} cannot be dropped and added",
                             hint="give it to only one of --cap-add and --cap-drop")
    caps = [c for c in start if c not in drops] + [c for c in adds if c not in start]
    return sorted(set(caps))


def capability_sets(default: tuple[str, ...], add: tuple[str, ...], drop: tuple[str, ...],
                    *, privileged: bool, uid: int,
                    available: tuple[str, ...]) -> dict[str, list[str]]:
    """The OCI process.capabilities section (inheritable and ambient empty unless a
    non-root user was given caps with --cap-add, as podman does)."""
    # podman 4.3.1 ignores --cap-add/--cap-drop with --privileged
    caps = sorted(available) if privileged else merge_capabilities(default, add, drop,
                                                                    available)
    if uid == 0:
        return {"bounding": caps, "effective": list(caps), "permitted": list(caps),
                "inheritable": [], "ambient": []}
    user_caps = [c for c in merge_capabilities((), add, (), available) if c in caps]
    return {"bounding": caps, "effective": user_caps, "permitted": list(user_caps),
            "inheritable": list(user_caps), "ambient": list(user_caps)}


@record(frozen=True)
class SecurityOpts:
    """What ``--security-opt`` items say, parsed."""

    no_new_privileges: bool = False
    seccomp: str | None = None            # a path, "unconfined", or None for the default
    mask: tuple[str, ...] = ()
    unmask: tuple[str, ...] = ()


def parse_security_opts(items: tuple[str, ...]) -> SecurityOpts:
    """podman's --security-opt items: no-new-privileges[=true|false], seccomp=PATH|unconfined,
    mask=P1:P2, unmask=ALL|P1:P2; label=disable and apparmor=unconfined are accepted and
    mean nothing here (no SELinux or AppArmor on these hosts)."""
    nnp, seccomp = False, None
    mask: list[str] = []
    unmask: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep == "" and ":" in item:  # docker's old "key:value" spelling
            key, _, value = item.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise UsageError(f"invalid --security-opt {item!r}",
                                 hint="use no-new-privileges or no-new-privileges=true|false")
            nnp = value != "false"
        elif key == "seccomp" and value:
            seccomp = value
        elif key == "mask" and value:
            mask += [p for p in value.split(":") if p]
        elif key == "unmask" and value:
            unmask += [p for p in value.split(":") if p]
        elif item in ("label=disable", "label:disable", "apparmor=unconfined"):
            continue
        else:
            raise UsageError(f"invalid --security-opt {item!r}",
                             hint="podkit knows no-new-privileges, seccomp=PATH|unconfined, "
                                  "mask=PATHS, unmask=ALL|PATHS")
    return SecurityOpts(nnp, seccomp, tuple(mask), tuple(unmask))


def masked_and_readonly(masked: list[str], readonly: list[str], sec: SecurityOpts, *,
                        privileged: bool) -> tuple[list[str], list[str]]:
    """maskedPaths and readonlyPaths after --privileged and mask=/unmask=."""
    if privileged:
        return [], []
    if "ALL" in sec.unmask:
        masked, readonly = [], []
    else:
        masked = [p for p in masked if p not in sec.unmask]
        readonly = [p for p in readonly if p not in sec.unmask]
    for path in sec.mask:
        if not path.startswith("/"):
            raise UsageError(f"invalid --security-opt mask={path}: not an absolute path",
                             hint="give absolute paths inside the container")
        if path not in masked:
            masked.append(path)
    return masked, readonly


def privileged_mounts(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """/sys and the cgroup fs writable, as podman gives a --privileged container."""
    out = []
    for m in mounts:
        if m.get("destination") in ("/sys", "/sys/fs/cgroup") and "ro" in m.get("options", []):
            opts = ["rprivate"] + [("rw" if o == "ro" else o) for o in m["options"]
                                   if o != "rprivate"]
            m = {**m, "options": opts}
        out.append(m)
    return out
