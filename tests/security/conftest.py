"""What the security tests share: real containers (conmon + runc + overlayfs) made
with `pod` in the test's own roots."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.pod.test_cli_containers import bare, ok, pod


@pytest.fixture
def needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


@pytest.fixture
def two_running(podkit_env, images, needs_conmon) -> Iterator[dict[str, str]]:
    """Containers "alpha" and "beta" running `sleep`; alpha has a marker file."""
    env = podkit_env
    ref = bare(images)
    ok(pod(env, "run", "-d", "--tls-verify=false", "--name", "alpha", ref, "sh", "-c",
           "echo alpha-private > /alpha-marker-7f3; exec sleep 1000"))
    ok(pod(env, "run", "-d", "--name", "beta", ref, "sleep", "1000"))
    try:
        yield env
    finally:
        pod(env, "rm", "-af", "-t", "0")


def inspect(env: dict[str, str], name: str) -> dict:
    return json.loads(ok(pod(env, "inspect", name)))[0]
