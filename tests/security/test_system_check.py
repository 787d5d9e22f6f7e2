"""`pod system check [--repair]` tells the truth and repairs without destroying good data.

One store holds good images and containers (one running, one stopped with data in its
writable layer) next to ten kinds of damage made behind podkit's back. check must report
each with its own kind and a description; --repair must fix every one; afterwards check
is clean, and the good containers and images still work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from podkit_common.roots import Roots
from podkit_common.schemas import SchemaSet
from tests.pod.test_cli_containers import bare, ok, pod
from tests.testbed.images import build_image
from tests.testbed.layers import LayerBuilder, base_layer_tar
from tests.testbed.push import push

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]
SCHEMAS = SchemaSet(["podkit_pod"])


def fake_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def check(env: dict[str, str], *args: str) -> tuple[int, dict]:
    result = pod(env, "system", "check", *args)
    report = json.loads(result.stdout)
    SCHEMAS.validate(report, "urn:podkit:pod:system-check")
    return result.returncode, report


def chain_of(env: dict[str, str], ref: str, index: int = -1) -> str:
    """The chain id (hex) of an image's layer, from the store's image record."""
    root = Path(env["PODKIT_ROOT"])
    image_id = json.loads(ok(pod(env, "image", "inspect", ref)))[0]["Id"]
    record = json.loads((root / "images" / f"{image_id}.json").read_text())
    return record["layers"][index]["chain_id"].split(":")[1]


def push_unique(registry, name: str, marker: str) -> str:
    top = LayerBuilder().file(f"/{marker}.txt", marker + "\n").tar()
    push(registry.url, name, "latest", build_image([base_layer_tar(), top], fmt="docker"))
    return f"{registry.url}/{name}:latest"


@pytest.fixture
def damaged(podkit_env, images, registry, needs_conmon, tmp_path: Path):
    env = podkit_env
    root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
    good = bare(images)
    ok(pod(env, "pull", "--tls-verify=false", good))
    victim_a = push_unique(registry, "victim-a", "a")
    victim_b = push_unique(registry, "victim-b", "b")
    ok(pod(env, "pull", "--tls-verify=false", victim_a))
    ok(pod(env, "pull", "--tls-verify=false", victim_b))
    ok(pod(env, "run", "-d", "--name", "good-run", good, "sleep", "1000"))
    ok(pod(env, "run", "-d", "--name", "good-stopped", good, "sh", "-c",
           "echo keep > /kept; exec sleep 1000"))
    ok(pod(env, "stop", "-t", "0", "good-stopped"))
    made: dict[str, str] = {}
    # 1. a container whose own rootfs (its writable layer) is gone
    cid = ok(pod(env, "create", "--name", "norootfs", good, "true")).strip()
    shutil.rmtree(root / "containers" / cid / "upper")
    made["container-rootfs-missing"] = f"containers/{cid}"
    # 2. a layer whose diff dir is gone (its blob is still stored)
    chain_b = chain_of(env, victim_b)
    shutil.rmtree(root / "layers" / chain_b / "diff")
    made["damaged-layer"] = f"layers/{chain_b}"
    # 3. a half-written blob of a killed pull
    (root / "blobs" / "tmp").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "tmp" / "0badc0de-partial").write_bytes(b"half a blob")
    made["blob-temp"] = "blobs/tmp/0badc0de-partial"
    # 4. an image whose manifest names a layer that is gone
    chain_a = chain_of(env, victim_a)
    image_a = json.loads(ok(pod(env, "image", "inspect", victim_a)))[0]["Id"]
    shutil.rmtree(root / "layers" / chain_a)
    made["image-missing-layer"] = f"images/{image_a}.json"
    # 5. an overlay mounted where a container's rootfs would be, of no container
    orphan = fake_id()
    mp = runroot / "mounts" / orphan
    mp.mkdir(parents=True)
    lo, up, wk = (tmp_path / "ov" / d for d in ("lo", "up", "wk"))
    for d in (lo, up, wk):
        d.mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lo},upperdir={up},workdir={wk}", str(mp)], check=True)
    made["orphan-mount"] = f"runroot/mounts/{orphan}"
    # 6. a runtime record whose storage container is gone
    nostore = ok(pod(env, "create", "--name", "nostore", good, "true")).strip()
    gone = subprocess.run(["pod-storage", "rm", nostore], env=env, capture_output=True)
    assert gone.returncode == 0, gone.stderr
    made["runtime-without-storage"] = f"runtime/{nostore}"
    # 7. a container dir with no record (a create killed half-way; after the last
    #    create, which would finish it: nobody holds its lock)
    recordless = fake_id()
    (root / "containers" / recordless / "upper").mkdir(parents=True)
    made["incomplete-container"] = f"containers/{recordless}"
    # 8. a lock file of a container that is gone
    stale = fake_id()
    (root / "locks" / f"container-{stale}.lock").write_bytes(b"")
    made["stale-lock"] = f"locks/container-{stale}.lock"
    # 9. an IP lease held for a container that is gone
    ok(pod(env, "network", "create", "--subnet", "10.123.45.0/24", "chknet"))
    from podkit_netsetup._networks import NetworkStore

    conf = NetworkStore(Roots(root, runroot)).load("chknet")
    leases = Path(conf["plugins"][0]["ipam"]["dataDir"]) / "chknet"
    leases.mkdir(parents=True, exist_ok=True)
    (leases / "10.123.45.7").write_text(f"{fake_id()}\neth0")
    made["ip-lease-orphan"] = "networks/chknet/leases/10.123.45.7"
    # 10. a network namespace file whose container is gone (a real netns, bind-mounted)
    netns = runroot / "netns" / f"netns-{fake_id()}"
    netns.parent.mkdir(parents=True, exist_ok=True)
    netns.touch()
    subprocess.run(["unshare", "--net", "--", "mount", "--bind", "/proc/self/ns/net",
                    str(netns)], check=True)
    made["netns-orphan"] = f"runroot/netns/{netns.name}"
    try:
        yield env, made, {"good": good, "victim_a": victim_a, "victim_b": victim_b,
                          "netns": netns, "mount": mp, "leases": leases}
    finally:
        pod(env, "rm", "-af", "-t", "0")
        pod(env, "network", "rm", "-f", "chknet")


def test_every_kind_of_damage_is_reported_then_repaired_and_good_data_kept(damaged) -> None:
    env, made, things = damaged
    code, report = check(env)
    assert code == 6, report  # a damaged layer is content damage until repaired
    assert not report["clean"] and not report["changed"]
    found = {(p["kind"], p["object"]) for p in report["problems"]}
    assert set(made.items()) <= found, sorted(found)
    kinds = [p["kind"] for p in report["problems"] if (p["kind"], p["object"])
             in set(made.items())]
    assert sorted(kinds) == sorted(made)  # each reported once, under its own kind
    for p in report["problems"]:
        assert len(p["detail"]) > 15 and p["repairable"], p
        assert not p["repaired"]
    # the report changed nothing
    assert things["netns"].exists() and (things["leases"] / "10.123.45.7").exists()

    code, report = check(env, "--repair")
    assert code == 0 and report["clean"] and report["changed"], report
    assert all(p["repaired"] for p in report["problems"]), report["problems"]
    code, report = check(env)
    assert (code, report["problems"], report["clean"]) == (0, [], True), report

    # the leftovers are really gone
    assert not things["netns"].exists() and not things["mount"].exists()
    assert not (things["leases"] / "10.123.45.7").exists()
    names = ok(pod(env, "ps", "-a", "--format", "{{.Names}}")).split()
    assert sorted(names) == ["good-run", "good-stopped"]
    # and every good thing still works: the running one, the stopped one with its data,
    # the repaired image (its layer unpacked again from its blob), the good image
    assert ok(pod(env, "exec", "good-run", "echo", "alive")) == "alive\n"
    ok(pod(env, "start", "good-stopped"))
    assert ok(pod(env, "exec", "good-stopped", "cat", "/kept")) == "keep\n"
    assert ok(pod(env, "run", "--rm", things["victim_b"], "cat", "/b.txt")) == "b\n"
    assert ok(pod(env, "run", "--rm", things["good"], "echo", "ok")) == "ok\n"
    # the image that lost a layer was dropped: pulling it again brings it back whole
    ok(pod(env, "pull", "--tls-verify=false", things["victim_a"]))
    assert ok(pod(env, "run", "--rm", things["victim_a"], "cat", "/a.txt")) == "a\n"
    code, report = check(env)
    assert code == 0, report


def test_a_layer_under_a_running_container_is_not_swapped_underneath_it(
        podkit_env, images, needs_conmon) -> None:
    env = podkit_env
    root = Path(env["PODKIT_ROOT"])
    good = bare(images)
    ok(pod(env, "run", "-d", "--tls-verify=false", "--name", "busy", good, "sleep", "1000"))
    try:
        chain = chain_of(env, good)
        victim = root / "layers" / chain / "diff" / "bin" / "busybox"
        victim.write_bytes(victim.read_bytes() + b"tampered")
        code, report = check(env, "--repair")
        [problem] = [p for p in report["problems"] if p["kind"] == "damaged-layer"]
        assert code == 6 and not problem["repairable"] and not problem["repaired"]
        assert "busy" in problem["detail"]  # says which container to stop
        ok(pod(env, "stop", "-t", "0", "busy"))
        code, report = check(env, "--repair")
        assert code == 0, report
        ok(pod(env, "start", "busy"))
        assert ok(pod(env, "exec", "busy", "echo", "back")) == "back\n"
    finally:
        pod(env, "rm", "-af", "-t", "0")
