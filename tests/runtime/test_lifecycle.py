"""The container lifecycle against real conmon + runc, from images in the test registry:
create, start, logs, stop, wait, rm, run attached and detached, and state that a second
process (and a killed conmon) cannot fool."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.roots import Roots, resolve_roots
from podkit_common.schemas import SchemaSet
from tests.testbed.env import unmount_all_under
from tests.testbed.procs import cmdline, eventually, is_alive
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_storage", "podkit_runtime", "podkit_netsetup"])
#: conmon's k8s-file line, as podman's bats test matches it
K8S_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d "
                      r"(stdout|stderr) ([FP]) (.*)$")
STUBBORN = "trap '' TERM; echo started; echo oops >&2; sleep 1000"


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def roots_of(env: dict[str, str]) -> Roots:
    return resolve_roots(env["PODKIT_ROOT"], env["PODKIT_RUNROOT"])


def prepare(images, env: dict[str, str], name: str, *command: str, ref: str | None = None
            ) -> dict:
    """pull | import | create | bundle | attach --network none, in-process."""
    from podkit_image_pull import pull
    from podkit_netsetup import attach
    from podkit_runtime import BundleOptions, write_bundle
    from podkit_storage import create_container, import_image

    roots = roots_of(env)
    doc = pull(ref or images.ref("busybox:latest"), root=roots.root, tls_verify=False)
    doc = import_image(doc, roots)
    doc = create_container(doc, roots, name=name)
    doc = write_bundle(doc, roots, BundleOptions(command=command))
    return attach(doc, "none")


def save(doc: dict, tmp_path: Path, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_bytes(jsonio.dumps(doc))
    return path


def run_cli(cmd: str, env: dict[str, str], **kw):
    return sh(cmd, env=env, timeout=120, **kw)


def loads(proc) -> dict:
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)


def ps_lines(env: dict[str, str], *flags: str) -> list[dict]:
    proc = run_cli("pod-runtime ps " + " ".join(flags), env)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [jsonio.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    for line in lines:
        SCHEMAS.validate(line, "urn:podkit:runtime:ps-line")
    return lines


def _live_mentions(tmp_path: Path) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        argv = cmdline(int(entry))
        if argv and str(tmp_path) in " ".join(argv) and is_alive(int(entry)):
            found.append(f"{entry}: {' '.join(argv)[:200]}")
    return found


def leftovers(tmp_path: Path, settle: float = 15.0) -> list[str]:
    """Live processes whose command line mentions this test's directory (conmon, runc,
    an exit command), once they had ``settle`` seconds to end: like podman's, an attached
    run returns at the container's exit while conmon's exit command may still be
    finishing; what must never happen is that they stay."""
    deadline = time.monotonic() + settle
    while True:
        found = _live_mentions(tmp_path)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def runc_ids(env: dict[str, str]) -> list[str]:
    state = Path(env["PODKIT_RUNROOT"]) / "runc"
    return sorted(p.name for p in state.iterdir()) if state.is_dir() else []


def record_of(env: dict[str, str], cid: str) -> dict | None:
    path = Path(env["PODKIT_ROOT"], "runtime", "containers", cid, "record.json")
    try:
        return jsonio.loads(path.read_bytes())
    except (FileNotFoundError, errors.InvalidDocument):
        return None


def test_create_start_logs_stop_wait_rm_through_the_cli(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "life", "sh", "-c", STUBBORN)
    cid = doc["container"]["id"]
    created = loads(run_cli(f"pod-runtime create < {save(doc, tmp_path)}", podkit_env))
    SCHEMAS.validate(created, "urn:podkit:runtime:state")
    assert created["state"]["status"] == "created" and created["state"]["pid"] > 0
    assert ps_lines(podkit_env) == []  # ps shows running containers only
    [line] = ps_lines(podkit_env, "--all")
    assert (line["Id"], line["Names"], line["State"], line["Status"]) == (
        cid, ["life"], "created", "Created")

    started = loads(run_cli("pod-runtime start life", podkit_env))
    assert started["state"]["status"] == "running"
    [line] = ps_lines(podkit_env)
    assert line["State"] == "running" and line["Status"].startswith("Up ")
    assert is_alive(line["Pid"])

    log = Path(roots_of(podkit_env).root, "runtime", "containers", cid, "ctr.log")
    eventually(lambda: log.exists() and b"oops" in log.read_bytes(), "output in the log")
    parsed = [K8S_LINE.match(x) for x in log.read_text().splitlines()]
    assert all(parsed), log.read_text()
    assert {(m.group(1), m.group(2), m.group(3)) for m in parsed} == {
        ("stdout", "F", "started"), ("stderr", "F", "oops")}
    logs = run_cli("pod-runtime logs life", podkit_env)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"started\n", b"oops\n")

    stopped = run_cli("pod-runtime stop --time 1 life", podkit_env)
    assert stopped.returncode == 0, stopped.stderr.decode()
    assert (b"StopSignal SIGTERM failed to stop container life in 1 seconds, "
            b"resorting to SIGKILL") in stopped.stderr
    assert jsonio.loads(stopped.stdout)["state"]["exit_code"] == 137

    waited = loads(run_cli("pod-runtime wait life", podkit_env))
    SCHEMAS.validate(waited, "urn:podkit:runtime:state")
    assert waited["state"]["status"] == "exited" and waited["state"]["exit_code"] == 137
    info = loads(run_cli(f"pod-runtime inspect {cid[:12]}", podkit_env))
    SCHEMAS.validate(info, "urn:podkit:runtime:inspect")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert info["State"]["Running"] is False and info["State"]["Pid"] == 0
    assert info["State"]["FinishedAt"] >= info["State"]["StartedAt"] > info["Created"]
    assert info["Name"] == "life" and info["Config"]["Cmd"] == ["sh", "-c", STUBBORN]
    assert runc_ids(podkit_env) == []  # the exit command ran runc delete

    removed = loads(run_cli("pod-runtime rm life", podkit_env))
    SCHEMAS.validate(removed, "urn:podkit:runtime:removal")
    assert ps_lines(podkit_env, "--all") == []
    assert not Path(doc["bundle"]["path"]).exists()
    assert not log.parent.exists()
    assert leftovers(tmp_path) == []


def test_run_attached_copies_output_in_order_and_returns_the_exit_code(images, podkit_env,
                                                                      tmp_path):
    doc = prepare(images, podkit_env, "counter", "sh", "-c", "seq 1 5000; exit 7")
    proc = run_cli(f"pod-runtime run < {save(doc, tmp_path)}", podkit_env)
    assert proc.returncode == 7, proc.stderr.decode()[-2000:]
    assert proc.stderr == "".join(f"{i}\n" for i in range(1, 5001)).encode()
    final = jsonio.loads(proc.stdout)
    SCHEMAS.validate(final, "urn:podkit:runtime:state")
    assert final["state"]["status"] == "exited" and final["state"]["exit_code"] == 7
    # The container stays, exited, until it is removed (podman run without --rm).
    [line] = ps_lines(podkit_env, "-a")
    assert line["State"] == "exited" and line["ExitCode"] == 7
    assert runc_ids(podkit_env) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("interactive", [True, False])
def test_stdin_reaches_the_container_only_with_interactive(images, podkit_env, tmp_path,
                                                          interactive):
    doc = prepare(images, podkit_env, "reader", "sh", "-c", "cat; echo done")
    flag = "-i " if interactive else ""
    proc = run_cli(f"pod-runtime run {flag}--input {save(doc, tmp_path)}", podkit_env,
                   input=b"hello\nworld\n")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == (b"hello\nworld\ndone\n" if interactive else b"done\n")


@pytest.mark.parametrize(("command", "code"), [("/no/such/command", 127), ("/etc", 126)])
def test_commands_that_cannot_run_give_podmans_codes(images, podkit_env, tmp_path, command,
                                                     code):
    doc = prepare(images, podkit_env, "broken", command)
    proc = run_cli(f"pod-runtime run < {save(doc, tmp_path)}", podkit_env)
    assert proc.returncode == code, proc.stderr.decode()
    assert proc.stdout == b""
    err = jsonio.loads(proc.stderr.splitlines()[-1])["error"]
    assert err["type"] == "ContainerCannotStart"
    assert ps_lines(podkit_env, "-a") == []  # nothing recorded
    assert runc_ids(podkit_env) == []
    eventually(lambda: leftovers(tmp_path) == [], "conmon gone after a failed create")


def test_a_second_process_sees_a_detached_container_and_a_killed_conmon(images, podkit_env,
                                                                       tmp_path):
    doc = prepare(images, podkit_env, "bg", "sleep", "1000")
    cid = doc["container"]["id"]
    out = loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    assert out["state"]["status"] == "running"
    [line] = ps_lines(podkit_env)  # a new process, no daemon: the state is on disk
    assert line["Id"] == cid and line["State"] == "running"
    info = loads(run_cli("pod-runtime inspect bg", podkit_env))
    conmon_pid, pid = info["State"]["ConmonPid"], info["State"]["Pid"]
    assert "conmon" in cmdline(conmon_pid)[0] and is_alive(pid)

    os.kill(conmon_pid, signal.SIGKILL)
    eventually(lambda: not is_alive(conmon_pid), "conmon dies")
    [line] = ps_lines(podkit_env, "-a")
    assert line["State"] == "exited" and line["ExitCode"] == 137  # we killed the orphan
    assert not is_alive(pid) and runc_ids(podkit_env) == []
    info = loads(run_cli("pod-runtime inspect bg", podkit_env))
    assert "conmon was gone" in info["State"]["Error"]
    assert loads(run_cli("pod-runtime rm bg", podkit_env))["removed"] is True
    assert leftovers(tmp_path) == []


def test_the_exit_command_records_the_exit_without_anyone_waiting(images, podkit_env,
                                                                  tmp_path):
    doc = prepare(images, podkit_env, "quick", "sh", "-c", "exit 5")
    cid = doc["container"]["id"]
    loads(run_cli(f"pod-runtime run --detach < {save(doc, tmp_path)}", podkit_env))
    # Read the record file itself: no pod-runtime command reconciles anything here.
    record = eventually(lambda: (r := record_of(podkit_env, cid)) and
                        r.get("exit_code") is not None and r, "exit code recorded")
    assert record["exit_code"] == 5 and record["finished_at"]
    assert not Path(podkit_env["PODKIT_RUNROOT"], "runtime", "exits", cid).exists()
    assert runc_ids(podkit_env) == []
    eventually(lambda: leftovers(tmp_path) == [], "conmon and its exit command are gone")


def test_detached_rm_removes_itself_when_it_exits(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "gone", "true")
    cid = doc["container"]["id"]
    loads(run_cli(f"pod-runtime run -d --rm < {save(doc, tmp_path)}", podkit_env))
    eventually(lambda: not Path(podkit_env["PODKIT_ROOT"], "runtime", "containers",
                                cid).exists(), "the exit command removes the container")
    assert ps_lines(podkit_env, "-a") == [] and runc_ids(podkit_env) == []
    assert not Path(doc["bundle"]["path"]).exists()


def test_rm_refuses_a_running_container_and_force_stops_it(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "busy", "sh", "-c", STUBBORN)
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    refused = run_cli("pod-runtime rm busy", podkit_env)
    assert refused.returncode == errors.Conflict.exit_code
    assert b"cannot remove container" in refused.stderr and b"running" in refused.stderr
    assert ps_lines(podkit_env)[0]["State"] == "running"
    forced = loads(run_cli("pod-runtime rm --force --time 0 busy", podkit_env))
    assert forced["removed"] is True
    assert ps_lines(podkit_env, "-a") == [] and runc_ids(podkit_env) == []
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("sig", "code"), [("USR1", 42), ("9", 137)])
def test_kill_sends_the_signal(images, podkit_env, tmp_path, sig, code):
    # pid 1 ignores signals it has no handler for, except SIGKILL: hence the trap.
    doc = prepare(images, podkit_env, "target", "sh", "-c",
                  "trap 'exit 42' USR1; echo ready; while :; do sleep 0.1; done")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    eventually(lambda: run_cli("pod-runtime logs target", podkit_env).stdout == b"ready\n",
               "the trap is set")
    loads(run_cli(f"pod-runtime kill --signal {sig} target", podkit_env))
    waited = loads(run_cli("pod-runtime wait target", podkit_env))
    assert waited["state"]["exit_code"] == code
    refused = run_cli("pod-runtime kill target", podkit_env)
    assert refused.returncode == errors.Conflict.exit_code
    assert b"container state improper" in refused.stderr


def test_pod_run_detached_then_ps_logs_stop_wait_inspect_rm(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    script = "trap '' TERM; echo hi from web; sleep 1000"
    proc = run_cli(f"pod run -d --name web --tls-verify=false {ref} sh -c "
                   f"{shlex.quote(script)}", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    cid = proc.stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    listed = loads(run_cli("pod ps --format json", podkit_env))  # podman's JSON array
    assert [(x["Id"], x["State"]) for x in listed] == [(cid, "running")]
    eventually(lambda: run_cli("pod logs web", podkit_env).stdout == b"hi from web\n",
               "pod logs shows the output")
    stopped = run_cli("pod stop -t 1 web", podkit_env)
    assert stopped.returncode == 0 and stopped.stdout == b"web\n"
    assert b"resorting to SIGKILL" in stopped.stderr
    assert run_cli("pod wait web", podkit_env).stdout == b"137\n"
    [info] = loads(run_cli("pod inspect web", podkit_env))
    assert info["Id"] == cid and info["State"]["ExitCode"] == 137
    table = run_cli("pod ps -a", podkit_env).stdout.decode()
    assert "Exited (137)" in table and "web" in table
    assert run_cli("pod rm web", podkit_env).stdout == b"web\n"  # podman echoes the name
    assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
    storage = run_cli("pod-storage containers", podkit_env)
    assert storage.returncode == 0 and storage.stdout.strip() == b""
    assert leftovers(tmp_path) == [] and runc_ids(podkit_env) == []


def test_pod_run_rm_detached_leaves_nothing(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run -d --rm --tls-verify=false {ref} true", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    cid = proc.stdout.decode().strip()
    root = Path(podkit_env["PODKIT_ROOT"])
    eventually(lambda: not (root / "runtime" / "containers" / cid).exists()
               and not (root / "containers" / cid).exists(), "pod cleanup --rm ran")
    assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
    eventually(lambda: leftovers(tmp_path) == [], "conmon and pod cleanup are gone")


def test_conmon_argv_follows_podman(tmp_path):
    from podkit_runtime._conmon import ConmonOptions, conmon_argv
    from podkit_runtime._state import ContainerPaths

    roots = Roots(tmp_path / "root", tmp_path / "run")
    paths = ContainerPaths(roots, "a" * 64)
    argv = conmon_argv("/usr/bin/conmon", "/usr/sbin/runc", paths,
                       ConmonOptions(name="web", stdin=True), "/venv/bin/pod-runtime")
    text = " ".join(argv)
    assert argv[:9] == ["/usr/bin/conmon", "--api-version", "1", "-c", "a" * 64, "-u",
                        "a" * 64, "-r", "/usr/sbin/runc"]
    assert f"-b {paths.bundle} -p {paths.pidfile} -n web --exit-dir {paths.exit_dir} " \
           "--full-attach" in text
    assert f"-l k8s-file:{paths.log} --log-level warning" in text
    assert f"--runtime-arg --root --runtime-arg {paths.runc_root}" in text
    assert f"--runtime-arg --log-format=json --runtime-arg --log --runtime-arg={paths.oci_log}" \
        in text
    assert " -i " in text and " -t " not in text
    assert f"--conmon-pidfile {paths.conmon_pidfile}" in text
    assert text.endswith(f"--exit-command /venv/bin/pod-runtime --exit-command-arg --root "
                         f"--exit-command-arg {roots.root} --exit-command-arg --runroot "
                         f"--exit-command-arg {roots.runroot} --exit-command-arg cleanup "
                         f"--exit-command-arg {'a' * 64}")


def test_a_record_whose_conmon_is_gone_is_never_running(tmp_path):
    import subprocess

    from podkit_runtime._state import observe

    dead = subprocess.Popen(["true"])
    dead.wait()
    roots = Roots(tmp_path / "root", tmp_path / "run")
    record = {"id": "b" * 64, "name": "x", "started_at": "2024-01-01T00:00:00Z",
              "exit_code": None, "conmon_pid": dead.pid, "conmon_start": 1, "pid": 4242}
    seen = observe(roots, record)
    assert seen.status == "exited" and seen.orphaned
    exits = tmp_path / "run" / "runtime" / "exits"
    exits.mkdir(parents=True)
    (exits / ("b" * 64)).write_text("3")
    seen = observe(roots, record)
    assert (seen.status, seen.exit_code, seen.orphaned, seen.needs_cleanup) == (
        "exited", 3, False, True)
    alive = {**record, "conmon_pid": os.getpid(), "conmon_start": None}
    (exits / ("b" * 64)).unlink()
    assert observe(roots, alive).status == "running"
    assert observe(roots, {**alive, "started_at": None}).status == "created"


def test_pod_run_rm_attached_returns_the_code_and_leaves_nothing(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run --rm --tls-verify=false {ref} sh -c 'echo out; echo err >&2; "
                   "exit 4'", podkit_env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, b"out\n", b"err\n")
    root = Path(podkit_env["PODKIT_ROOT"])
    assert list((root / "runtime" / "containers").iterdir()) == []
    assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
    assert runc_ids(podkit_env) == [] and leftovers(tmp_path) == []
    assert list(Path(podkit_env["PODKIT_RUNROOT"], "bundles").iterdir()) == []


def test_pod_rm_refuses_a_running_container_without_force(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    cid = run_cli(f"pod run -d --name keep --tls-verify=false {ref} sleep 1000",
                  podkit_env).stdout.decode().strip()
    refused = run_cli("pod rm keep", podkit_env)
    assert refused.returncode == 2  # podman rm: 2 for a running container without --force
    assert b"cannot remove container" in refused.stderr
    assert run_cli("pod rm -f keep", podkit_env).stdout == b"keep\n"  # podman echoes it
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
    assert leftovers(tmp_path) == [] and runc_ids(podkit_env) == []


def test_only_the_fds_we_mean_reach_conmon_and_the_container(images, podkit_env, tmp_path):
    """cf. CVE-2024-21626: an inheritable fd of ours must not leak into conmon or runc."""
    from podkit_runtime._lifecycle import create, remove

    secret = tmp_path / "secret-sentinel"
    secret.write_text("do not leak")
    fd = os.open(secret, os.O_RDONLY)
    os.set_inheritable(fd, True)
    roots = roots_of(podkit_env)
    try:
        made = create(prepare(images, podkit_env, "fds", "sleep", "1000"), roots)
    finally:
        os.close(fd)
    try:
        info = jsonio.loads(run_cli("pod-runtime inspect fds", podkit_env).stdout)
        for pid in (info["State"]["ConmonPid"], made["state"]["pid"]):
            links = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
            assert links and str(secret) not in links, (pid, links)
        sock = Path(made["bundle"]["path"], "attach")
        assert sock.is_socket() and (sock.stat().st_mode & 0o077) == 0  # 0700 by conmon
    finally:
        remove(roots, "fds", force=True, timeout=0)
    assert leftovers(tmp_path) == []


def test_a_runroot_wiped_by_a_reboot_leaves_exited_containers(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "rebooted", "sleep", "1000")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    info = loads(run_cli("pod-runtime inspect rebooted", podkit_env))
    # A reboot, as far as podkit can tell: conmon and the container gone, runroot empty.
    for pid in (info["State"]["ConmonPid"], info["State"]["Pid"]):
        os.kill(pid, signal.SIGKILL)
        eventually(lambda pid=pid: not is_alive(pid), f"pid {pid} dies")
    runroot = Path(podkit_env["PODKIT_RUNROOT"])
    config = jsonio.loads((runroot / "bundles" / info["Id"] / "config.json").read_bytes())
    assert unmount_all_under(runroot / "bundles") == []  # a bundle's shm, say
    for sub in ("runtime", "runc", "bundles"):
        shutil.rmtree(runroot / sub)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():  # a reboot empties these too
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / config["linux"]["cgroupsPath"].strip("/"))
    [line] = ps_lines(podkit_env, "-a")
    assert line["State"] == "exited" and line["ExitCode"] == -1  # podman's "unknown"
    assert loads(run_cli("pod-runtime wait rebooted", podkit_env))["state"]["exit_code"] == -1
    assert loads(run_cli("pod-runtime rm rebooted", podkit_env))["removed"] is True
    assert ps_lines(podkit_env, "-a") == []


def test_logs_of_a_chatty_container_read_back_exactly(images, podkit_env, tmp_path):
    script = r"seq 1 100000; printf 'bin\001\377\000end'"
    doc = prepare(images, podkit_env, "chatty", "sh", "-c", script)
    proc = run_cli(f"pod-runtime run < {save(doc, tmp_path)}", podkit_env)
    assert proc.returncode == 0
    expected = "".join(f"{i}\n" for i in range(1, 100001)).encode() + b"bin\x01\xff\x00end"
    assert proc.stderr == expected  # attached
    logs = run_cli("pod-runtime logs chatty", podkit_env)
    assert logs.returncode == 0 and logs.stdout == expected  # from the k8s-file log
    tail = run_cli("pod-runtime logs --tail 3 chatty", podkit_env)
    assert tail.stdout == b"99999\n100000\nbin\x01\xff\x00end"
    stamped = run_cli("pod-runtime logs --timestamps --tail 1 chatty", podkit_env).stdout
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) "
                        rb"bin\x01\xff\x00end", stamped)


def test_logs_follow_streams_until_the_container_exits(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "ticker", "sh", "-c",
                  "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    followed = run_cli("pod-runtime logs --follow ticker", podkit_env)
    assert followed.returncode == 0
    assert followed.stdout == b"".join(f"tick {i}\n".encode() for i in range(1, 6))
    assert loads(run_cli("pod-runtime wait ticker", podkit_env))["state"]["exit_code"] == 0


def test_a_burst_of_containers_is_created_and_removed_without_a_trace(images, podkit_env,
                                                                     tmp_path):
    """20 here (the issue's 100 belongs to the benchmark run): each created and started
    detached through the library, all removed by `pod-runtime rm --force`."""
    from podkit_runtime import run_container

    roots = roots_of(podkit_env)
    ids = []
    for i in range(20):
        made = run_container(prepare(images, podkit_env, f"burst{i}", "sleep", "1000"),
                             roots, detach=True)
        ids.append(made["container"]["id"])
    lines = ps_lines(podkit_env)
    assert sorted(x["Id"] for x in lines) == sorted(ids)
    assert {x["State"] for x in lines} == {"running"}
    for cid in ids:
        assert loads(run_cli(f"pod-runtime rm -f -t 0 {cid[:12]}", podkit_env))["removed"]
    assert ps_lines(podkit_env, "-a") == [] and runc_ids(podkit_env) == []
    assert list(Path(podkit_env["PODKIT_RUNROOT"], "bundles").iterdir()) == []
    assert list((roots.root / "runtime" / "containers").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_stop_uses_the_images_stop_signal(images, registry, podkit_env, tmp_path):
    from tests.testbed import layers
    from tests.testbed.images import build_image
    from tests.testbed.push import push

    image = build_image([layers.base_layer_tar()], config={
        "StopSignal": "SIGUSR1", "Env": ["PATH=/usr/bin:/bin"]})
    push(registry.url, "lifecycle-stopsignal", "latest", image)
    doc = prepare(images, podkit_env, "polite", "/bin/sh", "-c",
                  "trap 'echo bye; exit 42' USR1; echo ready; while :; do sleep 0.1; done",
                  ref=f"docker://{registry.url}/lifecycle-stopsignal:latest")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    info = loads(run_cli("pod-runtime inspect polite", podkit_env))
    assert info["Config"]["StopSignal"] == "SIGUSR1"
    eventually(lambda: run_cli("pod-runtime logs polite", podkit_env).stdout == b"ready\n",
               "the trap is set")
    stopped = run_cli("pod-runtime stop polite", podkit_env)
    assert stopped.returncode == 0 and b"resorting to SIGKILL" not in stopped.stderr
    assert jsonio.loads(stopped.stdout)["state"]["exit_code"] == 42
    assert run_cli("pod-runtime logs --tail 1 polite", podkit_env).stdout == b"bye\n"


def test_pause_freezes_and_unpause_thaws(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "frozen", "sh", "-c",
                  "while :; do echo tick; sleep 0.05; done")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    log = Path(podkit_env["PODKIT_ROOT"], "runtime", "containers", doc["container"]["id"],
               "ctr.log")
    eventually(lambda: log.exists() and log.stat().st_size > 0, "ticks in the log")
    paused = loads(run_cli("pod-runtime pause frozen", podkit_env))
    assert paused["state"]["status"] == "paused"
    assert ps_lines(podkit_env, "-a")[0]["State"] == "paused"
    info = loads(run_cli("pod-runtime inspect frozen", podkit_env))
    assert info["State"]["Paused"] is True and info["State"]["Running"] is False
    time.sleep(0.2)  # let conmon write what was read before the freeze
    size = log.stat().st_size
    time.sleep(0.5)  # a frozen loop writes nothing, however long we look
    assert log.stat().st_size == size
    again = run_cli("pod-runtime pause frozen", podkit_env)
    assert again.returncode == errors.Conflict.exit_code
    assert loads(run_cli("pod-runtime unpause frozen", podkit_env))["state"]["status"] == \
        "running"
    eventually(lambda: log.stat().st_size > size, "ticks again after unpause")
    loads(run_cli("pod-runtime pause frozen", podkit_env))
    # stop thaws what it signals: a paused container still stops, with SIGKILL's code.
    stopped = loads(run_cli("pod-runtime stop -t 0 frozen", podkit_env))
    assert stopped["state"]["exit_code"] == 137


def test_attach_feeds_stdin_and_returns_the_exit_code_or_detaches(images, podkit_env,
                                                                 tmp_path):
    scripts = {"att1": 'while read l; do echo "got $l"; done; echo eof; exit 3',
               "att2": 'read l; echo "got $l"; sleep 1000'}
    for name, script in scripts.items():
        doc = prepare(images, podkit_env, name, "sh", "-c", script)
        loads(run_cli(f"pod-runtime create -i < {save(doc, tmp_path, name)}", podkit_env))
        loads(run_cli(f"pod-runtime start {name}", podkit_env))
    ended = run_cli("pod-runtime attach att1", podkit_env, input=b"one\ntwo\n")
    assert ended.returncode == 3, ended.stderr.decode()
    assert ended.stderr == b"got one\ngot two\neof\n"  # our EOF closed its stdin
    doc = jsonio.loads(ended.stdout)
    SCHEMAS.validate(doc, "urn:podkit:runtime:state")
    assert doc["detached"] is False and doc["state"]["exit_code"] == 3
    # ctrl-p ctrl-q detaches and leaves the container running (conmon closes its stdin,
    # as it does for podman 4.3.1, which does not pass --leave-stdin-open).
    left = run_cli("pod-runtime attach att2", podkit_env, input=b"x\n\x10\x11more\n")
    assert left.returncode == 0 and jsonio.loads(left.stdout)["detached"] is True
    eventually(lambda: run_cli("pod-runtime logs att2", podkit_env).stdout == b"got x\n",
               "the line before the detach keys arrives")
    assert {x["Names"][0]: x["State"] for x in ps_lines(podkit_env, "-a")} == {
        "att1": "exited", "att2": "running"}
    custom = run_cli("pod-runtime attach --detach-keys ctrl-a,x att2", podkit_env,
                     input=b"\x01x")
    assert custom.returncode == 0 and jsonio.loads(custom.stdout)["detached"] is True
    assert ps_lines(podkit_env)[0]["Names"] == ["att2"]
    refused = run_cli("pod-runtime attach att1", podkit_env)
    assert refused.returncode == errors.Conflict.exit_code


def test_detach_keys_parse_like_podman():
    from podkit_runtime._attach import DetachScanner, parse_detach_keys

    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-_") == b"\x01x\x00\x1f"
    assert parse_detach_keys("") == b""
    with pytest.raises(errors.UsageError):
        parse_detach_keys("ctrl-1")
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"ab\x10") == (b"ab", False)
    assert scanner.feed(b"\x10") == (b"\x10", False)  # not the sequence after all
    assert scanner.feed(b"\x11tail") == (b"", True)


def test_the_container_lock_is_reentrant_within_a_process(tmp_path):
    from podkit_runtime._state import lock

    roots = Roots(tmp_path / "root", tmp_path / "run")
    with lock(roots, "c" * 64, timeout=1.0):
        with lock(roots, "c" * 64, timeout=1.0):  # would time out with a plain flock
            pass
        with lock(roots, "d" * 64, timeout=1.0):
            pass


def test_stop_of_an_rm_container_that_removes_itself(images, podkit_env, tmp_path):
    doc = prepare(images, podkit_env, "ephemeral", "sleep", "1000")
    loads(run_cli(f"pod-runtime run -d --rm < {save(doc, tmp_path)}", podkit_env))
    stopped = run_cli("pod-runtime stop -t 0 ephemeral", podkit_env)
    assert stopped.returncode == 0, stopped.stderr.decode()
    assert jsonio.loads(stopped.stdout)["state"]["status"] == "exited"
    eventually(lambda: ps_lines(podkit_env, "-a") == [], "the --rm exit command removes it")
    assert runc_ids(podkit_env) == [] and leftovers(tmp_path) == []


def test_exec_runs_in_the_container_with_env_workdir_user_and_stdin(images, podkit_env,
                                                                   tmp_path):
    doc = prepare(images, podkit_env, "host", "sleep", "1000")
    loads(run_cli(f"pod-runtime run -d < {save(doc, tmp_path)}", podkit_env))
    script = 'echo "$FOO $(pwd) $(id -u):$(id -g) $(cat /etc/hostname)"; cat; exit 6'
    proc = run_cli(f"pod-runtime exec -i -e FOO=bar -w /tmp -u 1000:1000 host sh -c "
                   f"{shlex.quote(script)}", podkit_env, input=b"piped in\n")
    assert proc.returncode == 6, proc.stderr.decode()
    hostname = doc["container"]["id"][:12]
    assert proc.stderr == f"bar /tmp 1000:1000 {hostname}\npiped in\n".encode()
    SCHEMAS.validate(jsonio.loads(proc.stdout), "urn:podkit:runtime:exec")
    made = jsonio.loads(proc.stdout)["exec"]
    assert made["exit_code"] == 6 and made["pid"] > 0
    # The session is gone, the container untouched and still running.
    assert not Path(doc["bundle"]["path"], made["id"]).exists()
    assert ps_lines(podkit_env)[0]["State"] == "running"
    missing = run_cli("pod-runtime exec host /no/such/thing", podkit_env)
    assert missing.returncode == 127, missing.stderr.decode()
    assert run_cli("pod-runtime exec host /etc", podkit_env).returncode == 126
    via_pod = run_cli("pod exec host sh -c 'echo via pod; exit 2'", podkit_env)
    assert (via_pod.returncode, via_pod.stdout) == (2, b"via pod\n")
    detached = loads(run_cli("pod-runtime exec -d host sh -c 'echo hi > /tmp/marker'",
                             podkit_env))
    assert detached["exec"]["exit_code"] is None
    eventually(lambda: run_cli("pod-runtime exec host cat /tmp/marker",
                               podkit_env).stderr == b"hi\n", "the detached exec ran")
    loads(run_cli("pod-runtime rm -f -t 0 host", podkit_env))
    refused = run_cli("pod-runtime exec host true", podkit_env)
    assert refused.returncode == errors.NotFound.exit_code
    assert leftovers(tmp_path) == []


@pytest.fixture
def network_env(podkit_env, tmp_path):
    """pod-netsetup's own test fixture (tests/netsetup/conftest.py): the host-wide subnet
    registry in a test dir, and the bridges, leases and ip_forward put back afterwards."""
    from tests.netsetup import conftest as net

    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(net.restore_ip_forward.__wrapped__)())
        yield stack.enter_context(
            contextlib.contextmanager(net.net_env.__wrapped__)(podkit_env, tmp_path))


@pytest.mark.netns
def test_a_detached_container_on_a_network_releases_it_when_it_exits(images, network_env,
                                                                     tmp_path):
    podkit_env = network_env
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run -d --network podkit --name netted --tls-verify=false {ref} "
                   "sleep 1000", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    [info] = loads(run_cli("pod inspect netted", podkit_env))
    settings = info["NetworkSettings"]
    netns = settings["SandboxKey"]
    assert netns and Path(netns).exists()
    # podman's shape: on the default network alone, the top-level fields are its own
    mine = settings["Networks"]["podkit"]
    assert mine["IPAddress"] and mine["IPAddress"] == settings["IPAddress"]
    assert mine["IPPrefixLen"] == settings["IPPrefixLen"] > 0
    assert mine["Gateway"] == settings["Gateway"] and mine["MacAddress"]
    assert mine["NetworkID"] == "podkit" and mine["Aliases"] == [info["Id"][:12]]
    stopped = run_cli("pod stop -t 0 netted", podkit_env)
    assert stopped.returncode == 0, stopped.stderr.decode()
    # conmon's exit command (`pod cleanup`) tears the network down, as podman's does.
    eventually(lambda: not Path(netns).exists(), "the namespace is released")
    [info] = loads(run_cli("pod inspect netted", podkit_env))
    assert info["NetworkSettings"]["SandboxKey"] == info["NetworkSettings"]["IPAddress"] == ""
    assert info["NetworkSettings"]["Networks"] == {
        "podkit": {"NetworkID": "podkit", "Aliases": [info["Id"][:12]]}}
    assert run_cli("pod rm netted", podkit_env).returncode == 0
    assert leftovers(tmp_path) == []


def test_conmon_gets_podmans_environment_and_podkits_settings_only():
    from podkit_runtime._conmon import conmon_env

    env = conmon_env({"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "PODKIT_ROOT": "/r",
                      "PODKIT_NET_STATE_DIR": "/n", "AWS_SECRET_ACCESS_KEY": "x",
                      "XDG_RUNTIME_DIR": "/run/user/0", "LD_PRELOAD": "/evil.so"})
    assert env == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "PODKIT_ROOT": "/r",
                   "PODKIT_NET_STATE_DIR": "/n", "XDG_RUNTIME_DIR": "/run/user/0"}
