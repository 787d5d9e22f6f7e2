"""Items of issue #7 that had no test of their own: `wait --condition` and `OOMKilled`
in inspect, against real conmon + runc."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from podkit_common import jsonio
from tests.runtime.test_lifecycle import loads, prepare, roots_of, run_cli, save

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def inspect(env, name: str) -> dict:
    doc = loads(run_cli(f"pod-runtime inspect {name}", env))
    return doc[0] if isinstance(doc, list) else doc


def test_wait_condition_running_returns_once_started(images, podkit_env, tmp_path) -> None:
    doc = prepare(images, podkit_env, "later", "sleep", "1000")
    loads(run_cli(f"pod-runtime create --input {save(doc, tmp_path, 'later')}", podkit_env))
    waiter = subprocess.Popen(["pod-runtime", "wait", "--condition", "running", "later"],
                              env=podkit_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # created, not running: the waiter is still waiting (it can only end by itself
        # once the container runs)
        assert inspect(podkit_env, "later")["State"]["Status"] == "created"
        assert waiter.poll() is None
        loads(run_cli("pod-runtime start later", podkit_env))
        out, err = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, err.decode()
        assert jsonio.loads(out)["state"]["status"] == "running"
        # an already reached condition returns at once; a bad one is a usage error
        assert loads(run_cli("pod-runtime wait --condition running later",
                             podkit_env))["state"]["status"] == "running"
        assert run_cli("pod-runtime wait --condition sleepy later",
                       podkit_env).returncode == 2
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
        run_cli("pod-runtime rm -f -t 0 later", podkit_env)


def test_an_oom_killed_container_says_so_in_inspect(images, podkit_env, tmp_path) -> None:
    from podkit_image_pull import pull
    from podkit_netsetup import attach
    from podkit_runtime import BundleOptions, write_bundle
    from podkit_storage import create_container, import_image

    roots = roots_of(podkit_env)
    doc = import_image(pull(images.ref("busybox:latest"), root=roots.root, tls_verify=False),
                       roots)
    doc = create_container(doc, roots, name="hungry")
    # 64 MB held in a shell variable under a 16 MB limit (no swap on these hosts)
    doc = attach(write_bundle(doc, roots, BundleOptions(
        command=("sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"),
        memory="16m", memory_swap="16m")), "none")
    proc = run_cli(f"pod-runtime run --input {save(doc, tmp_path, 'hungry')}", podkit_env)
    assert proc.returncode == 137, proc.stderr.decode()  # the container's status
    assert b"survived" not in proc.stderr
    assert jsonio.loads(proc.stdout)["state"]["exit_code"] == 137
    state = inspect(podkit_env, "hungry")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    run_cli("pod-runtime rm hungry", podkit_env)

    calm = prepare(images, podkit_env, "calm", "true")
    loads(run_cli(f"pod-runtime run --input {save(calm, tmp_path, 'calm')}", podkit_env))
    assert inspect(podkit_env, "calm")["State"]["OOMKilled"] is False
    run_cli("pod-runtime rm calm", podkit_env)
