"""What a podkit test must not leave on the host, checked in one place.

``LeakChecker(base, env)`` takes a baseline (iptables rules) when made; ``check()``
returns one line per leftover, empty when the host is as it was:

- mounts at or below ``base`` (the test's roots and temp dirs);
- network namespaces under the runroot, and named ones of /run/netns listed by podkit;
- links: the bridges of the networks the test registered (``watch_network``) and any
  veth enslaved to them;
- iptables rules added since the baseline that mention a watched subnet or a known
  container id (the plugins' permanent skeleton chains are ignored);
- host-local IP leases under the roots, and network attachment records in the runroot;
- cgroups (``/sys/fs/cgroup/*/podkit*/[pod/]<id>``) of the containers and pods the
  roots have ever known (the events log and podkit's per-object lock files name them);
- live processes whose argv or cwd points below ``base`` (conmon, runc, CNI plugins,
  podkit itself);
- files outside the roots: anything new in ``base`` besides the roots and the test's own
  HOME/TMPDIR, and anything left in that TMPDIR.

Processes are given a bounded time to end (conmon's exit command may still be running
when ``rm`` returns, as with podman); that is a bound, not a timing assertion.
Used by tests/chaos/ and reusable by the e2e tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from tests.netsetup.conftest import iptables_rules, leftover_rules
from tests.testbed.env import mounts_under
from tests.testbed.procs import cmdline, is_alive

CGROUP_ROOT = Path("/sys/fs/cgroup")
_RULE_ID = re.compile(r'id: \\?"([0-9a-f]{64})')
_ID = re.compile(r"^(?:container|pod|pod-hosts|runtime)-([0-9a-f]{64})\.lock$")
_EVENT_ID = re.compile(r'"(?:ID|PodID)":\s*"([0-9a-f]{64})"')


def processes_under(base: Path) -> list[str]:
    """Live processes (not this one) whose argv mentions base or whose cwd is below it."""
    prefix = os.path.realpath(base)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        argv = cmdline(pid)
        cwd = ""
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
        if (prefix in " ".join(argv) or cwd == prefix or cwd.startswith(prefix + "/")) \
                and is_alive(pid):
            found.append(f"{pid} cwd={cwd} {' '.join(argv)[:160]}")
    return found


def known_ids(root: Path, runroot: Path) -> set[str]:
    """Ids of every container/pod the roots have known: those of the events log (a
    removal is an event too), and of lock files (a command killed before its first
    event leaves its object's lock file: only a removal unlinks one)."""
    ids = set()
    for folder in (root / "locks", runroot / "locks"):
        for path in folder.iterdir() if folder.is_dir() else []:
            match = _ID.match(path.name)
            if match:
                ids.add(match.group(1))
    for log in sorted((root / "events").glob("events.log*")):
        if not log.name.endswith(".lock"):
            with contextlib.suppress(OSError):
                ids.update(_EVENT_ID.findall(log.read_text(errors="replace")))
    bundles = runroot / "bundles"
    ids.update(p.name for p in (bundles.iterdir() if bundles.is_dir() else []))
    return ids


def cgroups_of(ids: Iterable[str], cgroup_root: Path = CGROUP_ROOT) -> list[str]:
    """cgroup dirs named by one of ids, one or two levels below a podkit* parent."""
    wanted = set(ids)
    found = []
    for parent in sorted(cgroup_root.glob("*/podkit*")):
        for child in (parent.iterdir() if parent.is_dir() else []):
            if not child.is_dir():
                continue
            if child.name in wanted:
                found.append(str(child))
            if child.name in wanted or child.name == "conmon":
                continue
            with contextlib.suppress(OSError):
                found.extend(str(g) for g in child.iterdir()
                             if g.is_dir() and g.name in wanted)
    return found


def leases_under(root: Path) -> list[str]:
    """host-local lease files of every network under root (network/ip)."""
    ipam = root / "netsetup" / "ipam"
    found = []
    for net in sorted(ipam.iterdir()) if ipam.is_dir() else []:
        for p in sorted(net.iterdir()) if net.is_dir() else []:
            if p.name != "lock" and not p.name.startswith("last_reserved"):
                found.append(f"{net.name}/{p.name}")
    return found


def link_names(master: str | None = None) -> set[str]:
    """Names of the host's links (or those enslaved to master)."""
    argv = ["ip", "-o", "link", "show"] + (["master", master] if master else [])
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        return set()
    return {line.split(":", 2)[1].strip().split("@")[0] for line in res.stdout.splitlines()
            if line.count(":") >= 2}


class LeakChecker:
    """Baseline at construction, ``check()`` lists what was left since (see module doc)."""

    def __init__(self, base: Path, env: dict[str, str],
                 allowed: Iterable[str] = ("root", "runroot", "home", "tmp")) -> None:
        self.base = Path(base)
        self.root = Path(env["PODKIT_ROOT"])
        self.runroot = Path(env["PODKIT_RUNROOT"])
        self.tmpdir = Path(env["TMPDIR"]) if env.get("TMPDIR") else None
        self.allowed = set(allowed)
        self.rules_before = iptables_rules()
        self.base_entries = set(os.listdir(self.base)) if self.base.is_dir() else set()
        self.bridges: set[str] = set()
        self.subnets: set[str] = set()
        self.ids: set[str] = set()

    def watch_network(self, network: dict) -> None:
        """Also check the bridge, veths and rules of this network (pod network inspect)."""
        if network.get("network_interface"):
            self.bridges.add(network["network_interface"])
        for sub in network.get("subnets") or []:
            # "10.1.2.0/24" -> "10.1.2." : rules name addresses, not the whole subnet
            self.subnets.add(sub["subnet"].rsplit(".", 1)[0] + ".")

    def watch_ids(self, ids: Iterable[str]) -> None:
        self.ids.update(i for i in ids if i)

    def check(self, *, networks_removed: bool = True, settle: float = 15.0) -> list[str]:
        deadline = time.monotonic() + settle
        while processes_under(self.base) and time.monotonic() < deadline:
            time.sleep(0.05)
        found = [f"process {p}" for p in processes_under(self.base)]
        found += [f"mount {m}" for m in mounts_under(self.base)]
        netns = self.runroot / "netns"
        found += [f"netns {p}" for p in (netns.iterdir() if netns.is_dir() else [])]
        names = self.runroot / "netns-names"
        if names.is_file():
            found += [f"netns /run/netns/{n}" for n in names.read_text().split()
                      if Path("/run/netns", n).exists()]
        links = link_names()
        for bridge in sorted(self.bridges):
            if networks_removed and bridge in links:
                found.append(f"bridge {bridge}")
            if bridge in links:
                found += [f"veth {v} on {bridge}" for v in sorted(link_names(bridge))]
        found += [f"lease {x}" for x in leases_under(self.root)]
        records = self.runroot / "netsetup" / "attachments"
        found += [f"attachment record {p.name}" for p in
                  (sorted(records.glob("*.json")) if records.is_dir() else [])]
        self.ids |= known_ids(self.root, self.runroot)
        after = iptables_rules()
        rules: set[str] = set()
        for marker in sorted(self.subnets | self.ids):
            rules.update(leftover_rules(self.rules_before, after, marker))
        # a rule naming a container this test never had is another test's (same subnet)
        found += [f"iptables {r}" for r in sorted(rules)
                  if all(i in self.ids for i in _RULE_ID.findall(r))]
        found += [f"cgroup {c}" for c in cgroups_of(self.ids)]
        bundles = self.runroot / "bundles"
        found += [f"bundle {p.name}" for p in (bundles.iterdir() if bundles.is_dir() else [])]
        new = set(os.listdir(self.base)) - self.base_entries - self.allowed \
            if self.base.is_dir() else set()
        found += [f"file outside the roots {self.base / n}" for n in sorted(new)]
        if self.tmpdir and self.tmpdir.is_dir():
            found += [f"temp file {self.tmpdir / n}" for n in sorted(os.listdir(self.tmpdir))]
        return found
