"""Short form of the kill-injection chaos suite (issue #11); `make soak` runs the long one.

Each test runs one round of tests/chaos/driver.py's ``Chaos.cycle``: on its own bridge
network it pulls, imports, creates, starts, disconnects/connects, stops and removes a
container and creates/removes a pod, SIGKILLing every one of those commands once at a
random point of its measured duration. After every kill the next command must succeed
and `pod system check` must be clean; after the round everything is removed and
tests/chaos/leaks.py must find nothing left. Replay a failure with the printed seed:
PODKIT_CHAOS_SEED=<seed> pytest tests/chaos/test_kill.py -k <part>.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.chaos.conftest import image_of
from tests.chaos.driver import Chaos, seed_from_env
from tests.chaos.leaks import LeakChecker, known_ids

pytestmark = [pytest.mark.chaos, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]


#: rounds in the normal run (~25 s each on a quiet 2-core machine, ~90 s loaded)
ROUNDS = int(os.environ.get("PODKIT_CHAOS_ROUNDS", "3"))


@pytest.mark.parametrize("part", range(ROUNDS))
def test_a_round_of_kills_recovers_and_leaks_nothing(images, chaos_env, tmp_path, part):
    seed = seed_from_env() + part
    print(f"chaos seed {seed} (replay: PODKIT_CHAOS_SEED={seed - part})")
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), seed, tag=str(part))
    chaos.cycle(checker)
    print(json.dumps(chaos.stats.summary(chaos.failures)))
    assert chaos.stats.kills + chaos.stats.finished_before_kill >= 11
    assert not chaos.failures, "\n".join([f"seed {seed}; kills: {chaos.trace}"]
                                         + [str(f) for f in chaos.failures])


def test_the_leak_checker_sees_what_a_killed_container_leaves(images, chaos_env, tmp_path):
    """The checker itself: a started container whose monitor outlives `pod` is a
    process, mount and cgroup leak until it is removed (a check that could fail)."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.must(f"pod run -d --tls-verify=false --name alive {image_of(images)} "
                      "sleep 3600", "run"), chaos.failures
    found = checker.check(settle=0)
    assert any(f.startswith("process ") for f in found), found
    assert any(f.startswith("mount ") for f in found), found
    assert chaos.must("pod rm -f -t 0 alive", "rm")
    assert checker.check() == []
    # The removed container's lock files are gone; the events log still names it, so
    # its cgroups and rules stay watched.
    root, runroot = Path(chaos_env["PODKIT_ROOT"]), Path(chaos_env["PODKIT_RUNROOT"])
    lockless = [i for i in known_ids(root, runroot)
                if not any(i in n for n in os.listdir(root / "locks"))]
    assert lockless, known_ids(root, runroot)
