"""docs/tutorial.md is executed: its console blocks run in order in bash, against the
test's own roots, the test registry (as $REGISTRY) and a free host port (as $PORT), and
the output the tutorial shows is checked (tests/docs/mdblocks.py has the conventions).
Blocks needing a `pod` command that does not exist yet are skipped, and the test then
says so (skipped, naming the command) after running everything else."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podkit_common.roots import Roots
from tests.docs import mdblocks
from tests.netsetup.conftest import (  # noqa: F401  (restore_ip_forward: autouse fixture)
    TEST_NET_STATE,
    forget_subnets_under,
    iptables_rules,
    restore_ip_forward,
    teardown_networks,
)

TUTORIAL = mdblocks.DOCS / "tutorial.md"
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]


def free_port() -> int:
    """A port nothing listens on and no DNAT rule (another test's published port) uses."""
    taken = "\n".join(iptables_rules())
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if f"--dport {port} " not in taken + " " and f"--dports {port} " not in taken + " ":
            return port
    raise AssertionError("no free port")


@pytest.fixture
def env(podkit_env: dict[str, str], tmp_path: Path, images) -> Iterator[dict[str, str]]:
    for tool in ("conmon", "catatonit", "busybox"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")
    env = {**podkit_env, "PODKIT_NET_STATE_DIR": TEST_NET_STATE,
           "REGISTRY": images.ref("busybox:latest").removeprefix("docker://").split("/")[0],
           "PORT": str(free_port())}
    env.pop("PODKIT_NETWORK_CONFIG_DIR", None)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["pod", "system", "reset", "--force"], env=env, timeout=120,
                           capture_output=True)
        teardown_networks(Roots(Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])))
        forget_subnets_under(tmp_path)


def missing_command(mark: str, env: dict[str, str]) -> str | None:
    """For a ``needs pod X`` mark: None when `pod X --help` works, else its name."""
    words = mark.split()[1:]
    proc = subprocess.run([*words, "--help"], env=env, capture_output=True, timeout=60)
    return None if proc.returncode == 0 else " ".join(words)


def run(command: str, env: dict[str, str], work: Path, state: Path) -> tuple[int, str, str]:
    """One command in bash, with the exported variables of the commands before it."""
    script = (f'. "{state}"\ncd "{work}"\n{command}\n__rc=$?\n'
              f'export -p > "{state}"\nexit $__rc\n')
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=90)
    return proc.returncode, proc.stdout, proc.stderr


def shown(stdout: str, env: dict[str, str]) -> str:
    """stdout as the tutorial writes it: the registry and the port by their variables
    (the port as a whole number only: never inside an id or a longer number)."""
    stdout = stdout.replace(env["REGISTRY"], "$REGISTRY")
    return re.sub(rf"\b{env['PORT']}\b", "$PORT", stdout)


def test_the_tutorial_runs_as_written(env: dict[str, str], tmp_path: Path) -> None:
    work, state = tmp_path / "work", tmp_path / "exports.sh"
    work.mkdir()
    state.write_text("")
    ran, skipped_for = 0, {}
    for block in mdblocks.blocks(TUTORIAL):
        if block.lang != "console":
            continue
        marks = block.marks
        if any(m.startswith("skip") for m in marks):
            continue
        needs = [m for m in marks if m.startswith("needs ")]
        missing = [c for c in (missing_command(m, env) for m in needs) if c]
        if missing:
            skipped_for.setdefault(", ".join(missing), []).append(block.where)
            continue
        attempts = 100 if any(m.startswith("retry") for m in marks) else 1
        for cmd in mdblocks.commands(block):
            for attempt in range(attempts):
                t0 = time.monotonic()
                rc, out, err = run(cmd.line, env, work, state)
                print(f"{time.monotonic() - t0:6.2f}s {cmd.line[:70]}")
                if rc == 0 and mdblocks.matches(cmd.expected, shown(out, env)):
                    break
                if attempt + 1 < attempts:
                    time.sleep(0.1)  # a bound on waiting for a server, not a timing claim
            assert rc == 0, f"{block.where}: `{cmd.line}` exited {rc}\n{err}"
            assert mdblocks.matches(cmd.expected, shown(out, env)), (
                f"{block.where}: `{cmd.line}` printed\n{shown(out, env)}\nwhere the "
                "tutorial shows\n" + "\n".join(cmd.expected) + f"\n(stderr: {err})")
            ran += 1
    assert ran >= 20
    if skipped_for:
        pytest.skip(f"ran {ran} commands; skipped the tutorial's sections needing "
                    + "; ".join(f"`{c}` (not built yet: {', '.join(w)})"
                                for c, w in skipped_for.items()))
