"""`stats` streaming like podman 4.3.1: a round every --interval seconds until
interrupted, CPU % between two samples, every running container when none is named,
a row of zeros for a named container that is not running; `--no-stream` one round.
Against real containers under conmon + runc (cgroup v1)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from tests.runtime.test_lifecycle import run_cli
from tests.runtime.test_top_stats import start
from tests.testbed.procs import stop_pid

SCHEMAS = SchemaSet(["podkit_runtime"])
BUSY = ("sh", "-c", "while :; do :; done")
#: 8 MB kept in a shell variable, then idle (the shell stays: sleep is not its last
#: command, so it does not exec it and free the memory)
ALLOCATES = ("sh", "-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready; "
             "sleep 1000; echo ${#x}")


@pytest.fixture
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def real(test):
    """Real conmon + runc containers from the test registry (the markers' skips)."""
    for mark in (pytest.mark.root, pytest.mark.overlay, pytest.mark.runc,
                 pytest.mark.registry, pytest.mark.usefixtures("_needs_conmon")):
        test = mark(test)
    return test


class Streamer:
    """A streaming stats command we started; read from it, stop it by its pid."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.buf = b""

    def read_until(self, predicate, limit: float = 60.0) -> bytes:
        """Read stdout until ``predicate(all bytes so far)``; ``limit`` only guards
        against a hang (a stream that never writes fails the test)."""
        fd = self.proc.stdout.fileno()
        while not predicate(self.buf):
            ready, _, _ = select.select([fd], [], [], limit)
            assert ready, f"no output for {limit}s; so far {self.buf[-500:]!r}"
            chunk = os.read(fd, 65536)
            assert chunk, (f"stats ended ({self.proc.wait()}): "
                           f"{self.proc.stderr.read().decode()}")
            self.buf += chunk
        return self.buf

    def stop(self) -> None:
        stop_pid(self.proc.pid)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@contextlib.contextmanager
def streaming(argv: list[str], env: dict[str, str]):
    s = Streamer(argv, env)
    try:
        yield s
    finally:
        s.stop()


def rows_of(buf: bytes) -> list[dict]:
    return [jsonio.loads(line) for line in buf.splitlines() if line.strip()]


# -- pure ---------------------------------------------------------------------------------

def test_cpu_percent_is_podmans_formula() -> None:
    from podkit_runtime._stats import cpu_percent

    # half a second of CPU over one second of wall time
    assert cpu_percent(1_500_000_000, 1_000_000_000, 3_000_000_000, 2_000_000_000) == 50.0
    assert cpu_percent(100, 100, 10, 5) == 0.0  # no CPU used
    assert cpu_percent(100, 200, 10, 5) == 0.0  # restarted: never negative
    assert cpu_percent(200, 100, 5, 5) == 0.0  # no time passed


def test_stream_options_are_checked_like_podman() -> None:
    from podkit_runtime._stats import stream

    with pytest.raises(errors.UsageError, match="interval"):
        next(stream(None, ["x"], interval=0))
    with pytest.raises(errors.UsageError, match="cannot be used together"):
        next(stream(None, ["x"], all_=True))


def test_stream_yields_rounds_and_sleeps_between(monkeypatch) -> None:
    from podkit_runtime import _stats

    calls: list[tuple] = []
    monkeypatch.setattr(_stats, "sample", lambda roots, refs, prev: calls.append(
        ("sample", tuple(refs))) or [{"round": len(calls)}])
    slept: list[float] = []
    rounds = _stats.stream("roots", ["a"], interval=3, sleep=slept.append)
    assert [next(rounds), next(rounds), next(rounds)] == [[{"round": 1}], [{"round": 2}],
                                                          [{"round": 3}]]
    assert slept == [3, 3] and calls == [("sample", ("a",))] * 3
    assert list(_stats.stream("roots", ["a"], stream=False, sleep=slept.append)) == [
        [{"round": 4}]]
    assert slept == [3, 3]


# -- real containers ----------------------------------------------------------------------

@real
def test_stream_measures_cpu_between_samples_and_memory(images, podkit_env, tmp_path) -> None:
    start(images, podkit_env, tmp_path, "busy", *BUSY)
    start(images, podkit_env, tmp_path, "hog", *ALLOCATES)
    start(images, podkit_env, tmp_path, "done", "true")
    run_cli("pod-runtime wait done", podkit_env)
    try:
        for _ in range(600):  # until the 8 MB are held (its log says so)
            if b"ready" in run_cli("pod-runtime logs hog", podkit_env).stdout:
                break
        # Named: a line per container per round, every second.
        with streaming(["pod-runtime", "stats", "--interval", "1", "busy", "hog"],
                       podkit_env) as s:
            buf = s.read_until(lambda b: b.count(b"\n") >= 4)
        rows = rows_of(buf)[:4]
        for row in rows:
            SCHEMAS.validate(row, "urn:podkit:runtime:stats")
        assert [r["Name"] for r in rows] == ["busy", "hog", "busy", "hog"]
        first, second = rows[0], rows[2]
        assert second["SystemNano"] > first["SystemNano"]
        assert second["CPUNano"] > first["CPUNano"]  # the loop keeps burning CPU
        assert second["CPU"] > 0 and second["AvgCPU"] > 0
        # CPU % of the second round is over the time between the two samples
        expected = 100.0 * (second["CPUNano"] - first["CPUNano"]) / (
            second["SystemNano"] - first["SystemNano"])
        assert second["CPU"] == pytest.approx(expected, abs=0.01)
        hog = rows[3]
        assert hog["MemUsage"] >= 8_000_000 and hog["MemUsage"] <= hog["MemLimit"]
        assert hog["PIDs"] >= 1

        # Unnamed: every running container, not the exited one.
        proc = run_cli("pod-runtime stats --no-stream", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        assert sorted(r["Name"] for r in rows_of(proc.stdout)) == ["busy", "hog"]
        # Named but not running: podman's row of zeros.
        proc = run_cli("pod-runtime stats --no-stream done", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        (zero,) = rows_of(proc.stdout)
        SCHEMAS.validate(zero, "urn:podkit:runtime:stats")
        assert zero["Name"] == "done" and zero["CPUNano"] == zero["MemUsage"] == 0
        assert run_cli("pod-runtime stats --no-stream nosuch", podkit_env).returncode == 4
        assert run_cli("pod-runtime stats --all busy", podkit_env).returncode == 2
        assert run_cli("pod-runtime stats -i 0 busy", podkit_env).returncode == 2
    finally:
        run_cli("pod-runtime rm -f -t 0 busy hog done", podkit_env)


@real
def test_pod_stats_streams_podmans_table(images, podkit_env, tmp_path) -> None:
    from podkit_runtime._stats import SCREEN_RESET

    start(images, podkit_env, tmp_path, "busy", *BUSY)
    reset = SCREEN_RESET.encode()
    try:
        with streaming(["pod", "stats", "--interval", "1", "busy"], podkit_env) as s:
            buf = s.read_until(lambda b: b.count(reset) >= 2 and b.endswith(b"\n")
                               and b.rsplit(reset, 1)[1].count(b"\n") >= 2)
        rounds = [r for r in buf.split(reset) if r]
        assert len(rounds) >= 2
        for text in rounds[:2]:
            header, line = text.decode().splitlines()[:2]
            assert header.startswith("ID") and "AVG CPU %" in header
            assert line.split()[1] == "busy"
        with streaming(["pod", "stats", "--no-reset", "-i", "1", "busy"], podkit_env) as s:
            buf = s.read_until(lambda b: b.count(b"busy") >= 2)
        assert reset not in buf and buf.count(b"CPU TIME") >= 2
        proc = run_cli("pod stats --no-stream --format json busy", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        (row,) = jsonio.loads(proc.stdout)
        assert sorted(row) == sorted(["id", "name", "cpu_time", "cpu_percent", "avg_cpu",
                                      "mem_usage", "mem_percent", "net_io", "block_io",
                                      "pids"])
        assert row["name"] == "busy" and row["cpu_percent"].endswith("%")
        table = run_cli("pod stats --no-stream busy", podkit_env).stdout
        assert reset not in table and table.count(b"\n") == 2
    finally:
        run_cli("pod-runtime rm -f -t 0 busy", podkit_env)


@real
def test_pod_stats_json_and_a_stopped_container_match_podman(images, podkit_env, tmp_path,
                                                             podman) -> None:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    podman.run("run", "-d", "--network", "none", "--name", "up", ref, "sleep", "1000")
    podman.run("run", "--network", "none", "--name", "down", ref, "true")
    start(images, podkit_env, tmp_path, "up", "sleep", "1000")
    start(images, podkit_env, tmp_path, "down", "true")
    run_cli("pod-runtime wait down", podkit_env)
    try:
        theirs = jsonio.loads(podman.run("stats", "--no-stream", "--format", "json", "up",
                                         "down").stdout)
        proc = run_cli("pod stats --no-stream --format json up down", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        ours = jsonio.loads(proc.stdout)
        assert [sorted(r) for r in ours] == [sorted(r) for r in theirs]
        assert [r["name"] for r in ours] == [r["name"] for r in theirs] == ["up", "down"]
        # a named container that is not running: a row of zeros in both
        their_down, our_down = theirs[1], ours[1]
        for key in ("cpu_percent", "mem_usage", "pids", "cpu_time", "net_io", "block_io"):
            assert our_down[key] == their_down[key], (key, our_down, their_down)
        # the JSON text itself: Go's MarshalIndent with one space
        their_text = podman.run("stats", "--no-stream", "--format", "json", "down").stdout
        our_text = run_cli("pod stats --no-stream --format json down", podkit_env).stdout
        def no_id(text: str) -> str:
            return re.sub(r'"id": "[0-9a-f]{12}"', '"id": "ID"', text)

        assert no_id(our_text.decode()) == no_id(their_text)
        # Go templates: a table's headers, and a plain line per container
        table = "table {{.ID}} {{.Name}} {{.PIDS}} {{.AVGCPU}} {{.MemUsage}} {{.CPU}}"
        their_head = podman.run("stats", "--no-stream", "--format", table, "up").stdout
        our_head = run_cli(f"pod stats --no-stream --format '{table}' up", podkit_env)
        assert our_head.returncode == 0, our_head.stderr.decode()
        assert (our_head.stdout.decode().splitlines()[0].split()
                == their_head.splitlines()[0].split())
        plain = "{{.Name}}:{{.PIDS}}:{{.CPUPerc}}"
        assert run_cli(f"pod stats --no-stream --format '{plain}' down",
                       podkit_env).stdout.decode() == podman.run(
            "stats", "--no-stream", "--format", plain, "down").stdout == "down:0:0.00%\n"
    finally:
        podman.run("rm", "-f", "-t", "0", "up", "down", check=False)
        run_cli("pod-runtime rm -f -t 0 up down", podkit_env)
