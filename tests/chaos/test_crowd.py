"""Concurrency part of the chaos suite (issue #11): a crowd of clients for a bounded time.

Sixteen threads, each running real `pod` commands as subprocesses against one store:
pull the same image, run containers on one shared bridge network and remove them,
create/remove their own networks and pods (tests/chaos/crowd.py). Every command either
succeeds or fails with a clear error (never a traceback, "database is locked" or a lock
timeout); afterwards the listings match what the clients made, no name is listed
twice, no address is held twice; then everything is removed and nothing leaks.
"""

from __future__ import annotations

import os

import pytest

from podkit_common import jsonio
from tests.chaos.conftest import image_of
from tests.chaos.crowd import Crowd, clear_error
from tests.chaos.driver import Chaos, seed_from_env
from tests.chaos.leaks import LeakChecker

pytestmark = [pytest.mark.chaos, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]

CLIENTS = int(os.environ.get("PODKIT_CHAOS_CLIENTS", "16"))
SECONDS = float(os.environ.get("PODKIT_CHAOS_SECONDS", "20"))


def test_a_crowd_of_clients_keeps_the_store_consistent(images, chaos_env, tmp_path):
    seed = seed_from_env()
    print(f"crowd seed {seed}")
    checker = LeakChecker(tmp_path, chaos_env)
    admin = Chaos(chaos_env, image_of(images), seed)
    shared = f"crowd{seed % 100000}"
    assert admin.network_create(shared), admin.failures
    checker.watch_network(jsonio.loads(admin.run(f"pod network inspect {shared}").stdout)[0])

    crowd = Crowd(chaos_env, image_of(images), shared, seed)
    clients = crowd.go(CLIENTS, SECONDS)
    print("ops", dict(crowd.ops), "clear refusals", dict(crowd.refused))
    assert sum(crowd.ops.values()) >= CLIENTS  # every client ran something
    problems = crowd.failures + crowd.verify(clients)
    admin.check_clean("crowd")
    problems += [str(f) for f in admin.failures]

    for c in clients:
        for pod in c.pods:
            admin.must(f"pod pod rm -f -t 0 {pod}", "pod-rm")
    admin.must("pod rm -a -f -t 0", "rm")
    for c in clients:
        for net in c.networks:
            admin.must(f"pod network rm -f {net}", "network-rm")
    admin.must(f"pod network rm -f {shared}", "network-rm")
    problems += [str(f) for f in admin.failures] + checker.check()
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)


@pytest.mark.parametrize("stderr,clear", [
    ('{"error":{"tool":"pod","type":"Conflict","message":"name taken","hint":""}}\n', True),
    ("Error: no such container x\n", True),
    ("Traceback (most recent call last):\n  File ...\nKeyError: 'x'\n", False),
    ("", False),
])
def test_clear_error_tells_an_envelope_from_a_crash(stderr, clear):
    assert clear_error(stderr) is clear
