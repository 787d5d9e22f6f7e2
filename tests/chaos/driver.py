"""Kill injection: run real podkit commands, SIGKILL them at random points, check recovery.

A ``Chaos`` runs the installed executables (``pod``, ``pod-image-pull | pod-storage
import``) with the test's own roots. ``kill(op)`` starts the command, waits a random
delay drawn from ``[0, 1.2 x`` the command's measured duration ``]`` and SIGKILLs it (the
process alone, or its whole process group when ``rng`` says so: a crashed CLI, or a
killed CI job). What must hold afterwards is checked by the caller's recovery step
through ``must()`` (the next command succeeds) and ``check_clean()`` (``pod system
check`` is clean). Nothing raises: every broken promise is a ``Failure`` in
``self.failures`` carrying the seed, so a run can be replayed with
``PODKIT_CHAOS_SEED=<seed>``.

``cycle()`` is one round of every operation on its own network, container and pod,
ending with everything removed; the caller then asks ``LeakChecker.check()``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

from podkit_common import jsonio

#: stderr phrases that are never an acceptable answer, whatever the exit code
FORBIDDEN = ("Traceback (most recent call last)", "database is locked",
             "timed out waiting for lock", "lock timeout", "Timeout waiting")


#: the chaos tests' own subnets (never podman's 10.88.0.0/16 nor podkit's 10.99.x pool)
SUBNET_POOL = "10.231.{}.0/24"


@dataclass
class Failure:
    kind: str
    op: str
    detail: str
    seed: int

    def __str__(self) -> str:
        return f"[{self.kind}] {self.op} (seed {self.seed}): {self.detail}"


@dataclass
class Stats:
    ops: int = 0
    kills: int = 0
    finished_before_kill: int = 0
    group_kills: int = 0
    cycles: int = 0
    leaks: int = 0
    by_op: Counter = field(default_factory=Counter)

    def summary(self, failures: list[Failure]) -> dict:
        return {"operations": self.ops, "kills_injected": self.kills,
                "finished_before_kill": self.finished_before_kill,
                "group_kills": self.group_kills, "cycles": self.cycles,
                "kills_by_op": dict(sorted(self.by_op.items())),
                "failures_by_kind": dict(Counter(f.kind for f in failures)),
                "leaks_found": self.leaks}


class Chaos:
    def __init__(self, env: dict[str, str], image: str, seed: int, tag: str = "x") -> None:
        self.env = env
        self.image = image  # "127.0.0.1:PORT/busybox:latest"
        self.seed = seed
        self.rng = random.Random(seed)
        self.tag = tag
        self.stats = Stats()
        self.failures: list[Failure] = []
        self.durations: dict[str, float] = {}
        #: (op, delay, outcome) of every kill attempt, for replaying a failure
        self.trace: list[tuple[str, float, str]] = []

    # -- running commands --------------------------------------------------------------
    def _popen(self, cmd: str) -> subprocess.Popen:
        return subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def run(self, cmd: str, op: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
        """Run cmd to the end; records its duration under op and forbidden stderr."""
        self.stats.ops += 1
        started = time.monotonic()
        proc = self._popen(cmd)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            self.fail("hang", op or cmd, f"no answer in {timeout}s: {err.decode()[-300:]}")
        if op and proc.returncode == 0:
            took = time.monotonic() - started
            self.durations[op] = took if op not in self.durations \
                else 0.7 * self.durations[op] + 0.3 * took
        text = err.decode(errors="replace")
        for bad in FORBIDDEN:
            if bad in text:
                self.fail("forbidden-stderr", op or cmd, f"{bad!r} in: {text[-600:]}")
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def fail(self, kind: str, op: str, detail: str) -> None:
        self.failures.append(Failure(kind, op, detail.strip(), self.seed))

    def must(self, cmd: str, op: str, accept: tuple[str, ...] = ()) -> bool:
        """Run cmd; a failure is recorded unless its stderr holds one of accept."""
        res = self.run(cmd, op)
        if res.returncode == 0:
            return True
        err = res.stderr.decode(errors="replace")
        if any(a in err for a in accept):
            return False
        self.fail(f"{op}-after-kill" if op else "command", cmd,
                  f"exit {res.returncode}: {err[-600:]}")
        return False

    def kill(self, cmd: str, op: str) -> None:
        """Start cmd and SIGKILL it after a random part of its measured duration."""
        self.stats.ops += 1
        delay = self.rng.uniform(0.0, 1.2 * self.durations.get(op, 1.0))
        group = self.rng.random() < 0.3
        proc = self._popen(cmd)
        try:
            proc.wait(timeout=delay)
            self.stats.finished_before_kill += 1
            self.trace.append((op, round(delay, 3), f"finished exit {proc.returncode}"))
        except subprocess.TimeoutExpired:
            target = self._victim(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    os.kill(target, signal.SIGKILL)
            self.stats.kills += 1
            self.stats.group_kills += group
            self.stats.by_op[op] += 1
            self.trace.append((op, round(delay, 3), "killed group" if group else "killed"))
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # bash waits for a pipeline's survivors
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()

    @staticmethod
    def _victim(bash_pid: int) -> int:
        """The podkit process bash runs (a pipeline: the last stage started), else bash."""
        from tests.testbed.procs import cmdline

        children = []
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{bash_pid}/task"):
                with open(f"/proc/{bash_pid}/task/{tid}/children") as f:
                    children += [int(c) for c in f.read().split()]
        podkit = [c for c in children if any("pod" in a for a in cmdline(c)[:2])]
        return podkit[-1] if podkit else bash_pid

    # -- checks ------------------------------------------------------------------------
    def check_clean(self, after: str) -> None:
        res = self.run("pod system check", "system-check")
        try:
            report = jsonio.loads(res.stdout)
        except Exception:
            report = {}
        if res.returncode != 0 or not report.get("clean"):
            self.fail("system-check", after,
                      f"exit {res.returncode}: {res.stdout.decode()[-800:]}"
                      f" {res.stderr.decode()[-300:]}")

    def containers(self) -> dict[str, str]:
        """name -> state of every container `pod ps -a` lists."""
        res = self.run("pod ps -a --format json", "ps")
        if res.returncode != 0:
            self.fail("ps", "ps -a", res.stderr.decode()[-300:])
            return {}
        return {c["Names"][0]: c["State"] for c in jsonio.loads(res.stdout)}

    def running(self, name: str) -> bool:
        return self.containers().get(name) == "running"

    def connected(self, name: str, network: str) -> bool:
        res = self.run("pod ps -a --format json", "ps")
        if res.returncode != 0:
            return False
        return any(name in c["Names"] and network in (c.get("Networks") or [])
                   for c in jsonio.loads(res.stdout))

    def pod_exists(self, name: str) -> bool:
        return self.run(f"pod pod exists {name}", "pod-exists").returncode == 0

    def network_create(self, name: str) -> bool:
        """An --internal bridge network on a /24 of SUBNET_POOL no other test allocates
        from (tests that let podkit pick take 10.99.x: a rule of theirs on our subnet
        would pass for our leak); overlaps with a parallel chaos test are retried."""
        pick = random.SystemRandom()  # not self.rng: a retry must not shift the replay
        for _ in range(30):
            subnet = SUBNET_POOL.format(pick.randrange(256))
            res = self.run(f"pod network create {name} --internal --subnet {subnet}",
                           "network-create")
            if res.returncode == 0:
                return True
            if b"overlaps" not in res.stderr:
                break
        self.fail("setup", "network create", res.stderr.decode()[-400:])
        return False

    # -- one round of every operation ----------------------------------------------------
    def cycle(self, leak_check=None) -> None:
        """Pull, import, create, start, disconnect/connect, stop, rm, pod create, pod
        start, pod rm, network rm: each killed once at a random point, then recovered
        and checked."""
        n = self.stats.cycles
        self.stats.cycles += 1
        img, net = self.image, f"ch{self.tag}{n}"
        ctr, pod = f"c{self.tag}{n}", f"p{self.tag}{n}"
        if not self.network_create(net):
            return
        if leak_check is not None:
            info = jsonio.loads(self.run(f"pod network inspect {net}").stdout)[0]
            leak_check.watch_network(info)

        # pull: from nothing (rmi first), killed, then pulled again
        self.must(f"pod rmi -i {img}", "rmi")
        self.kill(f"pod pull -q --tls-verify=false {img}", "pull")
        self.must(f"pod pull -q --tls-verify=false {img}", "pull")
        self.check_clean("pull")

        # pod-storage import of a pulled document, as a pipeline of the stages
        self.must(f"pod rmi -i {img}", "rmi")
        pipeline = f"pod-image-pull --tls-verify=false docker://{img} | pod-storage import"
        self.kill(pipeline + " >/dev/null", "import")
        self.must(pipeline + " >/dev/null", "import")
        self.check_clean("import")

        # create: the name is either taken (rm it) or free; then create succeeds
        create = f"pod create --name {ctr} --network {net} {img} sleep 3600"
        self.kill(create, "create")
        self.must(f"pod rm -f -i -t 0 {ctr}", "rm")
        self.must(create, "create")
        self.check_clean("create")

        self.kill(f"pod start {ctr}", "start")
        self.must(f"pod start {ctr}", "start")
        self.check_clean("start")

        # network disconnect/connect while running: either state, then back to connected
        self.kill(f"pod network disconnect {net} {ctr}", "disconnect")
        self.must(f"pod network disconnect {net} {ctr}", "disconnect", accept=("not connected",))
        self.kill(f"pod network connect {net} {ctr}", "connect")
        self.must(f"pod network connect {net} {ctr}", "connect",
                  accept=("already connected",))
        if not self.connected(ctr, net):
            self.fail("state", "connect", f"{ctr} not connected to {net} after connect")
        self.check_clean("connect")

        self.kill(f"pod stop -t 0 {ctr}", "stop")
        self.must(f"pod stop -t 0 {ctr}", "stop")
        if self.containers().get(ctr) not in ("exited", "stopped"):
            self.fail("state", "stop", f"{ctr} is {self.containers().get(ctr)} after stop")
        self.check_clean("stop")

        self.must(f"pod start {ctr}", "start")
        self.kill(f"pod rm -f -t 0 {ctr}", "rm")
        self.must(f"pod rm -f -i -t 0 {ctr}", "rm")
        if ctr in self.containers():
            self.fail("state", "rm", f"{ctr} still listed after rm")
        self.check_clean("rm")

        # pods: create killed -> rm what exists -> create; rm killed -> rm again
        self.kill(f"pod pod create --name {pod} --network {net}", "pod-create")
        if self.pod_exists(pod):
            self.must(f"pod pod rm -f -t 0 {pod}", "pod-rm")
        self.must(f"pod pod create --name {pod} --network {net}", "pod-create")
        self.must(f"pod create --pod {pod} --name {ctr}m {img} sleep 3600", "create")
        self.kill(f"pod pod start {pod}", "pod-start")
        self.must(f"pod pod start {pod}", "pod-start")
        self.check_clean("pod-start")
        self.kill(f"pod pod rm -f -t 0 {pod}", "pod-rm")
        if self.pod_exists(pod):
            self.must(f"pod pod rm -f -t 0 {pod}", "pod-rm")
        if self.pod_exists(pod) or f"{ctr}m" in self.containers():
            self.fail("state", "pod-rm", f"{pod} or its member still there after pod rm")
        self.check_clean("pod-rm")

        # end of the round: everything goes; what is left is a leak
        self.must("pod rm -a -f -t 0", "rm")
        self.kill(f"pod network rm -f {net}", "network-rm")
        if self.run(f"pod network exists {net}", "network-exists").returncode == 0:
            self.must(f"pod network rm -f {net}", "network-rm")
        self.check_clean("cycle end")
        if leak_check is not None:
            leaks = leak_check.check()
            self.stats.leaks += len(leaks)
            for leak in leaks:
                self.fail("leak", f"cycle {n}", leak)


#: CI's seed: a landing is judged on the same choices each time (kill delays still scale
#: with measured durations); make soak and local runs draw a new one.
CI_SEED = 20261129


def seed_from_env() -> int:
    raw = os.environ.get("PODKIT_CHAOS_SEED")
    if raw:
        return int(raw)
    return CI_SEED if os.environ.get("CI") else random.SystemRandom().randrange(1 << 31)
