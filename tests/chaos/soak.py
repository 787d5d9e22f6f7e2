"""The long form of the chaos suite: `make soak SOAK_SECONDS=600`.

    python -m tests.chaos.soak --seconds 600 [--seed N] [--clients 16] [--crowd-every 4]

Starts its own registry on 127.0.0.1 with the standard busybox image, makes fresh
roots under a temp dir and repeats kill rounds (tests/chaos/driver.py) until the time
is up, with a crowd phase (tests/chaos/crowd.py) every --crowd-every rounds; after every
round the leak checker runs. Prints progress on stderr and one JSON summary on stdout
(operations run, kills injected, failures by kind, leaks found); exits 1 on any
failure or leak. Must run as root (runc, overlayfs, CNI).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from podkit_common import jsonio
from podkit_common.roots import Roots
from tests.chaos.crowd import Crowd
from tests.chaos.driver import Chaos, seed_from_env
from tests.chaos.leaks import LeakChecker
from tests.netsetup.conftest import (
    TEST_NET_STATE,
    forget_subnets_under,
    ip_forward_kept,
    teardown_networks,
)
from tests.testbed.env import podkit_environment
from tests.testbed.registry import LocalRegistry
from tests.testbed.standard import push_standard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--crowd-every", type=int, default=4)
    parser.add_argument("--crowd-seconds", type=float, default=20)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else seed_from_env()
    print(f"soak: seed {seed}, {args.seconds:.0f} s", file=sys.stderr)
    summary: dict = {}
    failures: list[str] = []
    Path(TEST_NET_STATE).mkdir(parents=True, exist_ok=True)
    with ip_forward_kept(), tempfile.TemporaryDirectory(prefix="podkit-soak-") as tmp, \
            LocalRegistry() as reg:
        base = Path(tmp)
        image = push_standard(reg.url, ["busybox:latest"]).ref("busybox:latest")
        image = image.removeprefix("docker://")
        with podkit_environment(base) as env:
            for sub in ("home", "tmp"):
                (base / sub).mkdir()
            env.update(PODKIT_NET_STATE_DIR=TEST_NET_STATE, HOME=str(base / "home"),
                       TMPDIR=str(base / "tmp"), PODKIT_PROGRESS="none")
            env.pop("PODKIT_NETWORK_CONFIG_DIR", None)
            started = time.monotonic()
            try:
                chaos = Chaos(env, image, seed, tag="s")
                crowd_ops = crowd_refusals = 0
                rounds = 0
                while time.monotonic() - started < args.seconds:
                    rounds += 1
                    checker = LeakChecker(base, env)
                    before = len(chaos.failures)
                    if args.crowd_every and rounds % args.crowd_every == 0:
                        ops, refused, found = crowd_round(chaos, env, image, seed + rounds,
                                                          args, checker)
                        crowd_ops += ops
                        crowd_refusals += refused
                        failures += found
                    else:
                        chaos.cycle(checker)
                    for f in chaos.failures[before:]:
                        print(f"soak: {f}", file=sys.stderr)
                    if len(chaos.failures) > before:
                        print(f"soak: kills of round {rounds}: {chaos.trace[-12:]}",
                              file=sys.stderr)
                    print(f"soak: round {rounds} done at {time.monotonic() - started:.0f} s,"
                          f" {chaos.stats.kills} kills, {len(chaos.failures)} failures",
                          file=sys.stderr)
                summary = chaos.stats.summary(chaos.failures)
                summary.update(seed=seed, seconds=round(time.monotonic() - started),
                               rounds=rounds, crowd_operations=crowd_ops,
                               crowd_clear_refusals=crowd_refusals,
                               crowd_failures=len(failures))
                summary["operations"] += crowd_ops
                failures = [str(f) for f in chaos.failures] + failures
            finally:
                teardown_networks(Roots(Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])))
                forget_subnets_under(base)
    summary["failures"] = failures[:50]
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


def crowd_round(chaos: Chaos, env: dict, image: str, seed: int, args,
                checker: LeakChecker) -> tuple[int, int, list[str]]:
    shared = f"crowd{seed % 100000}"
    if not chaos.network_create(shared):
        return 0, 0, []
    checker.watch_network(jsonio.loads(chaos.run(f"pod network inspect {shared}").stdout)[0])
    crowd = Crowd(env, image, shared, seed)
    clients = crowd.go(args.clients, args.crowd_seconds)
    found = crowd.failures + crowd.verify(clients)
    print(f"soak: crowd of {args.clients}: {dict(crowd.ops)}, clear refusals "
          f"{dict(crowd.refused)}, slowest {crowd.slowest}", file=sys.stderr)
    for c in clients:
        for pod in c.pods:
            chaos.must(f"pod pod rm -f -t 0 {pod}", "pod-rm")
    chaos.must("pod rm -a -f -t 0", "rm")
    for c in clients:
        for net in c.networks:
            chaos.must(f"pod network rm -f {net}", "network-rm")
    chaos.must(f"pod network rm -f {shared}", "network-rm")
    chaos.check_clean("crowd")
    leaks = checker.check()
    chaos.stats.leaks += len(leaks)
    found += [f"[leak] crowd {seed}: {x}" for x in leaks]
    found = [f"[crowd] {x}" if not x.startswith("[") else x for x in found]
    return sum(crowd.ops.values()), sum(crowd.refused.values()), found


if __name__ == "__main__":
    sys.exit(main())
