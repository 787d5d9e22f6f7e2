"""`pod events`: podman's filters, times and formats over the event log, the events real
workflows write (conmon, runc, overlayfs, CNI, the local registry), following the log
while containers start, and the same statuses and JSON keys as podman (the oracle)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from podkit_common import events
from podkit_common.schemas import SchemaSet
from tests.netsetup.conftest import net_env, restore_ip_forward  # noqa: F401  (fixtures)
from tests.testbed.env import make_env

SCHEMAS = SchemaSet([])
CID = "0123456789ab" + "c" * 52
REAL = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


def pod(env: dict[str, str], *args: str, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def ok(env: dict[str, str], *args: str) -> str:
    res = pod(env, *args)
    assert res.returncode == 0, (args, res.stderr)
    return res.stdout


def json_events(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    out = ok(env, "events", "--stream=false", "--format", "json", *args)
    docs = [json.loads(line) for line in out.splitlines()]
    for doc in docs:
        SCHEMAS.validate(doc, "urn:podkit:common:event")
    return docs


@pytest.fixture
def log_env(tmp_path: Path) -> dict[str, str]:
    """A root whose log holds a known history (no containers: just the log)."""
    root = tmp_path / "root"
    path = events.log_path(root)
    t0 = 1_700_000_000_000_000_000
    for i, (kind, status, kw) in enumerate([
        ("image", "pull", {"id": "ee" * 32, "name": "127.0.0.1:5000/busybox:latest"}),
        ("container", "create", {"id": CID, "name": "web", "image": "busybox",
                                 "attributes": {"app": "x"}}),
        ("container", "start", {"id": CID, "name": "web", "image": "busybox",
                                "attributes": {"app": "x"}}),
        ("container", "died", {"id": CID, "name": "web", "image": "busybox",
                               "exit_code": 3, "attributes": {"app": "x"}}),
        ("pod", "create", {"id": "dd" * 32, "name": "p1"}),
        ("network", "connect", {"id": CID, "name": "web", "network": "net1"}),
    ]):
        events.append(path, events.make_event(kind, status, time_ns=t0 + i * 60_000_000_000,
                                              **kw))
    return make_env(root, tmp_path / "runroot", {**os.environ, "TZ": "UTC"})


def test_default_lines_are_podmans(log_env):
    lines = ok(log_env, "events", "--stream=false").splitlines()
    assert lines == [
        "2023-11-14 22:13:20 +0000 UTC image pull " + "ee" * 32
        + " 127.0.0.1:5000/busybox:latest",
        f"2023-11-14 22:14:20 +0000 UTC container create {CID} (image=busybox, name=web, "
        "app=x)",
        f"2023-11-14 22:15:20 +0000 UTC container start {CID} (image=busybox, name=web, "
        "app=x)",
        f"2023-11-14 22:16:20 +0000 UTC container died {CID} (image=busybox, name=web, "
        "app=x, containerExitCode=3)",
        "2023-11-14 22:17:20 +0000 UTC pod create " + "dd" * 32 + " (image=, name=p1)",
        f"2023-11-14 22:18:20 +0000 UTC network connect {CID} (container={CID}, name=net1)",
    ]
    short = ok(log_env, "events", "--stream=false", "--trunc", "--filter", "event=start")
    assert f"container start {CID[:12]} (" in short


def test_json_lines_validate_and_filters_combine(log_env):
    docs = json_events(log_env)
    assert [d["Status"] for d in docs] == ["pull", "create", "start", "died", "create",
                                           "connect"]
    assert docs[3]["ContainerExitCode"] == 3
    assert [d["Status"] for d in json_events(log_env, "--filter", "container=web")] == \
        ["create", "start", "died"]
    assert [d["Status"] for d in json_events(
        log_env, "--filter", "event=start", "--filter", "event=died")] == ["start", "died"]
    # different keys AND (each key's own matching: tests/common/test_events.py)
    assert [d["Type"] for d in json_events(log_env, "--filter", "label=app=x",
                                           "--filter", "event=create")] == ["container"]


def test_since_until_and_templates(log_env):
    out = ok(log_env, "events", "--stream=false", "--since", "2023-11-14T22:14:30Z",
             "--until", "1700000230", "--format", "{{.Status}} {{.Name}} "
             "{{.ContainerExitCode}} {{.Attributes}}")
    assert out.splitlines() == ["start web 0 map[app:x]", "died web 3 map[app:x]"]
    assert ok(log_env, "events", "--stream=false", "--since", "5m") == ""  # all older
    out = ok(log_env, "events", "--stream=false", "--format", "{{json .}}",
             "--filter", "type=pod")
    assert json.loads(out)["Name"] == "p1"


def test_stream_with_until_in_the_past_stops(log_env):
    res = pod(log_env, "events", "--until", "2023-11-14T22:15:00Z", timeout=60)
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2


@pytest.mark.parametrize(("args", "message"), [
    (("--filter", "bogus=1"), "bogus is an invalid filter"),
    (("--since", "yesterday"), "unable to interpret time value"),
    (("--format", "{{.Nope}}"), "can't evaluate field Nope"),
])
def test_bad_options_are_usage_errors(log_env, args, message):
    res = pod(log_env, "events", "--stream=false", *args)
    assert res.returncode == 125 and message in res.stderr, res.stderr
    assert res.stdout == ""


def test_events_none_records_nothing(tmp_path):
    env = make_env(tmp_path / "root", tmp_path / "runroot",
                   {**os.environ, events.ENV_LOGGER: "none"})
    ok(env, "volume", "create", "v1")
    ok(env, "pod", "create", "--name", "p-none")
    ok(env, "pod", "rm", "p-none")
    assert not (tmp_path / "root" / "events").exists()


def test_volume_events(tmp_path):
    env = make_env(tmp_path / "root", tmp_path / "runroot")
    ok(env, "volume", "create", "ev-v1")
    ok(env, "volume", "create", "ev-v2")
    ok(env, "volume", "rm", "ev-v1")
    docs = json_events(env, "--filter", "volume=ev-v1")
    assert [(d["Type"], d["Status"], d["Name"]) for d in docs] == \
        [("volume", "create", "ev-v1"), ("volume", "remove", "ev-v1")]
    assert ok(env, "events", "--stream=false", "--filter", "type=volume").count("\n") == 3


# -- real workflows ---------------------------------------------------------------------

def _statuses(docs: list[dict[str, Any]], name: str) -> list[str]:
    return [d["Status"] for d in docs if d.get("Name") == name and d["Type"] == "container"]


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
@pytest.mark.netns
def test_a_workflow_leaves_its_history_in_order(net_env, images):  # noqa: F811
    env = net_env
    ref = images.ref("busybox:latest").removeprefix("docker://")
    start = time.time()
    ok(env, "pull", "--tls-verify=false", ref)
    ok(env, "create", "--name", "ev-a", "--label", "app=ev", ref, "sh", "-c", "exit 3")
    ok(env, "start", "ev-a")
    assert ok(env, "wait", "ev-a").strip() == "3"
    ok(env, "run", "-d", "--name", "ev-b", ref, "sleep", "600")
    assert pod(env, "exec", "ev-b", "sh", "-c", "exit 4").returncode == 4
    ok(env, "pause", "ev-b")
    ok(env, "unpause", "ev-b")
    ok(env, "kill", "ev-b")
    ok(env, "wait", "ev-b")
    ok(env, "rm", "ev-a", "ev-b")
    net = "pkt" + uuid.uuid4().hex[:8]
    ok(env, "network", "create", "--internal", net)
    ok(env, "run", "-d", "--network", net, "--name", "ev-c", ref, "sleep", "600")
    ok(env, "rm", "-f", "-t", "0", "ev-c")
    ok(env, "network", "rm", net)
    ok(env, "pod", "create", "--name", "ev-p")
    ok(env, "pod", "rm", "ev-p")

    docs = json_events(env, "--since", str(start - 1))
    assert [d["Status"] for d in docs if d["Type"] == "image"][:1] == ["pull"]
    assert _statuses(docs, "ev-a") == ["create", "init", "start", "died", "cleanup",
                                       "remove"]
    died = [d for d in docs if d.get("Name") == "ev-a" and d["Status"] == "died"]
    assert died[0]["ContainerExitCode"] == 3 and died[0]["Attributes"] == {"app": "ev"}
    b = _statuses(docs, "ev-b")
    assert b[:3] == ["create", "init", "start"] and b[-1] == "remove"
    assert [s for s in b if s in ("exec", "exec_died", "pause", "unpause", "kill", "died")] \
        == ["exec", "exec_died", "pause", "unpause", "kill", "died"]
    exec_died = [d for d in docs if d.get("Name") == "ev-b" and d["Status"] == "exec_died"]
    assert exec_died[0]["ContainerExitCode"] == 4
    killed = [d for d in docs if d.get("Name") == "ev-b" and d["Status"] == "died"]
    assert killed[0]["ContainerExitCode"] == 137
    assert b.count("died") == 1, "died is written once, by whoever records the exit"
    c_net = [(d["Status"], d.get("Network")) for d in docs
             if d["Type"] == "network" and d.get("Name") == "ev-c"]
    assert c_net == [("connect", net), ("disconnect", net)]
    assert [d["Status"] for d in docs if d["Type"] == "pod"] == ["create", "remove"]
    times = [events.parse_event_time(d["Time"]) for d in docs]
    assert times == sorted(times), "one process after another: the log is in time order"
    # the default format shows the same history, exit codes included
    text = ok(env, "events", "--stream=false", "--filter", "event=died")
    assert re.search(r"container died [0-9a-f]{64} \(image=\S+, name=ev-a, app=ev, "
                     r"containerExitCode=3\)", text), text


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_stream_follows_a_container_started_after_it(podkit_env, images):
    env = podkit_env
    ref = images.ref("busybox:latest").removeprefix("docker://")
    ok(env, "pull", "--tls-verify=false", ref)
    proc = subprocess.Popen(["pod", "events", "--format", "json", "--filter",
                             "container=ev-s"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=reader, daemon=True).start()
    try:
        assert pod(env, "run", "--name", "ev-s", ref, "sh", "-c", "exit 7").returncode == 7
        seen = []
        while "died" not in seen:
            event = json.loads(lines.get(timeout=60))
            SCHEMAS.validate(event, "urn:podkit:common:event")
            seen.append(event["Status"])
            if event["Status"] == "died":
                assert event["ContainerExitCode"] == 7
        assert seen[:4] == ["create", "init", "start", "attach"]
        assert proc.poll() is None, "--stream goes on until it is stopped"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        ok(env, "rm", "-f", "ev-s")


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_same_statuses_and_keys_as_podman(podkit_env, images, podman):
    """create, start, exit 3, rm: podman's and pod's events for it, in the same order,
    with the same JSON keys (podman 4.3 drops ContainerExitCode only when it is 0)."""
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    ok(podkit_env, "pull", "--tls-verify=false", ref)
    for tool in ("podman", "pod"):
        args = ("create", "--network", "none", "--name", "evo", "--label", "k=v", ref,
                "sh", "-c", "exit 3")
        if tool == "podman":
            podman.run(*args)
            podman.run("start", "evo")
            podman.run("wait", "evo")
            podman.run("rm", "evo")
        else:
            ok(podkit_env, *args)
            ok(podkit_env, "start", "evo")
            ok(podkit_env, "wait", "evo")
            ok(podkit_env, "rm", "evo")
    theirs = [json.loads(line) for line in podman.run(
        "events", "--stream=false", "--format", "json", "--filter",
        "container=evo").stdout.splitlines()]
    ours = json_events(podkit_env, "--filter", "container=evo")
    assert [e["Status"] for e in ours] == [e["Status"] for e in theirs] == \
        ["create", "init", "start", "died", "cleanup", "remove"]
    for mine, podmans in zip(ours, theirs, strict=True):
        assert sorted(mine) == sorted(podmans), mine["Status"]
        assert (mine["Type"], mine["Name"], mine["Attributes"]) == \
            (podmans["Type"], podmans["Name"], podmans["Attributes"])
    assert ours[3]["ContainerExitCode"] == theirs[3]["ContainerExitCode"] == 3


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_the_stage_executables_write_the_same_log(podkit_env, images):
    """No `pod` in the pipeline: each stage writes its own events to the root's log."""
    from tests.testbed.shell import sh

    ref = images.ref("busybox:latest")
    proc = sh(f"pod-image-pull --tls-verify=false {ref} | pod-storage import"
              " | pod-storage create --name ev-pipe"
              " | pod-runtime bundle --label stage=yes -- sh -c 'exit 9'"
              " | pod-netsetup attach --network none | pod-runtime run", env=podkit_env)
    assert proc.returncode == 9, proc.stderr.decode()
    ok(podkit_env, "rm", "ev-pipe")
    docs = json_events(podkit_env)
    assert [d["Status"] for d in docs if d["Type"] == "image"] == ["pull"]
    # conmon's exit command (`cleanup`) may still be starting when run returns, and
    # finds the container gone if rm was quicker: then it has nothing to report
    statuses = [s for s in _statuses(docs, "ev-pipe") if s != "cleanup"]
    assert statuses == ["create", "init", "start", "attach", "died", "remove"]
    (died,) = [d for d in docs if d["Status"] == "died"]
    assert died["ContainerExitCode"] == 9 and died["Attributes"] == {"stage": "yes"}
