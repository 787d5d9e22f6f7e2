"""`top`, `stats --no-stream`, `port` against a real running container (conmon + runc,
cgroup v1), and `--log-driver`/`--log-opt max-size` on real conmon."""

from __future__ import annotations

import re
import shutil

import pytest

from podkit_common import jsonio
from podkit_common.schemas import SchemaSet
from podkit_runtime._top import COLUMNS, port_lines
from tests.runtime.test_lifecycle import loads, prepare, run_cli, save

SCHEMAS = SchemaSet(["podkit_runtime"])
pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def start(images, env, tmp_path, name: str, *command: str, flags: str = "") -> dict:
    doc = prepare(images, env, name, *command)
    out = loads(run_cli(f"pod-runtime run -d {flags} --input {save(doc, tmp_path, name)}", env))
    return out


def test_top_lists_the_containers_processes(images, podkit_env, tmp_path) -> None:
    start(images, podkit_env, tmp_path, "topper", "sh", "-c", "sleep 1000 & sleep 2000")
    try:
        doc = None
        for _ in range(100):  # until the shell has started both children
            doc = loads(run_cli("pod-runtime top topper", podkit_env))
            if len(doc["processes"]) >= 2:  # sh execs the last sleep: it is pid 1
                break
        assert doc is not None
        SCHEMAS.validate(doc, "urn:podkit:runtime:top")
        commands = sorted(p["COMMAND"] for p in doc["processes"])
        assert "sleep 1000" in commands
        init = [p for p in doc["processes"] if p["PID"] == 1]
        assert len(init) == 1 and init[0]["PPID"] == 0 and init[0]["USER"] == "root"
        children = [p for p in doc["processes"] if p["PID"] != 1]
        # pids as the container sees them
        assert children and all(p["PPID"] == 1 for p in children), doc["processes"]
        table = run_cli("pod-runtime top --format table topper", podkit_env).stdout.decode()
        assert re.split(r"\s+", table.splitlines()[0].strip()) == [
            "USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
        assert list(COLUMNS) == list(doc["processes"][0])
        pod_table = run_cli("pod top topper", podkit_env)
        assert pod_table.returncode == 0 and b"sleep 1000" in pod_table.stdout
    finally:
        run_cli("pod-runtime rm -f -t 0 topper", podkit_env)


def test_top_of_a_stopped_container_is_a_conflict(images, podkit_env, tmp_path) -> None:
    start(images, podkit_env, tmp_path, "quick", "true")
    run_cli("pod-runtime wait quick", podkit_env)
    proc = run_cli("pod-runtime top quick", podkit_env)
    assert proc.returncode == 5, proc.stderr.decode()
    run_cli("pod-runtime rm quick", podkit_env)


def test_stats_reads_the_cgroup(images, podkit_env, tmp_path) -> None:
    # 8 MiB held in a tmpfs-free way: a shell variable, then sleep
    start(images, podkit_env, tmp_path, "statter", "sh", "-c",
          "x=$(head -c 8000000 /dev/zero | tr '\\0' a); sleep 1000")
    try:
        proc = run_cli("pod-runtime stats --no-stream statter", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        row = jsonio.loads(proc.stdout.splitlines()[0])
        SCHEMAS.validate(row, "urn:podkit:runtime:stats")
        assert row["Name"] == "statter" and row["PIDs"] >= 1
        assert 0 < row["MemUsage"] <= row["MemLimit"]
        assert row["CPUNano"] > 0 and row["CPU"] >= 0
        table = run_cli("pod stats --no-stream statter", podkit_env)
        assert table.returncode == 0, table.stderr.decode()
        header = table.stdout.decode().splitlines()[0]
        assert re.split(r"\s{2,}", header.strip()) == [
            "ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO", "PIDS",
            "CPU TIME", "AVG CPU %"]
        assert "statter" in table.stdout.decode()
    finally:
        run_cli("pod-runtime rm -f -t 0 statter", podkit_env)


def test_go_duration() -> None:
    from podkit_runtime._stats import go_duration

    assert [go_duration(n) for n in (0, 999, 3_474_000, 1_500_000_000, 123_100_000_000)] == [
        "0s", "999ns", "3.474ms", "1.5s", "2m3.1s"]


def test_port_lines_are_podmans_format() -> None:
    record = {"doc": {"network": {"ports": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]}}}
    assert port_lines(record) == ["80/tcp -> 0.0.0.0:8080", "53/udp -> 127.0.0.1:5353"]
    assert port_lines({"doc": {}}) == []


def test_port_of_a_container_without_ports_prints_nothing(images, podkit_env,
                                                           tmp_path) -> None:
    start(images, podkit_env, tmp_path, "noports", "sleep", "1000")
    try:
        proc = run_cli("pod port noports", podkit_env)
        assert proc.returncode == 0 and proc.stdout == b""
    finally:
        run_cli("pod-runtime rm -f -t 0 noports", podkit_env)


def test_log_opt_max_size_keeps_the_log_small(images, podkit_env, tmp_path) -> None:
    out = start(images, podkit_env, tmp_path, "chatty", "sh", "-c",
                "i=0; while [ $i -lt 3000 ]; do echo line-$i-padding-padding-padding; "
                "i=$((i+1)); done", flags="--log-opt max-size=10k")
    run_cli("pod-runtime wait chatty", podkit_env)
    log = tmp_path / "root"
    size = (log / "runtime/containers" / out["container"]["id"] / "ctr.log").stat().st_size
    assert size <= 10240  # ~150 kB of log lines were written
    proc = run_cli("pod-runtime logs chatty", podkit_env)
    assert proc.returncode == 0 and b"line-2999" in proc.stdout  # the tail survives
    assert b"line-0-" not in proc.stdout  # the head was truncated away


def test_log_driver_none_keeps_nothing_and_logs_fails_like_podman(images, podkit_env,
                                                                   tmp_path) -> None:
    out = start(images, podkit_env, tmp_path, "silent", "echo", "hello",
                flags="--log-driver none")
    run_cli("pod-runtime wait silent", podkit_env)
    assert not (tmp_path / "root/runtime/containers" / out["container"]["id"]
                / "ctr.log").exists()
    proc = run_cli("pod-runtime logs silent", podkit_env)
    assert proc.returncode == 2
    assert b"using the 'none' log driver, cannot read logs" in proc.stderr


def test_log_option_parsing() -> None:
    from podkit_common import errors
    from podkit_runtime._log_options import parse_log_options

    assert parse_log_options(None, ["max-size=1k"]).size_max == 1024
    assert parse_log_options("none").driver == "none"
    for bad in (["max-size"], ["max-size=0"], ["colour=blue"]):
        with pytest.raises(errors.UsageError):
            parse_log_options(None, bad)


def test_ps_filters_and_templates_on_real_containers(images, podkit_env, tmp_path) -> None:
    from podkit_image_pull import pull
    from podkit_netsetup import attach
    from podkit_runtime import BundleOptions, write_bundle
    from podkit_storage import create_container, import_image
    from tests.runtime.test_lifecycle import roots_of

    roots = roots_of(podkit_env)
    doc = import_image(pull(images.ref("busybox:latest"), root=roots.root, tls_verify=False),
                       roots)
    doc = create_container(doc, roots, name="web1")
    doc = attach(write_bundle(doc, roots, BundleOptions(command=("sleep", "1000"),
                                                        labels={"tier": "front"})), "none")
    loads(run_cli(f"pod-runtime run -d --input {save(doc, tmp_path, 'w1')}", podkit_env))
    start(images, podkit_env, tmp_path, "job1", "sh", "-c", "exit 3")
    start(images, podkit_env, tmp_path, "job2", "true")
    run_cli("pod-runtime wait job1 && pod-runtime wait job2", podkit_env)
    try:
        def names(flags: str, tool: str = "pod") -> list[str]:
            proc = run_cli(f"{tool} ps {flags} --format '{{{{.Names}}}}'", podkit_env)
            assert proc.returncode == 0, proc.stderr.decode()
            return sorted(proc.stdout.decode().split())

        assert names("-a") == ["job1", "job2", "web1"]
        assert names("") == ["web1"]
        assert names("--filter status=exited") == ["job1", "job2"]  # implies --all
        assert names("-a --filter exited=3") == ["job1"]
        assert names("-a --filter name=^job") == ["job1", "job2"]
        assert names("-a --filter name=job1 --filter name=web1") == ["job1", "web1"]
        assert names("-a --filter label=tier=front") == ["web1"]
        assert names("-a --filter label=tier=back") == []
        assert names("-a --filter ancestor=busybox") == ["job1", "job2", "web1"]
        assert names("-a --filter ancestor=alpine") == []
        assert names("-a --filter status=exited --filter exited=0", "pod-runtime") == ["job2"]
        proc = run_cli("pod ps -a --filter name=web1 --format 'table {{.ID}}\\t{{.Names}}'",
                       podkit_env)
        lines = proc.stdout.decode().splitlines()
        assert re.split(r"\s{2,}", lines[0]) == ["CONTAINER ID", "NAMES"]
        assert lines[1].split()[1] == "web1" and len(lines[1].split()[0]) == 12
        bad = run_cli("pod ps --filter colour=red", podkit_env)
        assert bad.returncode == 125  # podman's code for a bad option
    finally:
        run_cli("pod-runtime rm -f -t 0 web1; pod-runtime rm job1; pod-runtime rm job2",
                podkit_env)


def test_template_rendering_units() -> None:
    from podkit_runtime._ps_filter import render

    line = {"Id": "a" * 64, "Names": ["n1"], "Image": "busybox:latest", "Command": ["sh"],
            "Status": "Up", "State": "running", "ExitCode": 0}
    assert render([line], "{{.ID}} {{ .Names }} {{json .State}}") == f"{'a' * 12} n1 \"running\"\n"
    from podkit_common import errors

    with pytest.raises(errors.UsageError):
        render([line], "{{.Nope}}")
    with pytest.raises(errors.UsageError):
        render([line], "{{range .Names}}x{{end}}")


def test_top_and_stats_have_podmans_shape(images, podkit_env, tmp_path, podman) -> None:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    podman.run("run", "-d", "--network", "none", "--name", "pt", ref, "sh", "-c",
               "sleep 1000 & sleep 2000")
    start(images, podkit_env, tmp_path, "pt", "sh", "-c", "sleep 1000 & sleep 2000")
    try:
        theirs = podman.run("top", "pt").stdout.splitlines()
        ours = None
        for _ in range(100):  # until the shell has started both
            ours = run_cli("pod top pt", podkit_env).stdout.decode().splitlines()
            if len(ours) >= 3:
                break
        assert ours is not None
        assert re.split(r"\s+", ours[0].strip()) == re.split(r"\s+", theirs[0].strip())

        def pid_command(lines: list[str]) -> list[tuple[str, str, str]]:
            rows = [re.split(r"\s+", line.strip(), maxsplit=7) for line in lines[1:]]
            return sorted((r[0], r[2], r[7]) for r in rows)  # USER, PPID, COMMAND

        if len(theirs) == len(ours):
            assert pid_command(ours) == pid_command(theirs)
        their_stats = podman.run("stats", "--no-stream", "pt").stdout.splitlines()[0]
        our_stats = run_cli("pod stats --no-stream pt", podkit_env).stdout.decode()
        assert (re.split(r"\s{2,}", our_stats.splitlines()[0].strip())
                == re.split(r"\s{2,}", their_stats.strip()))
    finally:
        podman.run("rm", "-f", "-t", "0", "pt", check=False)
        run_cli("pod-runtime rm -f -t 0 pt", podkit_env)


def test_rename_both_halves(images, podkit_env, tmp_path) -> None:
    ref = images.ref("busybox:latest")
    proc = run_cli(f"pod run -d --tls-verify=false --name old1 {ref} sleep 1000", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    cid = proc.stdout.decode().strip()
    run_cli(f"pod run -d --tls-verify=false --name taken {ref} sleep 1000", podkit_env)
    try:
        assert run_cli("pod rename old1 new1", podkit_env).returncode == 0
        names = run_cli("pod ps --format '{{.ID}} {{.Names}}'", podkit_env).stdout.decode()
        assert f"{cid[:12]} new1" in names and "old1" not in names
        inspect = jsonio.loads(run_cli("pod inspect new1", podkit_env).stdout)
        assert inspect[0]["Id"] == cid
        from podkit_storage import load_container
        from tests.runtime.test_lifecycle import roots_of

        assert load_container(roots_of(podkit_env), "new1")["id"] == cid
        clash = run_cli("pod rename new1 taken", podkit_env)
        assert clash.returncode != 0 and b"already in use" in clash.stderr
        assert load_container(roots_of(podkit_env), "new1")["id"] == cid  # unchanged
        doc = loads(run_cli("pod-runtime rename new1 new2", podkit_env))
        SCHEMAS.validate(doc, "urn:podkit:runtime:rename")
        assert doc["renamed_from"] == "new1"
        # the old name is free again for a new container
        proc = run_cli(f"pod run --rm --tls-verify=false --name old1 {ref} true", podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
    finally:
        run_cli(f"pod rm -f -t 0 {cid}; pod rm -f -t 0 taken", podkit_env)
