"""Restart policies on attached runs, as podman 4.3.1 does them (checked against the
podman oracle below): the caller sees the first run's output only, the restarts are
done by conmon's exit command, and `run` returns once the container has exited for
good, with the last run's exit code (podman waits on conmon for that, but only for one
poll interval; podkit waits until the exit command has decided)."""

from __future__ import annotations

import shutil

import pytest

from podkit_common import jsonio
from tests.runtime.test_lifecycle import prepare, run_cli, save

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

FAILS = "echo run; exit 1"
#: fails once, then succeeds (the mark survives in the container's rootfs)
SECOND_TIME_LUCKY = "test -f /ok && { echo again; exit 0; }; touch /ok; echo first; exit 7"


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def inspect(env, name: str) -> dict:
    proc = run_cli(f"pod-runtime inspect {name}", env)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = jsonio.loads(proc.stdout)
    return doc[0] if isinstance(doc, list) else doc


def test_attached_run_sees_the_first_run_and_returns_after_the_last(images, podkit_env,
                                                                   tmp_path) -> None:
    doc = prepare(images, podkit_env, "flaky", "sh", "-c", FAILS)
    proc = run_cli(f"pod-runtime run --restart on-failure:2 --input "
                   f"{save(doc, tmp_path, 'flaky')}", podkit_env)
    assert proc.returncode == 1, proc.stderr.decode()
    out = jsonio.loads(proc.stdout)
    assert out["state"]["status"] == "exited" and out["state"]["exit_code"] == 1
    assert proc.stderr.decode().count("run\n") == 1  # attached to the first run only
    # no polling: the restarts are over when run returns
    info = inspect(podkit_env, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 1
    logs = run_cli("pod-runtime logs flaky", podkit_env)
    assert logs.stdout.decode().count("run\n") == 3  # three runs, all logged
    run_cli("pod-runtime rm flaky", podkit_env)


def test_the_status_is_the_last_runs(images, podkit_env, tmp_path) -> None:
    doc = prepare(images, podkit_env, "lucky", "sh", "-c", SECOND_TIME_LUCKY)
    proc = run_cli(f"pod-runtime run --restart on-failure:3 --input "
                   f"{save(doc, tmp_path, 'lucky')}", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "first" in proc.stderr.decode() and "again" not in proc.stderr.decode()
    info = inspect(podkit_env, "lucky")
    assert info["RestartCount"] == 1 and info["State"]["ExitCode"] == 0
    run_cli("pod-runtime rm lucky", podkit_env)


def test_a_policy_that_does_not_apply_returns_at_once(images, podkit_env, tmp_path) -> None:
    doc = prepare(images, podkit_env, "fine", "sh", "-c", "echo ok")
    proc = run_cli(f"pod-runtime run --restart on-failure:2 --input "
                   f"{save(doc, tmp_path, 'fine')}", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert inspect(podkit_env, "fine")["RestartCount"] == 0
    run_cli("pod-runtime rm fine", podkit_env)


def test_pod_run_matches_podman(images, podkit_env, podman) -> None:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    theirs = podman.run("run", "--name", "rp", "--network", "none", "--restart",
                        "on-failure:2", ref, "sh", "-c", FAILS, check=False)
    their_info = podman.json("inspect", "rp")[0]
    ours = run_cli(f"pod run --name rp --network none --tls-verify=false --restart "
                   f"on-failure:2 {ref} sh -c '{FAILS}'", podkit_env)
    our_info = jsonio.loads(run_cli("pod inspect rp", podkit_env).stdout)
    our_info = our_info[0] if isinstance(our_info, list) else our_info
    try:
        assert (ours.returncode, ours.stdout.decode()) == (theirs.returncode, theirs.stdout)
        assert (theirs.returncode, theirs.stdout) == (1, "run\n")
        # ours: over when run returns. podman's WaitForExit waits on conmon's pidfd for
        # one poll interval only, so under load it may return before the restarts end:
        # its count is read until it settles.
        assert our_info["RestartCount"] == 2
        assert our_info["State"]["Status"] == "exited" and our_info["State"]["ExitCode"] == 1
        for _ in range(600):
            if their_info["RestartCount"] == 2 and their_info["State"]["Status"] == "exited":
                break
            their_info = podman.json("inspect", "rp")[0]
        assert their_info["RestartCount"] == 2 and their_info["State"]["ExitCode"] == 1
    finally:
        run_cli("pod rm -f rp", podkit_env)
