"""Concurrency: many clients (threads, each running real `pod` subprocesses) at once.

Each client loops for a bounded time over: pull the shared image, run a container
(detached, on the shared network) and later remove it, create and remove its own
network, create and remove a pod. What a client believes exists is tracked; at the end
``Crowd.verify()`` compares that with `pod ps -a`, `pod pod ps` and `pod network ls`,
and checks that no two attached containers hold the same address and no name is
listed twice. Every command must succeed or fail with a clear error (one JSON error
line, or podman's ``Error:`` form) and never print a traceback or a lock error.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from podkit_common import jsonio

from .driver import FORBIDDEN


@dataclass
class Client:
    n: int
    rng: random.Random
    containers: set[str] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    seq: int = 0

    def fresh(self, kind: str) -> str:
        self.seq += 1
        return f"{kind}{self.n}x{self.seq}"


def clear_error(stderr: str) -> bool:
    """The last non-empty stderr line is podkit's JSON error envelope or podman's form."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return False
    last = lines[-1].strip()
    if last.startswith("Error: "):
        return True
    try:
        doc = jsonio.loads(last)
    except Exception:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict) \
        and bool(doc["error"].get("message"))


class Crowd:
    def __init__(self, env: dict[str, str], image: str, network: str, seed: int) -> None:
        self.env = env
        self.image = image
        self.network = network
        self.seed = seed
        self.lock = threading.Lock()
        self.ops: Counter = Counter()
        self.refused: Counter = Counter()  # clear errors, by command kind
        self.failures: list[str] = []
        self.slowest: dict[str, float] = {}  # kind -> longest seconds, for the report

    def run(self, kind: str, cmd: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        res = subprocess.run(["bash", "-c", cmd], env=self.env, capture_output=True,
                             timeout=180, stdin=subprocess.DEVNULL)
        took = time.monotonic() - started
        err = res.stderr.decode(errors="replace")
        with self.lock:
            self.ops[kind] += 1
            self.slowest[kind] = round(max(took, self.slowest.get(kind, 0.0)), 1)
            for bad in FORBIDDEN:
                if bad in err:
                    self.failures.append(f"{kind}: {bad!r} in stderr of {cmd!r}: {err[-500:]}")
            if res.returncode != 0:
                self.refused[kind] += 1
                if not clear_error(err):
                    self.failures.append(f"{kind}: exit {res.returncode} without a clear "
                                         f"error from {cmd!r}: {err[-500:]!r}")
        return res

    def must(self, kind: str, cmd: str) -> bool:
        res = self.run(kind, cmd)
        if res.returncode != 0:
            with self.lock:
                self.failures.append(f"{kind}: {cmd!r} failed (exit {res.returncode}): "
                                     f"{res.stderr.decode(errors='replace')[-500:]}")
        return res.returncode == 0

    def step(self, c: Client) -> None:
        choice = c.rng.choice(["pull", "run", "run", "rm", "network", "pod"])
        if choice == "pull":
            self.must("pull", f"pod pull -q --tls-verify=false {self.image}")
        elif choice == "run" and len(c.containers) < 3:
            name = c.fresh("k")
            if self.must("run", f"pod run -d --tls-verify=false --name {name} "
                                f"--network {self.network} "
                                f"{self.image} sleep 3600"):
                c.containers.add(name)
        elif choice in ("rm", "run") and c.containers:
            name = c.rng.choice(sorted(c.containers))
            if self.must("rm", f"pod rm -f -t 0 {name}"):
                c.containers.discard(name)
        elif choice == "network":
            if c.networks:
                name = c.networks.pop()
                if not self.must("network-rm", f"pod network rm {name}"):
                    c.networks.add(name)
            else:
                name = c.fresh("n")
                if self.must("network-create", f"pod network create {name} --internal"):
                    c.networks.add(name)
        elif choice == "pod":
            if c.pods:
                name = c.pods.pop()
                if not self.must("pod-rm", f"pod pod rm -f -t 0 {name}"):
                    c.pods.add(name)
            else:
                name = c.fresh("p")
                if self.must("pod-create", f"pod pod create --name {name}"):
                    c.pods.add(name)

    def go(self, clients: int, seconds: float) -> list[Client]:
        crowd = [Client(i, random.Random(self.seed * 1000 + i)) for i in range(clients)]
        stop_at = time.monotonic() + seconds

        def loop(c: Client) -> None:
            while time.monotonic() < stop_at:
                try:
                    self.step(c)
                except subprocess.TimeoutExpired as exc:
                    with self.lock:
                        self.failures.append(f"client {c.n}: hang: {exc.cmd}")

        threads = [threading.Thread(target=loop, args=(c,)) for c in crowd]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return crowd

    def verify(self, crowd: list[Client]) -> list[str]:
        """Listings against what the clients think exists; unique names and addresses."""
        problems = []
        res = self.run("ps", "pod ps -a --format json")
        if res.returncode != 0:
            return [f"pod ps -a failed: {res.stderr.decode(errors='replace')[-300:]}"]
        ps = jsonio.loads(res.stdout)
        names = [c["Names"][0] for c in ps]
        expected = set().union(*(c.containers for c in crowd))
        # pods' infra containers are listed by ps -a too
        listed = {c["Names"][0] for c in ps if not c.get("IsInfra")}
        if listed != expected:
            problems.append(f"ps -a lists {sorted(listed ^ expected)} differently from "
                            "what the clients made")
        dup = [n for n, k in Counter(names).items() if k > 1]
        if dup:
            problems.append(f"names listed twice: {dup}")
        not_running = [c["Names"][0] for c in ps
                       if c["Names"][0] in expected and c["State"] != "running"]
        if not_running:
            problems.append(f"containers not running: {not_running}")
        pods = jsonio.loads(self.run("pod-ps", "pod pod ps --format json").stdout or b"[]")
        pod_names = {p["Name"] for p in pods}
        want_pods = set().union(*(c.pods for c in crowd))
        if pod_names != want_pods:
            problems.append(f"pod ps lists {sorted(pod_names ^ want_pods)} differently")
        nets = self.run("network-ls", "pod network ls --format '{{.Name}}'").stdout.decode()
        net_names = set(nets.split()) - {"podman", "podkit", self.network}
        want_nets = set().union(*(c.networks for c in crowd))
        if net_names != want_nets:
            problems.append(f"network ls lists {sorted(net_names ^ want_nets)} differently")
        problems += duplicate_addresses(Path(self.env["PODKIT_RUNROOT"]))
        return problems


def duplicate_addresses(runroot: Path) -> list[str]:
    """Addresses held by more than one attachment record (runroot/netsetup/attachments)."""
    owners: dict[str, list[str]] = {}
    folder = runroot / "netsetup" / "attachments"
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = jsonio.loads(record.read_bytes())
        for entry in doc.get("networks") or []:
            for ip in ((entry.get("result") or {}).get("ips") or []):
                owners.setdefault(ip["address"].split("/")[0], []).append(record.stem[:12])
    return [f"address {ip} held by {ids}" for ip, ids in owners.items() if len(ids) > 1]
