"""`pod info` and `pod version`: podman 4.3.1's documents, filled with what podkit and
this host really are (no field is invented: what podkit has no notion of is empty, like
podman's own slirp4netns block on a rootful host).

    info()    -> {"host": {...}, "store": {...}, "registries": {}, "plugins": {...},
                  "version": {...}}
    version() -> {"Client": {"APIVersion", "Version", "GoVersion", "PythonVersion", ...}}

``GoVersion`` says which Python runs podkit ("python3.11.7"): templates written for
podman (``{{.Client.GoVersion}}``) keep working and nobody is told a lie.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def go_arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def _version_line(binary: str | None, *, whole: bool = False) -> str:
    if not binary:
        return ""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except OSError:
        return ""
    return out if whole else ", ".join(out.splitlines())


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def _os_release() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key] = value.strip().strip('"')
    except OSError:
        pass
    return {"distribution": fields.get("ID", ""), "version": fields.get("VERSION_ID", ""),
            "codename": fields.get("VERSION_CODENAME", "")}


def cgroup_version() -> str:
    return "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"


def _cgroup_controllers() -> list[str]:
    if cgroup_version() == "v2":
        try:
            return Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
        except OSError:
            return []
    wanted = ("cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "pids")
    return [c for c in wanted if Path("/sys/fs/cgroup", c).exists()]


def _cpu_utilization() -> dict[str, float]:
    """Since boot, from /proc/stat's first line (podman's cpuUtilization)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return {"userPercent": 0.0, "systemPercent": 0.0, "idlePercent": 0.0}
    total = sum(fields) or 1
    user, system, idle = fields[0] + fields[1], fields[2], fields[3]
    return {"userPercent": round(user * 100 / total, 2),
            "systemPercent": round(system * 100 / total, 2),
            "idlePercent": round(idle * 100 / total, 2)}


def _uptime() -> str:
    """podman's "5h 32m 26.00s (Approximately 0.21 days)"."""
    try:
        secs = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}h {int(m)}m {s:.2f}s (Approximately {secs / 86400:.2f} days)"


def _python() -> str:
    return platform.python_version()


def _built() -> tuple[int, str]:
    """When this podkit was installed (the package's files), as podman's Built fields."""
    import podkit_pod

    try:
        ts = int(Path(podkit_pod.__file__).stat().st_mtime)
    except OSError:
        ts = 0
    return ts, time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(ts))


def version() -> dict[str, Any]:
    """podman version's document (``Client`` only: there is no server)."""
    from podkit_pod import __version__

    built, built_time = _built()
    return {"Client": {"APIVersion": __version__, "Version": __version__,
                       "GoVersion": f"python{_python()}", "PythonVersion": _python(),
                       "GitCommit": "", "BuiltTime": built_time, "Built": built,
                       "OsArch": f"linux/{go_arch()}", "Os": "linux"}}


def _security() -> dict[str, Any]:
    from podkit_runtime._hostfacts import containers_conf_defaults
    from podkit_runtime._spec import DEFAULT_CAPABILITIES

    caps = containers_conf_defaults()[0] or DEFAULT_CAPABILITIES
    seccomp = Path("/usr/share/containers/seccomp.json")
    return {"apparmorEnabled": False,
            "capabilities": ",".join(sorted(caps)),
            "rootless": os.geteuid() != 0, "seccompEnabled": seccomp.exists(),
            "seccompProfilePath": str(seccomp) if seccomp.exists() else "",
            "selinuxEnabled": Path("/sys/fs/selinux/enforce").exists()}


def _container_counts(roots: Roots) -> dict[str, int]:
    from podkit_pod._ps import all_rows

    rows = all_rows(roots)
    running = sum(r["State"] == "running" for r in rows)
    paused = sum(r["State"] == "paused" for r in rows)
    return {"number": len(rows), "paused": paused, "running": running,
            "stopped": len(rows) - running - paused}


def registries() -> dict[str, Any]:
    """podman info's registries: each [[registry]] by prefix, and the search list, from
    the registries.conf pod's pulls read (empty when there is none or it is invalid)."""
    from podkit_common import errors
    from podkit_image_pull._regconf import load_registries_conf

    try:
        conf = load_registries_conf()
    except errors.PodkitError:
        return {}
    if conf is None:
        return {}
    out: dict[str, Any] = {
        r.prefix: {"Prefix": r.prefix, "Location": r.location, "Insecure": r.insecure,
                   "PullFromMirror": "", "Mirrors": [
                       {"Location": m.location, "Insecure": m.insecure,
                        "PullFromMirror": m.pull_from_mirror} for m in r.mirrors] or None,
                   "Blocked": r.blocked, "MirrorByDigestOnly": r.mirror_by_digest_only}
        for r in conf.registries}
    if conf.unqualified_search_registries:
        out["search"] = list(conf.unqualified_search_registries)
    return out


def _runtime_versions(roots: Roots, runc: str | None, conmon: str | None
                      ) -> dict[str, dict[str, Any]]:
    """"package" (podman's dpkg name_version_arch) and the known vulnerabilities of
    runc and conmon (podkit_runtime._versions, cached in the runroot)."""
    from podkit_runtime._versions import host_report

    binaries = {k: v for k, v in (("runc", runc), ("conmon", conmon)) if v}
    out: dict[str, dict[str, Any]] = {}
    for name, entry in host_report(roots, binaries).items():
        package = entry.get("package") or ""
        out[name] = {"package": f"{name}_{package}_{go_arch()}" if package else "",
                     "vulnerabilities": list(entry.get("vulnerabilities") or [])}
    for name in ("runc", "conmon"):
        out.setdefault(name, {"package": "", "vulnerabilities": []})
    return out


def info(roots: Roots) -> dict[str, Any]:
    """podman info's document for this host and these roots."""
    from podkit_storage import list_images

    mem = _meminfo()
    existing = next((p for p in (roots.root, *roots.root.parents) if p.exists()), None)
    disk = shutil.disk_usage(existing) if existing else None
    runc = shutil.which("runc")
    conmon = shutil.which("conmon")
    security = _security()
    checked = _runtime_versions(roots, runc, conmon)
    host = {
        "arch": go_arch(), "cgroupManager": "cgroupfs", "cgroupVersion": cgroup_version(),
        "cgroupControllers": _cgroup_controllers(),
        "conmon": {"path": conmon or "", "version": _version_line(conmon),
                   **checked.get("conmon", {})},
        "cpus": os.cpu_count() or 1, "cpuUtilization": _cpu_utilization(),
        "distribution": _os_release(), "eventLogger": "none",
        "hostname": platform.node(), "idMappings": {"gidmap": None, "uidmap": None},
        "kernel": platform.release(), "logDriver": "k8s-file",
        "memFree": mem.get("MemAvailable", mem.get("MemFree", 0)),
        "memTotal": mem.get("MemTotal", 0), "networkBackend": "cni",
        "ociRuntime": {"name": "runc", "path": runc or "",
                       "version": _version_line(runc, whole=True), **checked.get("runc", {})},
        "os": "linux", "security": security, "serviceIsRemote": False,
        "slirp4netns": {"executable": "", "package": "", "version": ""},
        "swapFree": mem.get("SwapFree", 0), "swapTotal": mem.get("SwapTotal", 0),
        "uptime": _uptime(), "linkmode": "dynamic",
    }
    store = {
        "configFile": "", "containerStore": _container_counts(roots),
        "graphDriverName": "overlay", "graphOptions": {},
        "graphRoot": str(roots.root),
        "graphRootAllocated": disk.total if disk else 0,
        "graphRootUsed": disk.used if disk else 0,
        "imageCopyTmpDir": os.environ.get("TMPDIR", "/var/tmp"),
        "imageStore": {"number": len(list_images(roots))},
        "runRoot": str(roots.runroot), "volumePath": str(roots.root / "volumes"),
    }
    return {"host": host, "store": store, "registries": registries(),
            "plugins": {"volume": ["local"], "network": ["bridge", "macvlan", "ipvlan"],
                        "log": ["k8s-file", "none", "passthrough"], "authorization": None},
            "version": version()["Client"]}


# -- YAML as podman prints info (Go's yaml: sorted keys, plain scalars where safe) -----

def _yaml_scalar(value: Any) -> str:
    import re

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text == "":
        return '""'
    if re.fullmatch(r"[-+]?(\d+|\d*\.\d+|\d+\.)([eE][-+]?\d+)?|true|false|null|yes|no|on|off|~",
                    text, re.I):
        return f'"{text}"'
    if re.search(r"^[\s\-?:,\[\]{}#&*!|>'\"%@`]|: | #|\s$", text):
        return "'" + text.replace("'", "''") + "'"
    return text


def to_yaml(value: Any, indent: int = 0) -> str:
    """A small YAML writer for podman info's tree (dicts, lists, scalars)."""
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        for key in sorted(value):
            v = value[key]
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, list) and v:
                out.append(f"{pad}{key}:\n{to_yaml(v, indent)}")
            elif isinstance(v, str) and "\n" in v:
                body = "".join(f"{pad}  {line}\n" for line in v.splitlines())
                out.append(f"{pad}{key}: |-\n{body}")
            else:
                scalar = "{}" if isinstance(v, dict) else "[]" if isinstance(v, list) \
                    else _yaml_scalar(v)
                out.append(f"{pad}{key}: {scalar}\n")
        return "".join(out)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 2)
                out.append(f"{pad}- {inner[indent + 2:]}")
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}\n")
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"
