"""Fixtures of the chaos suite: podkit_env with the shared test subnet registry, HOME and
TMPDIR inside the test's directory (so "files outside the roots" can be checked), and
the networks the test made torn down afterwards, even on failure."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netsetup.conftest import (  # noqa: F401  (restore_ip_forward: autouse fixture)
    networked,
    restore_ip_forward,
)


@pytest.fixture
def chaos_env(podkit_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    with networked(podkit_env, tmp_path, HOME=str(home), TMPDIR=str(tmp),
                   XDG_RUNTIME_DIR=str(home / "run"), XDG_CONFIG_HOME=str(home / ".config"),
                   PODKIT_PROGRESS="none") as env:
        yield env


def image_of(images) -> str:
    """The standard busybox image as `pod` takes it (no docker:// prefix)."""
    return images.ref("busybox:latest").removeprefix("docker://")
