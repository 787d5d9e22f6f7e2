"""`pod info`, `pod version`, `pod system df|prune|reset|check` on real containers
(conmon + runc + overlayfs), their JSON validated against pod's schemas and compared with
podman 4.3.1 where podman has the same command."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from tests.pod.test_cli_containers import bare, cells, ok, pod

SCHEMAS = SchemaSet(["podkit_pod"])
pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


@pytest.fixture
def workload(podkit_env, images):
    """An exited container and a running one, from one image."""
    env = podkit_env
    ref = bare(images)
    assert pod(env, "run", "--tls-verify=false", "--name", "done", ref, "sh", "-c",
               "head -c 5000 /dev/zero > /big; exit 1").returncode == 1
    ok(pod(env, "run", "-d", "--name", "web", ref, "sleep", "1000"))
    try:
        yield env
    finally:
        pod(env, "rm", "-af", "-t", "0")


def mounts_under(base: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line.split()[4] for line in text.splitlines()
            if line.split()[4].startswith(str(base))]


def test_info_is_podmans_document_for_our_roots(workload, podman) -> None:
    env = workload
    doc = json.loads(ok(pod(env, "info", "--format", "json")))
    SCHEMAS.validate(doc, "urn:podkit:pod:info")
    assert doc["store"]["graphRoot"] == env["PODKIT_ROOT"]
    assert doc["store"]["runRoot"] == env["PODKIT_RUNROOT"]
    assert doc["store"]["containerStore"] == {"number": 2, "paused": 0, "running": 1,
                                              "stopped": 1}
    assert doc["store"]["imageStore"] == {"number": 1}
    assert doc["host"]["kernel"] == platform.release()
    assert doc["host"]["ociRuntime"]["name"] == "runc"
    assert doc["host"]["ociRuntime"]["version"].startswith("runc version")
    theirs = podman.json("info", "--format", "json")
    # every section and (but for podman-only machinery) every host/store key podman has
    assert set(theirs) == set(doc)
    podman_only = {"buildahVersion", "remoteSocket", "graphOptions", "graphStatus"}
    assert set(theirs["host"]) - set(doc["host"]) - podman_only == set()
    assert set(theirs["store"]) - set(doc["store"]) - podman_only == set()
    for key in ("arch", "os", "kernel", "hostname", "cgroupVersion", "cgroupManager", "cpus",
                "memTotal", "cgroupControllers"):
        assert doc["host"][key] == theirs["host"][key], key
    assert doc["host"]["conmon"]["version"] == theirs["host"]["conmon"]["version"]
    # the same registries.conf gives the same registries section
    conf = podman.env["CONTAINERS_REGISTRIES_CONF"]
    with_conf = json.loads(ok(pod({**env, "CONTAINERS_REGISTRIES_CONF": conf}, "info",
                                  "--format", "json")))
    assert with_conf["registries"] == theirs["registries"]
    # Go templates with podman's field names, and the YAML default
    kernel = ok(pod(env, "info", "--format", "{{.Host.Kernel}} {{.Store.GraphRoot}}"))
    assert kernel == f"{platform.release()} {env['PODKIT_ROOT']}\n"
    yaml = ok(pod(env, "system", "info"))
    assert f"  graphRoot: {env['PODKIT_ROOT']}\n" in yaml and "    running: 1\n" in yaml


def test_version_says_python_where_podman_says_go(podkit_env) -> None:
    text = ok(pod(podkit_env, "version")).splitlines()
    labels = [line.split(":")[0] for line in text]
    assert labels == ["Client", "Version", "API Version", "Python Version", "Built", "OS/Arch"]
    doc = json.loads(ok(pod(podkit_env, "version", "--format", "json")))
    SCHEMAS.validate(doc, "urn:podkit:pod:version")
    assert doc["Client"]["PythonVersion"] == platform.python_version()
    assert ok(pod(podkit_env, "version", "--format", "{{.Client.Version}}")) == \
        doc["Client"]["Version"] + "\n"


def test_system_df_counts_and_sizes(workload, podman, images) -> None:
    env = workload
    rows = json.loads(ok(pod(env, "system", "df", "--format", "json")))
    SCHEMAS.validate(rows, "urn:podkit:pod:system-df")
    by = {r["Type"]: r for r in rows}
    assert (by["Images"]["Total"], by["Images"]["Active"]) == (1, 1)
    assert (by["Containers"]["Total"], by["Containers"]["Active"]) == (2, 1)
    assert by["Containers"]["Reclaimable"] >= 5000  # the exited one wrote /big
    assert by["Images"]["Reclaimable"] == 0
    table = ok(pod(env, "system", "df")).splitlines()
    podman.pull(bare(images))
    theirs = podman.run("system", "df").stdout.splitlines()
    assert cells(table[0]) == cells(theirs[0])
    assert [cells(x)[0] for x in table[1:]] == [cells(x)[0] for x in theirs[1:]]
    # the same image has the same size on both sides (podman: its layers' tar sizes)
    assert cells(table[1])[3] == cells(theirs[1])[3]
    verbose = ok(pod(env, "system", "df", "-v"))
    assert "Containers space usage:" in verbose and "web" in verbose
    assert ok(pod(env, "system", "df", "--format", "{{.Type}}={{.Total}}")).splitlines() == [
        "Images=1", "Containers=2", "Local Volumes=0"]


def test_system_prune_asks_then_removes_what_nothing_uses(workload) -> None:
    env = workload
    ok(pod(env, "volume", "create", "spare"))
    asked = pod(env, "system", "prune", "--volumes")  # stdin is not a terminal: refused
    assert asked.returncode == 125 and "WARNING! This command removes" in asked.stderr
    assert len(json.loads(ok(pod(env, "ps", "-a", "--format", "json")))) == 2
    done_id = ok(pod(env, "ps", "-aq", "--no-trunc", "--filter", "name=done")).strip()
    out = ok(pod(env, "system", "prune", "-f", "--volumes"))
    assert out.startswith(f"Deleted Containers\n{done_id}\nDeleted Volumes\nspare\n"), out
    assert re.search(r"^Total reclaimed space: [0-9.]+[kM]?B$", out.splitlines()[-1])
    assert ok(pod(env, "ps", "-a", "--format", "{{.Names}}")).split() == ["web"]
    out = ok(pod(env, "system", "prune", "-a", "-f"))  # the image is in use: kept
    assert out == "Total reclaimed space: 0B\n"


def test_system_reset_removes_only_podkits_state(workload, tmp_path) -> None:
    env = workload
    root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
    keep = root / "users-own-file.txt"
    keep.write_text("not podkit's")
    refused = pod(env, "system", "reset")
    assert refused.returncode == 125 and "WARNING! This will remove" in refused.stderr
    assert len(json.loads(ok(pod(env, "ps", "-a", "--format", "json")))) == 2
    web_pid = json.loads(ok(pod(env, "inspect", "web")))[0]["State"]["Pid"]
    assert ok(pod(env, "system", "reset", "--force")) == ""
    assert keep.read_text() == "not podkit's"
    assert sorted(p.name for p in root.iterdir()) == ["users-own-file.txt"]
    assert not runroot.exists() or list(runroot.iterdir()) == []
    assert mounts_under(tmp_path) == []
    assert not Path(f"/proc/{web_pid}").exists() or \
        "sleep" not in Path(f"/proc/{web_pid}/cmdline").read_text(errors="replace")
    assert ok(pod(env, "ps", "-a", "--format", "json")) == "[]\n"


def test_system_check_finds_and_repairs_a_runtime_record_without_rootfs(workload) -> None:
    env = workload
    clean = pod(env, "system", "check")
    report = json.loads(clean.stdout)
    SCHEMAS.validate(report, "urn:podkit:pod:system-check")
    assert clean.returncode == 0 and report["clean"] and report["containers_checked"] == 2
    # the storage half of `done` goes behind pod's back
    gone = subprocess.run(["pod-storage", "rm", "done"], env=env, capture_output=True)
    assert gone.returncode == 0, gone.stderr
    found = pod(env, "system", "check")
    report = json.loads(found.stdout)
    SCHEMAS.validate(report, "urn:podkit:pod:system-check")
    assert found.returncode == 5
    assert [p["kind"] for p in report["problems"]] == ["runtime-without-storage"]
    fixed = pod(env, "system", "check", "--repair")
    assert fixed.returncode == 0 and json.loads(fixed.stdout)["changed"] is True
    assert ok(pod(env, "ps", "-a", "--format", "{{.Names}}")).split() == ["web"]
    assert pod(env, "system", "check").returncode == 0
