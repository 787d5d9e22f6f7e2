"""`pod run`'s cold path: PODKIT_TRACE_TIMINGS=1 prints where the wall time went (one
line per phase, read by the bench: bench/phases.py), and the work overlapped with runc
(the storage teardown started by the runtime's on_exit hook) leaves nothing behind.
"""

from __future__ import annotations

import subprocess

import pytest

from bench import phases
from podkit_runtime import _timings

RUN_PHASES = ("start", "run-imports", "image", "storage-create", "bundle", "network-begin",
              "conmon-spawn", "conmon-cgroup", "runc-create", "before-start", "runc-start",
              "attached", "exit-file", "settle", "remove-runtime", "remove")


def test_lines_and_parse_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_timings, "ENABLED", True)
    monkeypatch.setattr(_timings, "_marks", [])
    for name in ("start", "image", "remove"):
        _timings.mark(name)
    text = "\n".join(["container output", *_timings.lines(), "more output"])
    got = phases.parse(text)
    assert [name for name, _ in got] == ["start", "image", "remove"]
    assert all(ms >= 0 for _, ms in got)
    assert phases.line(got).endswith(" ms")


def test_marks_cost_nothing_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_timings, "ENABLED", False)
    monkeypatch.setattr(_timings, "_marks", [])
    _timings.mark("start")
    assert _timings.lines() == []


def _pod_run(env: dict[str, str], ref: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pod", "run", "--rm", "--network", "none", "--tls-verify=false",
                           ref, *command], env=env, capture_output=True, timeout=120,
                          check=False)


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_pod_run_reports_its_phases_and_leaves_nothing(images, podkit_env) -> None:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    traced = _pod_run({**podkit_env, "PODKIT_TRACE_TIMINGS": "1"}, ref,
                      "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
    assert traced.returncode == 3, traced.stderr
    assert traced.stdout == b"out\n"  # stdout stays the container's
    err = traced.stderr.decode()
    assert "err\n" in err
    got = phases.parse(err)
    assert [name for name, _ in got] == list(RUN_PHASES), err
    totals = [float(line.split()[3]) for line in err.splitlines()
              if line.startswith(phases.PREFIX)]
    assert totals == sorted(totals) and all(ms >= 0 for _, ms in got)

    plain = _pod_run(podkit_env, ref, "/bin/sh", "-c", "echo out")
    assert plain.returncode == 0 and plain.stdout == b"out\n"
    assert phases.PREFIX.encode() not in plain.stderr

    # --rm with the storage teardown overlapped: no container, no mount left
    ps = subprocess.run(["pod", "ps", "-a", "-q"], env=podkit_env, capture_output=True,
                        timeout=60, check=False)
    assert ps.returncode == 0 and ps.stdout == b""
    storage = subprocess.run(["pod-storage", "containers"], env=podkit_env,
                             capture_output=True, timeout=60, check=False)
    assert storage.returncode == 0 and b'"id"' not in storage.stdout, storage.stdout
    root = podkit_env["PODKIT_ROOT"]
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if root in line]


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_pod_run_without_rm_unmounts_but_keeps_the_container(images, podkit_env) -> None:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = subprocess.run(["pod", "run", "--network", "none", "--tls-verify=false", "--name",
                           "kept", ref, "/bin/sh", "-c", "echo hi > /f"], env=podkit_env,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    root = podkit_env["PODKIT_ROOT"]
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if root in line and "overlay" in line]
    ps = subprocess.run(["pod", "ps", "-a", "--format", "{{.Names}} {{.Status}}"],
                        env=podkit_env, capture_output=True, text=True, timeout=60,
                        check=False)
    assert ps.returncode == 0 and ps.stdout.startswith("kept Exited (0)"), ps.stdout
