"""Restart policies and --rm, carried out by conmon's exit command (no daemon), against
real conmon + runc + overlay through `pod run -d`; the policy logic and the kept exit
codes also in-process."""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest

from podkit_common import errors
from podkit_common.roots import Roots
from tests.runtime.test_lifecycle import (
    SCHEMAS,
    eventually,
    leftovers,
    loads,
    record_of,
    run_cli,
    runc_ids,
)

real = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


def _pod_run(images, env, *args: str, script: str) -> str:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run -d --tls-verify=false {' '.join(args)} {ref} sh -c "
                   f"{shlex.quote(script)}", env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def _inspect(env, ref: str) -> dict:
    [info] = loads(run_cli(f"pod inspect {ref}", env))
    SCHEMAS.validate(info, "urn:podkit:runtime:inspect")
    return info


def _settled(env, cid: str) -> dict | None:
    """The record once the last exit command decided not to restart (else None)."""
    record = record_of(env, cid)
    if record and str(record.get("restart_note", "")).startswith("not restarted"):
        return record
    return None


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if str(path) in line.split()[4]]


# -- the policy, in-process --------------------------------------------------------------

@pytest.mark.parametrize("text, parsed", [
    (None, {"name": "no", "max": 0}), ("no", {"name": "no", "max": 0}),
    ("on-failure", {"name": "on-failure", "max": 0}),
    ("on-failure:3", {"name": "on-failure", "max": 3}),
    ("always", {"name": "always", "max": 0}),
    ("unless-stopped", {"name": "unless-stopped", "max": 0})])
def test_restart_policies_parse_like_podman(text, parsed):
    from podkit_runtime._restart import parse_policy

    assert parse_policy(text) == parsed


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_bad_restart_policies_are_usage_errors(text):
    from podkit_runtime._restart import parse_policy

    with pytest.raises(errors.UsageError):
        parse_policy(text)


@pytest.mark.parametrize("policy, count, code, extra, expected", [
    ("no", 0, 1, {}, False),
    ("on-failure", 0, 0, {}, False),
    ("on-failure", 5, 1, {}, True),           # no maximum
    ("on-failure:2", 1, 1, {}, True),
    ("on-failure:2", 2, 1, {}, False),        # N restarts, then it stays exited
    ("always", 9, 0, {}, True),
    ("unless-stopped", 0, 137, {}, True),
    ("always", 0, 137, {"stopped_by_user": True}, False),
    ("unless-stopped", 0, 0, {"stopped_by_user": True}, False),
    ("no", 0, 137, {"restart_pending": True}, True),  # a healthcheck's restart action
])
def test_should_restart_follows_the_policy_and_the_user(policy, count, code, extra, expected):
    from podkit_runtime._restart import parse_policy, should_restart

    record = {"restart_policy": parse_policy(policy), "restart_count": count, **extra}
    assert should_restart(record, code) is expected


def test_rm_and_restart_conflict_like_podman():
    from podkit_runtime import CreateOptions
    from podkit_runtime._restart import record_fields

    with pytest.raises(errors.UsageError, match="conflicts"):
        record_fields(CreateOptions(remove=True, restart_policy="always"))
    assert record_fields(CreateOptions(remove=True))["restart_policy"]["name"] == "no"


def test_kept_exit_codes_are_found_by_id_prefix_and_name_and_pruned(tmp_path):
    from podkit_runtime import _exits

    roots = Roots(tmp_path / "root", tmp_path / "run")
    cid = "ab" * 32
    _exits.keep(roots, {"id": cid, "name": "gone", "exit_code": 3, "finished_at": None})
    assert _exits.lookup(roots, cid)["exit_code"] == 3
    assert _exits.lookup(roots, "gone")["id"] == cid
    assert _exits.lookup(roots, cid[:5])["id"] == cid
    assert _exits.lookup(roots, "other") is None
    path = _exits.exits_dir(roots) / f"{cid}.json"
    old = path.stat().st_mtime - _exits.KEEP_SECONDS - 1
    os.utime(path, (old, old))
    assert _exits.prune(roots) == 1 and _exits.lookup(roots, cid) is None


def test_a_failing_restart_records_the_error_and_stays_exited(tmp_path, monkeypatch):
    """The seam is the restart itself (new conmon + runc): the decision and the
    bookkeeping around it are what is under test here."""
    from podkit_runtime import _restart, _state

    roots = Roots(tmp_path / "root", tmp_path / "run")
    cid = "cd" * 32
    _state.save_record(roots, {"id": cid, "name": "broken", "exit_code": 1,
                               "restart_policy": _restart.parse_policy("always"),
                               "restart_count": 0})

    def fail(roots, record):
        raise errors.RuntimeFailure("runc create: no such file: config.json")

    monkeypatch.setattr(_restart, "_restart_now", fail)
    assert _restart.after_exit(roots, cid) is False
    record = _state.load_record(roots, cid)
    assert "config.json" in record["restart_error"] and record["restart_note"] == "restart failed"
    assert record["exit_code"] == 1 and record["restart_count"] == 0
    _restart.note_user_stop(roots, cid)
    assert _restart.will_restart(roots, cid) is False


# -- against conmon + runc -----------------------------------------------------------------

@pytest.mark.usefixtures("podkit_env")
class TestWithRuntime:
    pytestmark = real

    def test_on_failure_2_runs_three_times_then_stays_exited(self, images, podkit_env,
                                                              tmp_path):
        cid = _pod_run(images, podkit_env, "--name flaky", "--restart on-failure:2",
                       script="echo run; exit 1")
        record = eventually(lambda: _settled(podkit_env, cid), "the policy gave up", 60)
        assert record["restart_count"] == 2 and record["exit_code"] == 1
        info = _inspect(podkit_env, "flaky")
        assert info["RestartCount"] == 2 and info["State"]["Status"] == "exited"
        assert info["State"]["ExitCode"] == 1
        assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                       "MaximumRetryCount": 2}
        logs = run_cli("pod logs flaky", podkit_env)
        assert logs.stdout == b"run\nrun\nrun\n"
        assert run_cli("pod wait flaky", podkit_env).stdout == b"1\n"
        eventually(lambda: leftovers(tmp_path) == [], "conmon and pod cleanup are gone")
        assert run_cli("pod rm flaky", podkit_env).returncode == 0
        assert runc_ids(podkit_env) == [] and _mounts_under(tmp_path) == []

    def test_always_restarts_a_clean_exit_until_stop(self, images, podkit_env, tmp_path):
        cid = _pod_run(images, podkit_env, "--name again", "--restart always",
                       script="echo run; sleep 0.3")
        eventually(lambda: (record_of(podkit_env, cid) or {}).get("restart_count", 0) >= 2,
                   "two restarts", 60)
        stopped = run_cli("pod stop -t 2 again", podkit_env)
        assert stopped.returncode == 0, stopped.stderr.decode()
        record = eventually(lambda: _settled(podkit_env, cid), "the stop held", 60)
        assert record["stopped_by_user"] and record["exit_code"] is not None
        count = record["restart_count"]
        assert run_cli("pod logs again", podkit_env).stdout.count(b"run\n") >= count
        eventually(lambda: leftovers(tmp_path) == [], "conmon and pod cleanup are gone")
        info = _inspect(podkit_env, "again")
        assert info["State"]["Status"] == "exited" and info["RestartCount"] == count
        assert run_cli("pod ps --format json", podkit_env).stdout.strip() == b"[]"
        assert run_cli("pod rm again", podkit_env).returncode == 0
        assert runc_ids(podkit_env) == [] and _mounts_under(tmp_path) == []

    @pytest.mark.parametrize("how", ["stop", "kill"])
    def test_stop_or_kill_by_the_user_wins_over_always(self, images, podkit_env, tmp_path,
                                                       how):
        cid = _pod_run(images, podkit_env, "--name keep", "--restart always",
                       script="sleep 1000")
        cmd = "pod stop -t 0 keep" if how == "stop" else "pod kill keep"
        assert run_cli(cmd, podkit_env).returncode == 0
        record = eventually(lambda: _settled(podkit_env, cid), "the exit command decided", 60)
        assert record["restart_count"] == 0 and record["exit_code"] == 137
        assert record["restart_note"] == "not restarted: stopped by the user"
        eventually(lambda: leftovers(tmp_path) == [], "conmon and pod cleanup are gone")
        assert _inspect(podkit_env, "keep")["State"]["Status"] == "exited"
        assert run_cli("pod rm keep", podkit_env).returncode == 0

    @pytest.mark.parametrize("how, code", [("exit", 3), ("stop", 137), ("kill", 137),
                                           ("kill -9 of the container", 137)])
    def test_rm_removes_on_every_exit_path_and_wait_still_gets_the_code(
            self, images, podkit_env, tmp_path, how, code):
        script = "sleep 0.5; exit 3" if how == "exit" else "sleep 1000"
        cid = _pod_run(images, podkit_env, "--rm", "--name gone", script=script)
        if how == "stop":
            assert run_cli("pod stop -t 0 gone", podkit_env).returncode == 0
        elif how == "kill":
            assert run_cli("pod kill gone", podkit_env).returncode == 0
        elif how.startswith("kill -9"):
            pid = _inspect(podkit_env, cid)["State"]["Pid"]
            os.kill(pid, signal.SIGKILL)
        root = Path(podkit_env["PODKIT_ROOT"])
        eventually(lambda: not (root / "runtime" / "containers" / cid).exists()
                   and not (root / "containers" / cid).exists(), "pod cleanup --rm ran", 60)
        waited = run_cli("pod wait gone", podkit_env)
        assert (waited.returncode, waited.stdout) == (0, f"{code}\n".encode())
        assert run_cli(f"pod wait {cid[:12]}", podkit_env).stdout == f"{code}\n".encode()
        assert run_cli("pod ps -a --format json", podkit_env).stdout.strip() == b"[]"
        eventually(lambda: leftovers(tmp_path) == [], "conmon and pod cleanup are gone")
        assert runc_ids(podkit_env) == [] and _mounts_under(tmp_path) == []
        assert not Path(podkit_env["PODKIT_RUNROOT"], "bundles", cid).exists()

    def test_pod_runtime_run_restarts_through_its_own_cleanup(self, images, podkit_env,
                                                               tmp_path):
        """The stage alone (no pod): conmon's exit command is `pod-runtime cleanup`."""
        from tests.runtime.test_lifecycle import prepare, save

        doc = prepare(images, podkit_env, "stage", "sh", "-c", "echo run; exit 7")
        cid = doc["container"]["id"]
        ran = loads(run_cli(f"pod-runtime run -d --restart on-failure:1 < "
                            f"{save(doc, tmp_path)}", podkit_env))
        SCHEMAS.validate(ran, "urn:podkit:runtime:state")
        record = eventually(lambda: _settled(podkit_env, cid), "the policy gave up", 60)
        assert (record["restart_count"], record["exit_code"]) == (1, 7)
        info = loads(run_cli("pod-runtime inspect stage", podkit_env))
        assert info["RestartCount"] == 1 and info["State"]["ExitCode"] == 7
        assert run_cli("pod-runtime logs stage", podkit_env).stdout == b"run\nrun\n"
        bad = run_cli(f"pod-runtime create --rm --restart always < {save(doc, tmp_path)}",
                      podkit_env)
        assert bad.returncode == 2 and b"conflicts" in bad.stderr
        eventually(lambda: leftovers(tmp_path) == [], "conmon and cleanup are gone")
        assert loads(run_cli("pod-runtime rm stage", podkit_env))["removed"]


@pytest.mark.usefixtures("podkit_env")
def test_on_failure_counts_like_podman(images, podkit_env, podman, tmp_path):
    """podman's own exit command (`podman container cleanup`) restarts its container;
    both end exited with the same RestartCount, exit code and number of runs."""
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    podman.run("run", "-d", "--network", "none", "--name", "flaky", "--restart",
               "on-failure:2", ref, "sh", "-c", "echo run; exit 1")

    def podman_done():
        [info] = podman.json("inspect", "flaky")
        return (info["RestartCount"] == 2 and info["State"]["Status"] == "exited"
                and info)

    theirs = eventually(podman_done, "podman gave up", 60)
    their_logs = podman.run("logs", "flaky").stdout
    podman.run("rm", "-f", "flaky")

    cid = _pod_run(images, podkit_env, "--name flaky", "--restart on-failure:2",
                   script="echo run; exit 1")
    eventually(lambda: _settled(podkit_env, cid), "pod gave up", 60)
    ours = _inspect(podkit_env, "flaky")
    our_logs = run_cli("pod logs flaky", podkit_env).stdout.decode()
    assert run_cli("pod rm flaky", podkit_env).returncode == 0
    assert (ours["RestartCount"], ours["State"]["ExitCode"], our_logs) == (
        theirs["RestartCount"], theirs["State"]["ExitCode"], their_logs)
    assert ours["HostConfig"]["RestartPolicy"] == theirs["HostConfig"]["RestartPolicy"]
