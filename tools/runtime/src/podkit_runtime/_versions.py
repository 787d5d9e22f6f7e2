"""runc and conmon checked against releases with known vulnerabilities, at start.

    describe(component, path)                       -> version, package, findings
    host_report(roots, {"runc": path, ...})         -> {"runc": {...}, "conmon": {...}}
    check_at_start(roots, runc, conmon, warn=)      -> the report; warns once

The table of known-vulnerable releases and the verdict on one release are pure and live
in :mod:`podkit_runtime._vulnerabilities`, loaded only when a binary changed.

The hot path (`pod run`) must not exec anything: the verdict is cached in
``<runroot>/runtime/versions.json`` keyed by each binary's path, mtime and size, so a
start costs two ``stat`` calls and one small read. ``--version``, ``dpkg-query`` and the
changelog are read only when a binary changed. The warning (one line on stderr) is given
once per runroot and binary: the cache remembers that it was said. ``pod info`` always
lists the findings. ``PODKIT_RUNTIME_CVE_ACK`` (comma-separated CVE ids, or ``all``)
silences the warning for findings an operator has acknowledged.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

ACK_ENV = "PODKIT_RUNTIME_CVE_ACK"
CACHE_VERSION = 1


# -- the host ----------------------------------------------------------------------------

def _run(argv: list[str]) -> str:
    from podkit_common import errors
    from podkit_common.spawn import run

    try:
        return run(argv, env=os.environ, timeout=10).stdout.decode(errors="replace")
    except (OSError, errors.Timeout):
        return ""


def binary_version(path: str) -> str:
    """"1.1.5+ds1" from ``runc --version``'s "runc version 1.1.5+ds1"."""
    first = _run([path, "--version"]).split("\n", 1)[0]
    m = re.search(r"version\s+(\S+)", first)
    return m.group(1) if m else ""


def debian_package(path: str, name: str) -> tuple[str, str]:
    """(package version, changelog.Debian text) of the Debian package that ships ``path``
    (``("", "")`` when dpkg does not know it)."""
    owner = _run(["dpkg-query", "-S", os.path.realpath(path)]).split(":", 1)[0].strip()
    if not owner:
        return "", ""
    import gzip

    version = _run(["dpkg-query", "-W", "-f=${Version}", owner]).strip()
    changelog = ""
    for doc in (Path("/usr/share/doc", owner, "changelog.Debian.gz"),
                Path("/usr/share/doc", name, "changelog.Debian.gz")):
        try:
            changelog = gzip.decompress(doc.read_bytes()).decode("utf-8", "replace")
            break
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
    return version, changelog


def describe(component: str, path: str) -> dict[str, Any]:
    """One binary's version, package and findings (execs: used on a cache miss only)."""
    from podkit_runtime._vulnerabilities import assess

    version = binary_version(path)
    package, changelog = debian_package(path, component)
    findings = assess(component, version, package, changelog)
    return {"path": path, "version": version, "package": package,
            "vulnerabilities": [f.as_dict() for f in findings]}


def _identity(path: str) -> list[Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [path, st.st_mtime_ns, st.st_size]


def cache_path(roots: Roots) -> Path:
    return roots.runroot / "runtime" / "versions.json"


def host_report(roots: Roots | None, binaries: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{"runc": describe(...), "conmon": ...}, from the cache when each binary's identity
    is unchanged (refreshed and written back otherwise)."""
    cache: dict[str, Any] = {}
    path = cache_path(roots) if roots else None
    if path is not None:
        from podkit_common import errors, jsonio

        try:
            cache = jsonio.loads(path.read_bytes(), what=str(path))
        except (OSError, errors.PodkitError):
            cache = {}
        if not isinstance(cache, dict) or cache.get("v") != CACHE_VERSION:
            cache = {}
    out: dict[str, dict[str, Any]] = {}
    dirty = False
    for component, binary in binaries.items():
        ident = _identity(binary)
        entry = cache.get(component)
        if ident is None:
            out[component] = {"path": binary, "version": "", "package": "",
                              "vulnerabilities": []}
            continue
        if not isinstance(entry, dict) or entry.get("identity") != ident:
            entry = {**describe(component, binary), "identity": ident, "warned": False}
            cache[component] = entry
            dirty = True
        out[component] = entry
    if dirty and path is not None:
        _write_cache(path, cache)
    return out


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    from podkit_common import atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic.write_json(path, {**cache, "v": CACHE_VERSION}, durable=False)
    except OSError:
        pass  # a read-only runroot: we check again next time


def _acknowledged(env: dict[str, str] | os._Environ[str]) -> set[str] | None:
    raw = env.get(ACK_ENV, "")
    if raw.strip().lower() == "all":
        return None
    return {x.strip().upper() for x in raw.split(",") if x.strip()}


def warning_line(component: str, entry: dict[str, Any], ack: set[str] | None) -> str | None:
    """The one stderr line for ``entry``'s findings not acknowledged, or None."""
    if ack is None:
        return None
    vulns = [v for v in entry.get("vulnerabilities") or [] if v["cve"] not in ack]
    if not vulns:
        return None
    from podkit_runtime._vulnerabilities import upstream_version

    cves = ", ".join(f"{v['cve']} ({v['severity']})" for v in vulns)
    newest = max((v["fixed_in"] for v in vulns), key=lambda f: upstream_version(f) or ())
    package = f" (package {entry['package']})" if entry.get("package") else ""
    return (f"WARNING: {component} {entry.get('version')}{package} at {entry.get('path')} "
            f"is affected by {cves}: upgrade to {component} {newest} or a build that "
            f"carries the fixes (silence with {ACK_ENV}=CVE-...)")


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def check_at_start(roots: Roots, runc: str, conmon: str,
                   warn: Callable[[str], None] = _stderr,
                   env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Check runc and conmon before a container starts; warn once per runroot and
    binary about known-vulnerable releases. Never raises: a check that cannot run
    must not stop a container."""
    try:
        report = host_report(roots, {"runc": runc, "conmon": conmon})
        ack = _acknowledged(os.environ if env is None else env)
        said = False
        for component, entry in report.items():
            if entry.get("warned") or "identity" not in entry:
                continue
            line = warning_line(component, entry, ack)
            if line:
                warn(line)
            entry["warned"] = said = True
        if said:
            cache = {k: v for k, v in report.items() if "identity" in v}
            _write_cache(cache_path(roots), cache)
        return report
    except Exception:  # advisory only: see the docstring
        return {}
