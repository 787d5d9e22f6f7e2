"""Releases of runc and conmon with known vulnerabilities, and the verdict on one
release (pure: no host access; :mod:`podkit_runtime._versions` feeds it and caches).

A release is affected by an entry of :data:`KNOWN_VULNERABLE` when its upstream version
is below the fixed release of its branch. Distributions backport fixes into old version
numbers (Debian 12 ships runc "1.1.5+ds1-1+deb12u1", which carries the fix for
CVE-2024-21626: /usr/share/doc/runc/changelog.Debian.gz), so a build is *not* affected
when its Debian package version is at or above a Debian revision known to carry the
fix, or when the package's own changelog.Debian names the CVE (every entry there is at
or below the installed version).
"""

from __future__ import annotations

import re

from podkit_common.records import record


@record(frozen=True)
class Vulnerability:
    """One advisory: releases below ``fixed`` (per branch) are affected unless a
    distribution build carries the fix (``debian_fixed``)."""

    cve: str
    component: str  # "runc" or "conmon"
    #: first fixed release of each branch, e.g. ("1.2.8", "1.3.3")
    fixed: tuple[str, ...]
    summary: str
    severity: str = "high"
    #: Debian package versions known to carry the fix (read in changelog.Debian)
    debian_fixed: tuple[str, ...] = ()


KNOWN_VULNERABLE: tuple[Vulnerability, ...] = (
    Vulnerability("CVE-2019-5736", "runc", ("1.0.0-rc7",),
                  "a container can overwrite the host's runc binary", "critical"),
    Vulnerability("CVE-2019-16884", "runc", ("1.0.0-rc9",),
                  "AppArmor restrictions bypassed through a malicious image's /proc"),
    Vulnerability("CVE-2019-19921", "runc", ("1.0.0-rc10",),
                  "volume mount race with a shared volume and a symlink"),
    Vulnerability("CVE-2021-30465", "runc", ("1.0.0-rc95",),
                  "mount destination symlink-exchange race: host filesystem exposed"),
    Vulnerability("CVE-2021-43784", "runc", ("1.0.3",),
                  "netlink bytemsg length overflow lets a config inject options",
                  "medium"),
    Vulnerability("CVE-2022-29162", "runc", ("1.1.2",),
                  "non-empty inheritable capabilities by default", "medium"),
    Vulnerability("CVE-2023-25809", "runc", ("1.1.5",),
                  "rootless: /sys/fs/cgroup writable without a cgroup namespace",
                  "medium"),
    Vulnerability("CVE-2023-27561", "runc", ("1.1.5",),
                  "volume mount race (CVE-2019-19921 re-introduced)"),
    Vulnerability("CVE-2023-28642", "runc", ("1.1.5",),
                  "AppArmor/SELinux bypass with a symlinked /proc"),
    Vulnerability("CVE-2024-21626", "runc", ("1.1.12",),
                  "leaked host fd and WORKDIR /proc/self/fd/N: container breakout",
                  "critical", debian_fixed=("1.1.5+ds1-1+deb12u1",)),
    Vulnerability("CVE-2024-45310", "runc", ("1.1.14",),
                  "shared-volume race creates empty files or dirs on the host", "low"),
    Vulnerability("CVE-2025-31133", "runc", ("1.2.8", "1.3.3", "1.4.0-rc.3"),
                  "maskedPaths race (/dev/null swapped for a symlink): breakout"),
    Vulnerability("CVE-2025-52565", "runc", ("1.2.8", "1.3.3", "1.4.0-rc.3"),
                  "/dev/console bind-mount race: writes to host procfs"),
    Vulnerability("CVE-2025-52881", "runc", ("1.2.8", "1.3.3", "1.4.0-rc.3"),
                  "LSM labels bypassed by redirected /proc writes: breakout"),
    Vulnerability("CVE-2022-1708", "conmon", ("2.1.2",),
                  "unbounded exec-sync output exhausts the host's memory", "medium"),
)


@record(frozen=True)
class Finding:
    cve: str
    severity: str
    summary: str
    fixed: str

    def as_dict(self) -> dict[str, str]:
        return {"cve": self.cve, "severity": self.severity, "summary": self.summary,
                "fixed_in": self.fixed}


# -- versions ----------------------------------------------------------------------------

_UPSTREAM = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:[-~.]?(rc|alpha|beta)\.?(\d+))?")


def upstream_version(text: str) -> tuple[int, int, int, int, int] | None:
    """"1.1.5+ds1" -> (1, 1, 5, 1, 0); "1.0.0-rc92" / "1.0.0~rc92" -> (1, 0, 0, 0, 92):
    a pre-release sorts before its release."""
    m = _UPSTREAM.match(text.strip().split(":", 1)[-1])
    if not m:
        return None
    major, minor, patch, pre, pre_n = m.groups()
    return (int(major), int(minor), int(patch or 0), 0 if pre else 1, int(pre_n or 0))


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of one version part (upstream or revision)."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def debian_compare(a: str, b: str) -> int:
    """dpkg --compare-versions: <0, 0 or >0."""
    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _affected_upstream(version: tuple[int, ...], fixed: tuple[str, ...]) -> str | None:
    """The fixed release that applies to ``version``'s branch, if it is below it."""
    fixes = sorted(v for v in (upstream_version(f) for f in fixed) if v)
    same_branch = [f for f in fixes if f[:2] == version[:2]]
    if same_branch:
        target = same_branch[0]
    elif fixes and version < fixes[0]:
        target = fixes[0]
    elif fixes and version < fixes[-1]:  # a branch with no fix of its own
        target = next(f for f in fixes if f > version)
    else:
        return None
    if version >= target:
        return None
    return next(f for f in fixed if upstream_version(f) == target)


def assess(component: str, version: str, package: str = "",
           changelog: str = "") -> list[Finding]:
    """Known vulnerabilities of this ``component`` release. ``package`` is the Debian
    package version ("" when not packaged); ``changelog`` its changelog.Debian text."""
    parsed = upstream_version(version)
    if parsed is None:
        return []
    found = []
    for vuln in KNOWN_VULNERABLE:
        if vuln.component != component:
            continue
        fixed = _affected_upstream(parsed, vuln.fixed)
        if fixed is None:
            continue
        if package and any(
                debian_compare(package, d) >= 0
                and upstream_version(d) == upstream_version(package)
                for d in vuln.debian_fixed):
            continue
        if changelog and vuln.cve in changelog:
            continue
        found.append(Finding(vuln.cve, vuln.severity, vuln.summary, fixed))
    return found
