"""Healthchecks without systemd: `healthcheck run` through exec, the per-container timer
process, State.Health in inspect, "(healthy)" in ps, --health-on-failure; against real
conmon + runc through `pod run -d`, and the bookkeeping in-process."""

from __future__ import annotations

import shlex

import pytest

from podkit_common import errors, jsonio
from tests.runtime.test_lifecycle import (
    SCHEMAS,
    eventually,
    leftovers,
    loads,
    record_of,
    run_cli,
    runc_ids,
)
from tests.testbed.procs import is_alive

real = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


# -- in-process ------------------------------------------------------------------------

@pytest.mark.parametrize("cmd, test", [
    ("test -e /tmp/ok", ["CMD-SHELL", "test -e /tmp/ok"]),
    ('["CMD", "true"]', ["CMD", "true"]),
    ('["CMD-SHELL", "exit 0"]', ["CMD-SHELL", "exit 0"]),
    ('["ls", "/"]', ["CMD", "ls", "/"]),
    ("none", None), ('["NONE"]', None)])
def test_health_cmd_parses_like_podman(cmd, test):
    from podkit_runtime._health import parse_test

    assert parse_test(cmd) == test


@pytest.mark.parametrize("text, seconds", [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5),
                                           ("2", 2.0), ("1h", 3600.0)])
def test_durations_parse_like_go(text, seconds):
    from podkit_runtime._health import parse_duration

    assert parse_duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize("kwargs", [{"interval": "0.5s"}, {"timeout": "0s"},
                                    {"retries": 0}, {"on_failure": "explode"},
                                    {"interval": "soon"}])
def test_bad_healthcheck_options_are_usage_errors(kwargs):
    from podkit_runtime._health import health_config

    with pytest.raises(errors.UsageError):
        health_config("true", **kwargs)


def test_defaults_and_disable_follow_podman():
    from podkit_runtime._health import health_config

    hc = health_config("true")
    assert (hc["interval"], hc["retries"], hc["timeout"], hc["on_failure"]) == (
        30.0, 3, 30.0, "none")
    assert health_config("true", interval="disable")["interval"] == 0
    assert health_config("none") is None


def test_results_fold_into_podmans_health_shape():
    from podkit_runtime._health import apply_result, health_config, record_fields

    record = {"started_ts": 100.0,
              **record_fields(health_config("x", retries=2, start_period="10s"))}
    assert record["health"]["Status"] == "starting"
    assert not apply_result(record, 1, "no", 105.0, 105.1)  # inside the start period
    assert record["health"]["FailingStreak"] == 0
    assert not apply_result(record, 0, "ok", 111.0, 111.1)
    assert record["health"]["Status"] == "healthy"
    assert not apply_result(record, 1, "no", 112.0, 112.1)
    assert (record["health"]["Status"], record["health"]["FailingStreak"]) == ("healthy", 1)
    assert apply_result(record, 1, "no", 113.0, 113.1)  # retries reached: it turns
    assert (record["health"]["Status"], record["health"]["FailingStreak"]) == ("unhealthy", 2)
    assert not apply_result(record, 1, "no", 114.0, 114.1)  # already unhealthy
    for t in range(10):
        apply_result(record, 0, "ok", 120.0 + t, 120.1 + t)
    assert len(record["health"]["Log"]) == 5 and record["health"]["Status"] == "healthy"
    assert set(record["health"]["Log"][0]) == {"Start", "End", "ExitCode", "Output"}


# -- against conmon + runc -------------------------------------------------------------------

def _pod_run(images, env, *args: str, script: str) -> str:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run -d --tls-verify=false {' '.join(args)} {ref} sh -c "
                   f"{shlex.quote(script)}", env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def _health(env, ref: str) -> dict:
    [info] = loads(run_cli(f"pod inspect {ref}", env))
    SCHEMAS.validate(info, "urn:podkit:runtime:inspect")
    return info["State"]


@pytest.mark.usefixtures("podkit_env")
class TestWithRuntime:
    pytestmark = real

    def test_a_check_that_starts_failing_turns_unhealthy_and_the_timer_ends_with_rm(
            self, images, podkit_env, tmp_path):
        cid = _pod_run(images, podkit_env, "--name hc", "--health-cmd 'test -e /tmp/ok'",
                       "--health-interval 1s", "--health-retries 2",
                       script="touch /tmp/ok; sleep 1000")
        assert _health(podkit_env, "hc")["Health"]["Status"] in ("starting", "healthy")
        # one run by hand, through pod-runtime's JSON (validated) and pod's podman output
        ran = run_cli("pod-runtime healthcheck run hc", podkit_env)
        doc = loads(ran)
        SCHEMAS.validate(doc, "urn:podkit:runtime:healthcheck")
        assert doc["healthy"] and doc["health"]["Status"] == "healthy"
        assert doc["health"]["Log"][-1]["ExitCode"] == 0
        pod_ran = run_cli("pod healthcheck run hc", podkit_env)
        assert (pod_ran.returncode, pod_ran.stdout) == (0, b"")
        table = run_cli("pod ps", podkit_env).stdout.decode()
        assert "(healthy)" in table, table
        [line] = jsonio.loads(run_cli("pod ps --format json", podkit_env).stdout)
        assert line["Status"].endswith("(healthy)")

        timer = record_of(podkit_env, cid)["health_timer"]["pid"]
        assert is_alive(timer)
        assert run_cli("pod exec hc rm /tmp/ok", podkit_env).returncode == 0
        # the timer (1s) notices: two failures in a row make it unhealthy
        state = eventually(
            lambda: (s := _health(podkit_env, "hc"))["Health"]["Status"] == "unhealthy" and s,
            "the timer turned it unhealthy", 60)
        assert state["Health"]["FailingStreak"] >= 2 and state["Status"] == "running"
        assert state["Health"]["Log"][-1]["ExitCode"] == 1
        assert len(state["Health"]["Log"]) <= 5
        failed = run_cli("pod healthcheck run hc", podkit_env)
        assert (failed.returncode, failed.stdout) == (1, b"unhealthy\n")
        assert "(unhealthy)" in run_cli("pod ps", podkit_env).stdout.decode()

        assert run_cli("pod rm -f hc", podkit_env).returncode == 0
        assert not is_alive(timer)
        eventually(lambda: leftovers(tmp_path) == [], "no timer, conmon or cleanup left")
        assert runc_ids(podkit_env) == []

    def test_stop_ends_the_timer_and_healthcheck_run_needs_a_running_check(
            self, images, podkit_env, tmp_path):
        cid = _pod_run(images, podkit_env, "--name quiet", "--health-cmd true",
                       "--health-interval 1s", script="sleep 1000")
        timer = record_of(podkit_env, cid)["health_timer"]["pid"]
        assert is_alive(timer)
        assert run_cli("pod stop -t 0 quiet", podkit_env).returncode == 0
        eventually(lambda: not is_alive(timer), "the exit command ended the timer")
        refused = run_cli("pod healthcheck run quiet", podkit_env)
        assert refused.returncode != 0 and b"running" in refused.stderr
        plain = _pod_run(images, podkit_env, "--name plain", script="sleep 1000")
        assert record_of(podkit_env, plain).get("health_timer") is None
        none = run_cli("pod healthcheck run plain", podkit_env)
        assert none.returncode != 0 and b"no defined healthcheck" in none.stderr
        assert "Health" not in _health(podkit_env, "plain")
        assert run_cli("pod rm quiet", podkit_env).returncode == 0
        assert run_cli("pod rm -f plain", podkit_env).returncode == 0
        eventually(lambda: leftovers(tmp_path) == [], "nothing left")

    def test_a_check_that_overruns_its_timeout_fails(self, images, podkit_env, tmp_path):
        _pod_run(images, podkit_env, "--name slow", "--health-cmd 'sleep 30'",
                 "--health-timeout 1s", "--health-interval disable", script="sleep 1000")
        ran = run_cli("pod-runtime healthcheck run slow", podkit_env)
        assert ran.returncode == 1, ran.stderr.decode()
        doc = jsonio.loads(ran.stdout)
        SCHEMAS.validate(doc, "urn:podkit:runtime:healthcheck")
        assert not doc["healthy"] and "exceeded timeout" in doc["health"]["Log"][-1]["Output"]
        assert doc["health"]["FailingStreak"] == 1
        assert run_cli("pod rm -f slow", podkit_env).returncode == 0
        eventually(lambda: leftovers(tmp_path) == [], "nothing left")

    @pytest.mark.parametrize("action", ["kill", "restart"])
    def test_on_failure_acts_once_unhealthy(self, images, podkit_env, tmp_path, action):
        cid = _pod_run(images, podkit_env, "--name sick", "--health-cmd false",
                       "--health-interval 1s", "--health-retries 1",
                       f"--health-on-failure {action}", script="sleep 1000")
        if action == "kill":
            record = eventually(lambda: (r := record_of(podkit_env, cid))
                                and r.get("exit_code") == 137 and r, "killed", 60)
            assert record["restart_count"] == 0
            eventually(lambda: leftovers(tmp_path) == [], "nothing left")
        else:
            eventually(lambda: (record_of(podkit_env, cid) or {}).get("restart_count", 0) >= 1,
                       "restarted", 60)
            assert _health(podkit_env, "sick")["Status"] == "running"
        assert run_cli("pod rm -f sick", podkit_env).returncode == 0
        eventually(lambda: leftovers(tmp_path) == [], "nothing left")
        assert runc_ids(podkit_env) == []


def _steps(run_check, exec_rm, inspect_health) -> list[tuple]:
    """healthcheck run (passes), rm the file, run twice (fails): what each step shows."""
    out = []
    for step in ("run", "rm", "run", "run"):
        if step == "rm":
            exec_rm()
            continue
        code, text = run_check()
        health = inspect_health()
        out.append((code, text.strip(), health["Status"], health["FailingStreak"],
                    len(health["Log"]), health["Log"][-1]["ExitCode"]))
    return out


@pytest.mark.usefixtures("podkit_env")
def test_healthcheck_run_matches_podman(images, podkit_env, podman, tmp_path):
    pytest.importorskip("podkit_pod")
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    flags = ["--health-cmd", "test -e /tmp/ok", "--health-interval", "disable",
             "--health-retries", "2"]
    script = "touch /tmp/ok; sleep 1000"
    podman.run("run", "-d", "--network", "none", "--name", "hc", *flags, ref, "sh", "-c",
               script)

    def podman_check():
        res = podman.run("healthcheck", "run", "hc", check=False)
        return res.returncode, res.stdout

    def podman_health():
        state = podman.json("inspect", "hc")[0]["State"]
        theirs_key.add("Health" if "Health" in state else "Healthcheck")
        return state.get("Health") or state["Healthcheck"]

    theirs_key: set[str] = set()
    theirs = _steps(podman_check, lambda: podman.run("exec", "hc", "rm", "/tmp/ok"),
                    podman_health)
    podman.run("rm", "-f", "-t", "0", "hc")

    quoted = " ".join(shlex.quote(f) for f in flags)
    _pod_run(images, podkit_env, "--name hc", quoted, script=script)

    def pod_check():
        res = run_cli("pod healthcheck run hc", podkit_env)
        return res.returncode, res.stdout.decode()

    ours = _steps(pod_check,
                  lambda: run_cli("pod exec hc rm /tmp/ok", podkit_env),
                  lambda: _health(podkit_env, "hc")["Health"])
    assert record_of(podkit_env, record_of_id(podkit_env, "hc")).get("health_timer") is None
    assert run_cli("pod rm -f hc", podkit_env).returncode == 0
    assert ours == theirs, (ours, theirs)
    print("healthcheck steps (podman == pod):", theirs, theirs_key)


def record_of_id(env, name: str) -> str:
    [info] = loads(run_cli(f"pod inspect {name}", env))
    return info["Id"]
