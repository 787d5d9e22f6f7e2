"""Configured containers in the runtime library (podkit_runtime._configured): the record
without conmon or runc, its init, its start, and what kill/stop/rm/cleanup do to it; the
pure parts (the record after init, the create options kept) without root."""

from __future__ import annotations

import shutil

import pytest

from podkit_common import errors
from podkit_common.schemas import SchemaSet
from podkit_runtime import _configured
from podkit_runtime._lifecycle import CreateOptions
from tests.runtime.test_lifecycle import prepare, ps_lines, roots_of
from tests.testbed.procs import live_mentions

SCHEMAS = SchemaSet(["podkit_storage", "podkit_runtime", "podkit_netsetup"])


def test_the_record_after_init_keeps_create_time_fields_and_takes_conmons() -> None:
    configured = {"id": "a" * 64, "name": "renamed", "created_at": "T0", "pid": 0,
                  "conmon_pid": 0, "configured": True, "create_options": {"tty": False},
                  "restart_count": 0, "doc": {"container": {"id": "a" * 64}}}
    made = {"id": "a" * 64, "name": "old", "created_at": "T1", "pid": 42, "conmon_pid": 41,
            "conmon_start": 7, "conmon_cgroup": "/x/conmon", "tty": True,
            "doc": {"container": {"id": "a" * 64}, "network": {"mode": "container"}}}
    out = _configured.merged(configured, made)
    assert out["name"] == "renamed" and out["created_at"] == "T0"
    assert (out["pid"], out["conmon_pid"], out["conmon_start"]) == (42, 41, 7)
    assert out["doc"]["network"] == {"mode": "container"} and out["tty"] is True
    assert "configured" not in out and "create_options" not in out
    assert configured["configured"] is True  # pure: the input is untouched


def test_create_options_round_trip_through_the_record() -> None:
    opts = CreateOptions(stdin=True, remove=True, log_size_max=1000, stop_signal="SIGINT",
                         stop_timeout=3, exit_command=("pod", "cleanup", "x"),
                         restart_policy="no", passthrough_stdio=(5, 6, 7))
    kept = _configured.options_fields(opts)
    assert kept["exit_command"] == ["pod", "cleanup", "x"]  # JSON-able
    back = _configured.options_of({"create_options": kept})
    assert back == CreateOptions(stdin=True, remove=True, log_size_max=1000,
                                 stop_signal="SIGINT", stop_timeout=3,
                                 exit_command=("pod", "cleanup", "x"), restart_policy="no")


def test_a_configured_containers_network_is_not_stale_for_cleanup(tmp_path) -> None:
    """pod-netsetup cleanup (and `pod system check`) must not take the network of a
    container waiting for its first start: no process, no runc state, yet not gone."""
    from podkit_common import atomic
    from podkit_common.roots import resolve_roots
    from podkit_netsetup._cleanup import record_is_stale

    roots = resolve_roots(str(tmp_path / "root"), str(tmp_path / "run"))
    cid = "c" * 64
    attachment = {"complete": True, "container_id": cid, "netns": str(tmp_path / "no-ns"),
                  "bundle": str(tmp_path / "run" / "bundles" / cid)}
    assert record_is_stale(attachment, roots)  # no record at all: gone
    record = roots.root / "runtime" / "containers" / cid / "record.json"
    record.parent.mkdir(parents=True)
    atomic.write_json(record, {"id": cid, "configured": True})
    assert record_is_stale(attachment, roots) is None
    atomic.write_json(record, {"id": cid, "exit_code": 0})  # it ran and exited
    assert record_is_stale(attachment, roots)


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_configure_init_start_and_what_other_commands_do(images, podkit_env) -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")
    from podkit_runtime import _lifecycle, _state

    roots = roots_of(podkit_env)
    doc = prepare(images, podkit_env, "cfg", "sleep", "1000")
    cid = doc["container"]["id"]
    out = _lifecycle.create(doc, roots, CreateOptions(), configure_only=True)
    SCHEMAS.validate(out, "urn:podkit:runtime:state")
    assert out["state"]["status"] == "created" and out["state"]["pid"] == 0
    assert not (roots.runroot / "runc" / cid).exists()
    assert [line["State"] for line in ps_lines(podkit_env, "--all")] == ["created"]
    with pytest.raises(errors.Conflict, match="can only kill running containers"):
        _lifecycle.kill(roots, cid, "SIGTERM")
    assert _lifecycle.stop(roots, cid, timeout=0)["changed"] is False
    assert _lifecycle.cleanup(roots, cid)["changed"] is False
    with pytest.raises(errors.Conflict, match="already exists"):
        _lifecycle.create(doc, roots, CreateOptions(), configure_only=True)
    assert _state.observe(roots, _state.load_record(roots, cid)).status == "created"

    inited = _configured.init_container(roots, cid)  # podman's init: runc create
    SCHEMAS.validate(inited, "urn:podkit:runtime:state")
    assert inited["state"]["status"] == "created" and inited["state"]["pid"] > 0
    assert (roots.runroot / "runc" / cid).exists()
    assert _configured.init_container(roots, cid)["changed"] is False
    started = _lifecycle.start(roots, cid)
    assert started["state"]["status"] == "running"
    with pytest.raises(errors.Conflict, match="already been created"):
        _configured.init_container(roots, cid)
    _lifecycle.remove(roots, cid, force=True, timeout=0)
    assert not [p for p in live_mentions(roots.runroot) if cid in p]


def _configured_sleeper(images, podkit_env, name: str):
    """(roots, id) of a configured container that runs ``sleep 1000`` once started."""
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")
    from podkit_runtime import _lifecycle

    roots = roots_of(podkit_env)
    doc = prepare(images, podkit_env, name, "sleep", "1000")
    _lifecycle.create(doc, roots, CreateOptions(), configure_only=True)
    return roots, doc["container"]["id"]


def _remove_leaving_nothing(roots, cid: str) -> None:
    from podkit_runtime import _lifecycle

    _lifecycle.remove(roots, cid, force=True, timeout=0)
    assert not [p for p in live_mentions(roots.runroot) if cid in p]


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_a_start_killed_after_init_and_runc_start_is_done_again(images, podkit_env) -> None:
    """A start killed after conmon, runc create and runc start but before the record
    said so: the record is still configured while a container runs. The next start kills
    that try (conmon, runc's state) and runs it once, under one conmon."""
    import subprocess

    from podkit_runtime import _lifecycle, _state

    roots, cid = _configured_sleeper(images, podkit_env, "half")
    configured = _state.load_record(roots, cid)
    first = _configured.init_container(roots, cid)["state"]["conmon_pid"]
    subprocess.run(["runc", "--root", str(roots.runroot / "runc"), "start", cid], check=True)
    _state.save_record(roots, configured)  # what the killed start left on disk
    assert _state.observe(roots, configured).status == "created"

    started = _lifecycle.start(roots, cid)
    assert started["state"]["status"] == "running"
    assert started["state"]["conmon_pid"] != first
    conmons = [p for p in live_mentions(roots.runroot) if "conmon" in p and cid in p]
    assert len(conmons) == 1, conmons
    _remove_leaving_nothing(roots, cid)


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_a_start_after_a_runc_killed_writing_its_pidfile(images, podkit_env) -> None:
    """runc writes ``.pidfile`` with O_EXCL and renames it; a runc killed in between (CI:
    chaos seed 20261131, `pod pod start` killed as a group) left it, and the next start
    failed "open .../.pidfile: file exists" for ever. The next start removes it."""
    from podkit_runtime import _lifecycle
    from podkit_runtime._state import ContainerPaths

    roots, cid = _configured_sleeper(images, podkit_env, "pidtmp")
    paths = ContainerPaths(roots, cid)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.runc_pidfile_temp.write_text("")  # what the killed runc left
    started = _lifecycle.start(roots, cid)
    assert started["state"]["status"] == "running"
    assert not paths.runc_pidfile_temp.exists()
    _remove_leaving_nothing(roots, cid)
