"""Bugs the chaos suite found, each pinned by a deterministic reproduction of the state
the kill left (built with the stage executables), and checked with the leak checker."""

from __future__ import annotations

import pytest

from podkit_common import jsonio
from tests.chaos.conftest import image_of
from tests.chaos.driver import Chaos
from tests.chaos.leaks import LeakChecker

pytestmark = [pytest.mark.chaos, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]


def test_rm_of_a_container_whose_create_was_killed_after_attach_releases_its_network(
        images, chaos_env, tmp_path):
    """`pod create` killed between the network attach and the runtime record (seed 2 of
    the kill rounds) left a storage container, a bundle and an attachment record; `pod
    rm` removed the first two and leaked the netns, the IP lease and the firewall rules."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create("halfnet")
    net = jsonio.loads(chaos.run("pod network inspect halfnet").stdout)[0]
    checker.watch_network(net)
    assert chaos.must(f"pod pull -q --tls-verify=false {image_of(images)}", "pull")
    # what the killed create had done: storage create | bundle | attach, no runtime record
    assert chaos.must(f"pod-storage create --image {image_of(images)} --name half"
                      " | pod-runtime bundle -- sleep 1 | pod-netsetup attach --network"
                      " halfnet >/dev/null", "half-create")
    assert any(x.startswith("lease ") for x in checker.check(settle=0))
    assert chaos.must("pod rm -f half", "rm")
    assert chaos.must("pod network rm halfnet", "network-rm")
    assert checker.check() == [], chaos.failures


def _drop_runtime_record(env: dict[str, str], cid: str) -> None:
    """The state of a create SIGKILLed between conmon's start and the runtime record:
    conmon and runc's created container live, no record names them."""
    from pathlib import Path

    record = Path(env["PODKIT_ROOT"]) / "runtime" / "containers" / cid / "record.json"
    assert record.is_file(), record
    record.unlink()


def test_pod_rm_after_a_pod_create_killed_inside_the_infra_create(images, chaos_env,
                                                                  tmp_path):
    """A `pod pod create` killed while conmon ran `runc create` for the infra (soak seed
    1379799033) left conmon and runc's container in the pod's cgroup with no record: `pod
    pod rm -f` failed for ever with "remove the pod cgroup ...: Device or resource busy",
    and the infra's netns, lease and firewall rules leaked."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create("podnet")
    checker.watch_network(jsonio.loads(chaos.run("pod network inspect podnet").stdout)[0])
    assert chaos.must("pod pod create --name halfpod --network podnet", "pod-create")
    info = jsonio.loads(chaos.run("pod pod inspect halfpod").stdout)
    _drop_runtime_record(chaos_env, info["InfraContainerID"])
    assert chaos.must("pod pod rm -f -t 0 halfpod", "pod-rm"), chaos.failures
    assert chaos.must("pod network rm podnet", "network-rm"), chaos.failures
    assert checker.check() == []


def test_rm_after_a_create_killed_inside_runc_create(images, chaos_env, tmp_path):
    """The same for a plain container: `pod rm` must stop the unrecorded conmon/runc."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    cid = chaos.run(f"pod create --tls-verify=false --name halfctr {image_of(images)} "
                    "sleep 3600").stdout.decode().strip()
    assert len(cid) == 64, chaos.failures
    _drop_runtime_record(chaos_env, cid)
    assert checker.check(settle=0) != []  # conmon and its mount are still there
    assert chaos.must("pod rm -f -t 0 halfctr", "rm"), chaos.failures
    assert checker.check() == []


def test_start_after_a_start_killed_after_runc_start(images, chaos_env, tmp_path):
    """`pod start` killed between `runc start` and its record (soak seed 1379799033):
    the retry failed with runc's "cannot start an already running container"; podman's
    start of a running container succeeds, and so must the retry."""
    import subprocess
    from pathlib import Path

    chaos = Chaos(chaos_env, image_of(images), 0)
    cid = chaos.run(f"pod create --tls-verify=false --name halfstart {image_of(images)} "
                    "sleep 3600").stdout.decode().strip()
    assert len(cid) == 64, chaos.failures
    runc_root = Path(chaos_env["PODKIT_RUNROOT"]) / "runc"
    subprocess.run(["runc", "--root", str(runc_root), "start", cid], check=True)
    assert chaos.must("pod start halfstart", "start"), chaos.failures
    assert chaos.containers()["halfstart"] == "running"
    assert chaos.must("pod rm -f -t 0 halfstart", "rm"), chaos.failures
    assert LeakChecker(tmp_path, chaos_env).check() == []


def test_network_rm_retried_after_a_kill_between_bridge_and_conflist(images, chaos_env,
                                                                     tmp_path):
    """`pod network rm` killed after it removed the conflist but before the bridge (soak
    seed 815846545) leaked the bridge for good: nothing named it any more. The bridge now
    goes first, so a kill leaves the conflist; a retry from that state must finish."""
    import subprocess

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create("halfrm")
    net = jsonio.loads(chaos.run("pod network inspect halfrm").stdout)[0]
    checker.watch_network(net)
    subprocess.run(["ip", "link", "add", net["network_interface"], "type", "bridge"],
                   check=False, capture_output=True)  # present, as before the rm
    subprocess.run(["ip", "link", "del", net["network_interface"]], check=True)
    assert chaos.must("pod network rm halfrm", "network-rm"), chaos.failures
    assert chaos.run("pod network exists halfrm").returncode == 1
    assert checker.check() == []


def test_del_after_an_add_killed_before_its_result_was_recorded(images, chaos_env, tmp_path):
    """An attach killed after the plugins' ADD but before the record held its result (soak
    seed 1052147947, private subnet): the DEL had no prevResult, so the firewall plugin
    left its two CNI-FORWARD rules for the address; the lease gives it back."""
    from pathlib import Path

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create("fwnet")
    checker.watch_network(jsonio.loads(chaos.run("pod network inspect fwnet").stdout)[0])
    assert chaos.must(f"pod pull -q --tls-verify=false {image_of(images)}", "pull")
    doc = jsonio.loads(chaos.run(
        f"pod-storage create --image {image_of(images)} --name fw | pod-runtime bundle -- "
        "sleep 1 | pod-netsetup attach --network fwnet").stdout)
    cid = doc["container"]["id"]
    ip = doc["network"]["networks"][0]["addresses"][0].split("/")[0]
    record = Path(chaos_env["PODKIT_RUNROOT"]) / "netsetup" / "attachments" / f"{cid}.json"
    rec = jsonio.loads(record.read_bytes())
    for entry in rec["networks"]:
        entry["result"] = None
    record.write_bytes(jsonio.dumps(rec))
    assert any(ip in r for r in checker.check(settle=0) if r.startswith("iptables"))
    assert chaos.must("pod rm -f fw", "rm"), chaos.failures
    assert chaos.must("pod network rm fwnet", "network-rm"), chaos.failures
    assert checker.check() == []


def test_a_pull_after_one_killed_while_writing_the_image_record_sweeps_its_staging_file(
        images, chaos_env):
    """A pull SIGKILLed (with its process group) while the image record was being
    written (CI seed 73467960) left images/.tmp-<id>.json.<pid>.r<hex>: the next pull
    succeeded but left it there, so `pod system check` reported staging for ever."""
    import subprocess
    from pathlib import Path

    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.must(f"pod pull -q --tls-verify=false {image_of(images)}", "pull")
    dead = subprocess.Popen(["true"])  # a pid that is no longer alive
    dead.wait()
    images_dir = Path(chaos_env["PODKIT_ROOT"]) / "images"
    record = next(p for p in images_dir.iterdir() if p.suffix == ".json")
    left = images_dir / f".tmp-{record.name}.{dead.pid}.r0badf00d"
    left.write_bytes(record.read_bytes()[:10])
    assert chaos.must(f"pod pull -q --tls-verify=false {image_of(images)}", "pull")
    assert not left.exists()
    chaos.check_clean("pull")
    assert chaos.failures == []
