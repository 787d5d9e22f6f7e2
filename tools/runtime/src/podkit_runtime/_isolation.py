"""Namespaces, security, resources and hooks applied to a config (pure).

``build_config`` hands its config here; :func:`apply_isolation` returns it with
process.capabilities/noNewPrivileges/rlimits/oomScoreAdj, linux.namespaces/resources/
devices/sysctl/seccomp/maskedPaths/readonlyPaths/cgroupsPath, the read-only tmpfs
mounts and the OCI hooks set from the options and the host facts gathered in the
bundle step (``_hostfacts``).
"""

from __future__ import annotations

import contextlib

from podkit_common.errors import UsageError
from podkit_common.keyvalues import key_values
from podkit_runtime import _hooks, _namespaces, _resources, _security
from podkit_runtime._hostfacts import HostFacts

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: c/common v0.50's built-in default_capabilities (podman 4.3.1), used when no
#: containers.conf sets them; Debian's /usr/share/containers/containers.conf narrows
#: them to 11 (no AUDIT_WRITE, MKNOD, NET_RAW), and podkit reads it like podman.
BUILTIN_CAPABILITIES = (
    "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
    "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
)

#: Where --read-only puts writable tmpfs mounts unless --read-only-tmpfs=false.
READ_ONLY_TMPFS = ("/tmp", "/var/tmp", "/run")
_TMPFS_OPTIONS = ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]


def namespace_modes(opts: Any) -> dict[str, _namespaces.NamespaceMode]:
    return {"pid": _namespaces.parse_mode(opts.pid, "--pid"),
            "ipc": _namespaces.parse_mode(opts.ipc, "--ipc"),
            "uts": _namespaces.parse_mode(opts.uts, "--uts"),
            "cgroup": _namespaces.parse_mode(opts.cgroupns, "--cgroupns")}


def capabilities_for(opts: Any, uid: int, available: tuple[str, ...],
                     default: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    base = BUILTIN_CAPABILITIES if default is None else default
    return _security.capability_sets(base, tuple(opts.cap_add), tuple(opts.cap_drop),
                                     privileged=opts.privileged, uid=uid, available=available)


def _resource_opts(opts: Any) -> _resources.ResourceOpts:
    return _resources.ResourceOpts(
        memory=opts.memory, memory_swap=opts.memory_swap,
        memory_reservation=opts.memory_reservation, cpus=opts.cpus,
        cpu_shares=opts.cpu_shares, cpu_period=opts.cpu_period, cpu_quota=opts.cpu_quota,
        cpuset_cpus=opts.cpuset_cpus, cpuset_mems=opts.cpuset_mems,
        pids_limit=opts.pids_limit, blkio_weight=opts.blkio_weight)


def validate(opts: Any) -> None:
    """Check every isolation option's syntax before any I/O (errors exit 2)."""
    capabilities_for(opts, 0, _security.LINUX_CAPABILITIES)
    sec = _security.parse_security_opts(opts.security_opt)
    _security.masked_and_readonly([], [], sec, privileged=opts.privileged)
    modes = namespace_modes(opts)
    _resources.sysctls(tuple(opts.sysctl), host_ipc=modes["ipc"].kind == "host",
                       host_net=False, host_uts=modes["uts"].kind == "host")
    _resources.cgroups_path(opts.cgroup_parent, "", "")
    _resources.linux_resources(_resource_opts(opts))
    for item in opts.ulimit:
        _resources.parse_ulimit(item)
    for item in opts.device:
        _resources.parse_device(item)
    _resources.oom_score_adj(opts.oom_score_adj)


def apply_isolation(config: dict[str, Any], opts: Any, uid: int, cid: str,
                    host: HostFacts | None) -> dict[str, Any]:
    """``config`` with the isolation options applied (returns a new dict)."""
    host = host or HostFacts()
    process = dict(config["process"])
    linux = dict(config["linux"])
    mounts = list(config["mounts"])
    out = {**config}

    process["capabilities"] = capabilities_for(opts, uid, host.available_caps,
                                               host.default_caps)
    sec = _security.parse_security_opts(opts.security_opt)
    process["noNewPrivileges"] = sec.no_new_privileges
    limits = _resources.rlimits(tuple(opts.ulimit), host.hard_limits, host.can_raise_rlimits)
    if limits:
        process["rlimits"] = limits
    oom = _resources.oom_score_adj(opts.oom_score_adj)
    if oom is not None:
        process["oomScoreAdj"] = oom

    modes = namespace_modes(opts)
    if host.namespaces is not None:
        paths = dict(host.namespaces)
    else:
        paths = {}
        for t in _namespaces.DEFAULT_PRIVATE:
            mode = modes.get(t, _namespaces.NamespaceMode())
            if mode.kind != "host":
                paths[t] = mode.target if mode.kind == "path" else None
    paths.setdefault("network", None)  # settled by pod-netsetup at run time
    paths.setdefault("mount", None)
    linux["namespaces"] = _namespaces.namespace_list(paths)
    if "uts" not in paths or paths["uts"] is not None:
        # runc cannot set a hostname in a namespace it does not create
        default = out.pop("hostname", None)
        if "uts" not in paths and host.host_hostname:  # podman: the host's name
            process["env"] = [f"HOSTNAME={host.host_hostname}"
                              if e == f"HOSTNAME={default}" else e
                              for e in process.get("env") or []]

    resources = _resources.linux_resources(_resource_opts(opts))
    if not host.blkio_weight:  # podman: "Weight discarded" (runc would fail to write it)
        resources.pop("blockIO", None)
    nodes, rules = _resources.devices(list(host.devices))
    if opts.privileged:
        priv_nodes, _ = _resources.devices([(d, d.path, "rwm") for d in
                                            host.privileged_devices])
        nodes = priv_nodes + [n for n in nodes if n["path"] not in
                              {p["path"] for p in priv_nodes}]
        resources["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        resources["devices"] = [{"allow": False, "access": "rwm"}, *rules]
    linux["resources"] = resources
    if nodes:
        linux["devices"] = nodes
    # The network is chosen later (pod-netsetup); with_network drops net.* sysctls
    # for the host's network, as podman drops its default ones there.
    shared = {"host_ipc": modes["ipc"].kind == "host", "host_net": False,
              "host_uts": modes["uts"].kind == "host"}
    sysctl: dict[str, str] = {}
    for item in host.default_sysctls:  # podman skips defaults it cannot apply
        with contextlib.suppress(UsageError):
            sysctl.update(_resources.sysctls((item,), **shared))
    sysctl.update(_resources.sysctls(tuple(opts.sysctl), **shared))
    if sysctl:
        linux["sysctl"] = sysctl
    linux["cgroupsPath"] = _resources.cgroups_path(opts.cgroup_parent, linux["cgroupsPath"],
                                                   cid)

    linux["maskedPaths"], linux["readonlyPaths"] = _security.masked_and_readonly(
        list(linux.get("maskedPaths") or []), list(linux.get("readonlyPaths") or []), sec,
        privileged=opts.privileged)
    if not linux["maskedPaths"]:
        del linux["maskedPaths"]
    if not linux["readonlyPaths"]:
        del linux["readonlyPaths"]
    if host.seccomp is not None and not opts.privileged and sec.seccomp != "unconfined":
        linux["seccomp"] = host.seccomp

    if opts.privileged:
        mounts = _security.privileged_mounts(mounts)
    if host.shm_source:  # a shared IPC namespace shares its /dev/shm, like podman
        mounts = [{"destination": "/dev/shm", "type": "bind", "source": host.shm_source,
                   "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]}
                  if m["destination"] == "/dev/shm" and m.get("type") == "tmpfs" else m
                  for m in mounts]
    if config.get("root", {}).get("readonly") and opts.read_only_tmpfs:
        taken = {m["destination"] for m in mounts}
        mounts += [{"destination": d, "type": "tmpfs", "source": "tmpfs",
                    "options": list(_TMPFS_OPTIONS)} for d in READ_ONLY_TMPFS
                   if d not in taken]

    out.update(process=process, linux=linux, mounts=mounts)
    hooks = _hooks.select_hooks(list(host.hooks), out)
    if hooks:
        out["hooks"] = hooks
    return out


#: The BundleOptions fields the isolation options fill, by CLI parameter name.
_CLI_SCALARS = ("pid", "ipc", "uts", "cgroupns", "memory", "memory_swap",
                "memory_reservation", "cpus", "cpu_shares", "cpu_period", "cpu_quota",
                "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight", "oom_score_adj",
                "cgroup_parent")
_CLI_LISTS = ("cap_add", "cap_drop", "security_opt", "ulimit", "sysctl", "device")


def bool_word(value: str | bool, option: str) -> bool:
    from podkit_common.errors import UsageError

    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes", ""):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"invalid value for {option}: {value!r}", hint="use true or false")


def cli_options(values: dict[str, Any]) -> dict[str, Any]:
    """BundleOptions fields from the CLI's raw parameters (``values``: the command's
    parameters by name; names it does not know are ignored)."""
    out: dict[str, Any] = {k: values[k] for k in _CLI_SCALARS if k in values}
    out.update({k: tuple(values.get(k) or ()) for k in _CLI_LISTS if k in values})
    if "privileged" in values:
        out["privileged"] = bool(values["privileged"])
    if "read_only_tmpfs" in values:
        out["read_only_tmpfs"] = bool_word(values["read_only_tmpfs"], "--read-only-tmpfs")
    if values.get("hooks_dir"):
        out["hooks_dir"] = tuple(values["hooks_dir"])
    if "label" in values:
        out["labels"] = key_values(values["label"], "--label")
    if "annotation" in values:
        out["annotations"] = key_values(values["annotation"], "--annotation")
    return out


#: The public name (``podkit_runtime.isolation_options``) for callers like ``pod run``.
isolation_options = cli_options
