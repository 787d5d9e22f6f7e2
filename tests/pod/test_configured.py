"""Configured containers (podman's create): `pod create`, `pod create --pod` and the
infra of `pod pod create` make the record, the bundle and the rootfs but no conmon and no
runc state; `start` / `pod pod start` do conmon + runc create + runc start. Against real
conmon, runc and overlayfs; podman's answers for the same commands are in the test of
the pod table against the oracle."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podkit_common.schemas import SchemaSet
from tests.testbed.env import mounts_under
from tests.testbed.procs import live_mentions
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_runtime"])


@pytest.fixture(autouse=True)
def _needs_conmon_and_catatonit() -> None:
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")


def pod(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = sh("pod " + " ".join(shlex.quote(a) for a in args), env=env)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def ok(env: dict[str, str], *args: str) -> str:
    proc = pod(env, *args)
    assert proc.returncode == 0, (args, proc.stderr)
    return proc.stdout


def image(images: Any) -> str:
    return images.ref("busybox:latest").removeprefix("docker://")


def conmons(env: dict[str, str], cid: str) -> list[str]:
    """conmon processes of the container (its id is on their command line)."""
    return [p for p in live_mentions(Path(env["PODKIT_RUNROOT"])) if "conmon" in p
            and cid in p]


def runc_state(env: dict[str, str], cid: str) -> bool:
    return (Path(env["PODKIT_RUNROOT"]) / "runc" / cid).exists()


def inspect(env: dict[str, str], ref: str) -> dict[str, Any]:
    return json.loads(ok(env, "inspect", ref))[0]


def ps_states(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {r["Names"][0]: (r["State"], r["Status"].split()[0])
            for r in json.loads(ok(env, "ps", "-a", "--format", "json"))}


def test_create_makes_no_process_and_start_runs_it(podkit_env: dict[str, str],
                                                  images: Any) -> None:
    env = podkit_env
    cid = ok(env, "create", "--tls-verify=false", "--name", "c1", image(images),
             "sleep", "1000").strip()
    assert conmons(env, cid) == [] and not runc_state(env, cid)
    state = inspect(env, "c1")["State"]
    assert (state["Status"], state["Pid"], state["ConmonPid"]) == ("created", 0, 0)
    assert ps_states(env) == {"c1": ("created", "Created")}
    logs = pod(env, "logs", "c1")
    assert (logs.returncode, logs.stdout) == (0, "")
    killed = pod(env, "kill", "c1")  # podman: only running containers
    assert killed.returncode == 125
    assert "can only kill running containers" in killed.stderr
    assert pod(env, "stop", "c1").returncode == 0  # podman: nothing to stop
    assert pod(env, "exec", "c1", "true").returncode != 0
    assert pod(env, "container", "cleanup", "c1").returncode == 0
    assert ps_states(env) == {"c1": ("created", "Created")}  # all of that left it alone

    ok(env, "start", "c1")
    state = inspect(env, "c1")["State"]
    assert state["Status"] == "running" and state["Pid"] > 0 and state["ConmonPid"] > 0
    assert len(conmons(env, cid)) == 1 and runc_state(env, cid)
    assert ok(env, "exec", "c1", "echo", "hi") == "hi\n"
    ok(env, "rm", "-f", "-t", "0", "c1")
    assert conmons(env, cid) == [] and not runc_state(env, cid)
    assert ok(env, "ps", "-a", "-q") == ""


def test_a_configured_container_is_removed_without_force_and_keeps_its_create_time(
        podkit_env: dict[str, str], images: Any) -> None:
    env = podkit_env
    cid = ok(env, "create", "--tls-verify=false", "--name", "c2", image(images), "true").strip()
    created = inspect(env, "c2")["Created"]
    assert inspect(env, "c2")["State"]["Status"] == "created"
    ok(env, "rm", "c2")
    assert ok(env, "ps", "-a", "-q") == ""
    assert mounts_under(Path(env["PODKIT_ROOT"])) == []
    assert not runc_state(env, cid)
    # the create time stays the create time once it runs
    ok(env, "create", "--tls-verify=false", "--name", "c3", image(images), "sh", "-c",
       "echo ran; exit 4")
    created = inspect(env, "c3")["Created"]
    ok(env, "start", "c3")
    assert ok(env, "wait", "c3").strip() == "4"
    assert ok(env, "logs", "c3") == "ran\n"
    assert inspect(env, "c3")["Created"] == created
    ok(env, "rm", "c3")


def test_a_start_that_fails_leaves_it_created_like_podman(podkit_env: dict[str, str],
                                                           images: Any) -> None:
    env = podkit_env
    cid = ok(env, "create", "--tls-verify=false", "--name", "bad", image(images),
             "/no/such/cmd").strip()  # podman's create defers runc create to start
    for _ in range(2):  # and every start fails the same way
        started = pod(env, "start", "bad")
        assert started.returncode == 125, started.stderr
        assert "/no/such/cmd" in started.stderr
        assert ps_states(env) == {"bad": ("created", "Created")}
        assert conmons(env, cid) == [] and not runc_state(env, cid)
    ok(env, "rm", "bad")
    assert ok(env, "ps", "-a", "-q") == ""
    assert mounts_under(Path(env["PODKIT_ROOT"])) == []


def test_a_pod_of_configured_members_starts_at_pod_start(podkit_env: dict[str, str],
                                                        images: Any) -> None:
    env = podkit_env
    ok(env, "pod", "create", "--name", "pf", "--network", "none")
    ids = [ok(env, "create", "--tls-verify=false", "--pod", "pf", "--name", f"pf-{i}",
              image(images), "sleep", "1000").strip() for i in range(2)]
    info = json.loads(ok(env, "pod", "inspect", "pf"))
    SCHEMAS.validate(info, "urn:podkit:runtime:pod-inspect")
    infra = info["InfraContainerID"]
    # podman's pod after create: every container Created, nothing running
    assert info["State"] == "Created"
    assert sorted(c["State"] for c in info["Containers"]) == ["created"] * 3
    for cid in [infra, *ids]:
        assert conmons(env, cid) == [] and not runc_state(env, cid)

    ok(env, "pod", "start", "pf")
    info = json.loads(ok(env, "pod", "inspect", "pf"))
    assert info["State"] == "Running"
    assert sorted(c["State"] for c in info["Containers"]) == ["running"] * 3
    pids = {c: inspect(env, c)["State"]["Pid"] for c in [infra, *ids]}
    infra_net = os.readlink(f"/proc/{pids[infra]}/ns/net")
    assert all(os.readlink(f"/proc/{pids[c]}/ns/net") == infra_net for c in ids)
    assert ok(env, "exec", "pf-1", "hostname").strip() == "pf"

    ok(env, "pod", "rm", "-f", "-t", "0", "pf")
    assert ok(env, "ps", "-a", "-q") == ""
    for cid in [infra, *ids]:
        assert conmons(env, cid) == [] and not runc_state(env, cid)
    assert mounts_under(Path(env["PODKIT_ROOT"])) == []


def test_starting_one_member_starts_the_infra_and_pod_ops_on_configured_pods(
        podkit_env: dict[str, str], images: Any) -> None:
    env = podkit_env
    ok(env, "pod", "create", "--name", "pg", "--network", "none")
    for i in range(2):
        ok(env, "create", "--tls-verify=false", "--pod", "pg", "--name", f"pg-{i}",
           image(images), "sleep", "1000")
    ok(env, "pod", "stop", "pg")  # podman: a stop of a created pod is no error
    killed = pod(env, "pod", "kill", "pg")
    assert killed.returncode != 0  # nothing runs
    ok(env, "start", "pg-0")
    states = {c["Name"]: c["State"]
              for c in json.loads(ok(env, "pod", "inspect", "pg"))["Containers"]}
    assert sorted(states.values()) == ["created", "running", "running"]
    assert states["pg-1"] == "created"
    assert json.loads(ok(env, "pod", "inspect", "pg"))["State"] == "Degraded"
    ok(env, "pod", "rm", "-f", "-t", "0", "pg")
    assert ok(env, "ps", "-a", "-q") == ""
    assert mounts_under(Path(env["PODKIT_ROOT"])) == []


def _seen(call: Any, image_ref: str) -> dict[str, Any]:
    """What a user sees of a pod of configured members, with one tool."""
    seen: dict[str, Any] = {}
    seen["pod-create"] = call("pod", "create", "--name", "dp", "--network", "none").returncode
    seen["create"] = call("create", "--pod", "dp", "--name", "dp-m", image_ref,
                          "sleep", "1000").returncode
    rows = json.loads(call("ps", "-a", "--format", "json").stdout)
    seen["ps"] = sorted((r["State"], r["Status"].split()[0], r["Pid"]) for r in rows)
    state = json.loads(call("inspect", "dp-m").stdout)[0]["State"]
    seen["inspect"] = (state["Status"], state["Running"], state["Pid"],
                       state.get("ConmonPid", 0))  # podman leaves out a zero
    seen["pod-status"] = json.loads(call("pod", "inspect", "dp").stdout)
    seen["pod-status"] = (seen["pod-status"][0] if isinstance(seen["pod-status"], list)
                          else seen["pod-status"])["State"]
    killed = call("kill", "dp-m")
    seen["kill"] = (killed.returncode, "can only kill running containers" in killed.stderr)
    seen["stop"] = call("stop", "dp-m").returncode
    logs = call("logs", "dp-m")
    seen["logs"] = (logs.returncode, logs.stdout)
    seen["exec"] = call("exec", "dp-m", "true").returncode != 0
    seen["pod-start"] = call("pod", "start", "dp").returncode
    rows = json.loads(call("ps", "-a", "--format", "json").stdout)
    seen["ps-started"] = sorted(r["State"] for r in rows)
    seen["rm"] = call("pod", "rm", "-f", "-t", "0", "dp").returncode
    return seen


def test_a_configured_pod_looks_like_podmans(podman: Any, podkit_env: dict[str, str],
                                             images: Any) -> None:
    ref = image(images)
    podman.pull(ref)
    ok(podkit_env, "pull", "--tls-verify=false", ref)
    want = _seen(lambda *a: podman.run(*a, check=False), ref)
    got = _seen(lambda *a: pod(podkit_env, *a), ref)
    assert want["ps"] == [("created", "Created", 0)] * 2  # the oracle, as we read it
    assert want["kill"] == (125, True) and want["stop"] == 0
    assert got == want


def _start_attached(call: Any, image_ref: str) -> dict[str, Any]:
    """What `start --attach` shows of a job container, with one tool."""
    seen: dict[str, Any] = {}
    seen["create"] = call("create", "--name", "sa-job", image_ref, "sh", "-c",
                          "echo to-out; echo to-err >&2; exit 3").returncode
    for round_ in ("first", "again"):  # a created container, then the exited one again
        done = call("start", "--attach", "sa-job")
        seen[round_] = (done.returncode, done.stdout, done.stderr)
    seen["two"] = call("start", "-a", "sa-job", "sa-job").returncode
    seen["rm"] = call("rm", "sa-job").returncode
    return seen


def test_start_attach_shows_the_output_and_gives_the_exit_code_like_podman(
        podman: Any, podkit_env: dict[str, str], images: Any) -> None:
    """podman's `start -a`: what the container writes (stdout to stdout, stderr to
    stderr), every time it is started, and its exit code as the command's."""
    ref = image(images)
    podman.pull(ref)
    ok(podkit_env, "pull", "--tls-verify=false", ref)
    want = _start_attached(lambda *a: podman.run(*a, check=False), ref)
    got = _start_attached(lambda *a: pod(podkit_env, *a), ref)
    assert want["first"] == (3, "to-out\n", "to-err\n")  # the oracle, as we read it
    assert got == want


def test_pod_rm_leaves_no_lock_file_of_the_pod(podkit_env: dict[str, str],
                                               images: Any) -> None:
    """Each removed pod left `locks/pod-<id>.lock` (and `pod-hosts-<id>.lock`, made by
    its members) behind: they piled up for ever."""
    env = podkit_env
    pod_id = ok(env, "pod", "create", "--name", "lockless", "--network", "none").strip()
    member = ok(env, "run", "-d", "--tls-verify=false", "--pod", "lockless",
                image(images), "sleep", "1000").strip()
    infra = json.loads(ok(env, "pod", "inspect", "lockless"))["InfraContainerID"]
    locks = Path(env["PODKIT_ROOT"]) / "locks"
    assert {f"pod-{pod_id}.lock", f"pod-hosts-{pod_id}.lock"} <= set(os.listdir(locks))
    ok(env, "pod", "rm", "-f", "lockless")
    assert [n for n in os.listdir(locks) if any(x in n for x in (pod_id, member, infra))] == []
