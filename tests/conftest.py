"""Shared fixtures: a registry per xdist worker, the standard images, probes, roots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed.env import podkit_environment
from tests.testbed.podman import PodmanOracle
from tests.testbed.podman import available as podman_available
from tests.testbed.probes import PROBES
from tests.testbed.registry import LocalRegistry, RegistryError
from tests.testbed.standard import StandardImages, push_standard


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose capability markers (root, overlay, runc, ...) this host lacks."""
    for marker in item.iter_markers():
        probe = PROBES.get(marker.name)
        if probe is None:
            continue
        result = probe()
        if not result.ok:
            pytest.skip(f"needs {marker.name}: {result.reason}")


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    """A docker-registry on 127.0.0.1 for this session (one per xdist worker)."""
    if not PROBES["registry"]().ok:
        pytest.skip(f"needs registry: {PROBES['registry']().reason}")
    reg = LocalRegistry()
    try:
        reg.start()
    except RegistryError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def images(registry: LocalRegistry) -> StandardImages:
    """The standard images pushed to `registry`: images.ref("busybox:latest") is
    "docker://127.0.0.1:PORT/busybox:latest", images["busybox:oci"].image the BuiltImage.
    """
    return push_standard(registry.url)


@pytest.fixture
def podkit_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """os.environ + PODKIT_ROOT=tmp_path/root, PODKIT_RUNROOT=tmp_path/runroot, venv on PATH.

    Teardown deletes runc containers, kills conmon/runc from *.pid files, unmounts
    everything under tmp_path and deletes listed network namespaces.
    """
    with podkit_environment(tmp_path) as env:
        yield env


@pytest.fixture
def podman(tmp_path: Path, registry: LocalRegistry) -> Iterator[PodmanOracle]:
    """podman as an oracle (tests/testbed/podman.py): its own roots under tmp_path, its
    own mount namespace, the test registry allowed over plain HTTP. Containers made with
    it must use --network none. Skipped, with the reason, where podman is missing."""
    reason = podman_available()
    if reason:
        pytest.skip(f"needs podman as an oracle: {reason}")
    oracle = PodmanOracle(tmp_path / "podman", insecure_registries=[registry.url])
    try:
        yield oracle
    finally:
        problems = oracle.close()
        if problems:
            print("podman oracle cleanup:", *problems, sep="\n  ")
