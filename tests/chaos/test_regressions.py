"""Bugs the chaos suite found, each pinned by a deterministic reproduction of the state
the kill left (built with the stage executables), and checked with the leak checker."""

from __future__ import annotations

import os

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
    from podkit_common.roots import resolve_roots
    from podkit_runtime._configured import init_container

    # create leaves it configured (podman's model): the start's init (conmon + runc
    # create) first, as the killed start had done
    init_container(resolve_roots(chaos_env["PODKIT_ROOT"], chaos_env["PODKIT_RUNROOT"]), cid)
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


def _half_made_bridge(bridge: str) -> None:
    """The bridge a bridge plugin SIGKILLed after attaching its veth but before pinning
    the bridge's MAC leaves once that veth is gone: no ports, MAC 00:00:00:00:00:00 (the
    kernel's choice for an unpinned bridge that lost its last port), no address."""
    import subprocess

    veth = "rv" + bridge[-10:]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name",
                        veth + "p"], check=True)
        subprocess.run(["ip", "link", "set", veth, "master", bridge], check=True)
    finally:
        subprocess.run(["ip", "link", "del", veth], check=False, capture_output=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    assert _bridge_mac(bridge) == "00:00:00:00:00:00"


def _bridge_mac(bridge: str) -> str | None:
    from pathlib import Path

    try:
        return Path(f"/sys/class/net/{bridge}/address").read_text().strip()
    except FileNotFoundError:
        return None


def _network_with_half_made_bridge(images, chaos_env, tmp_path, name):
    """A leak checker, a Chaos driver, and network ``name`` whose bridge a killed bridge
    plugin left half made; returns (checker, chaos, the network's inspect entry)."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create(name)
    net = jsonio.loads(chaos.run(f"pod network inspect {name}").stdout)[0]
    checker.watch_network(net)
    _half_made_bridge(net["network_interface"])
    return checker, chaos, net


def test_attach_repairs_a_bridge_left_half_made_by_a_killed_bridge_plugin(
        images, chaos_env, tmp_path):
    """`pod pod create` SIGKILLed inside the CNI bridge plugin (soak seed 1469077523,
    round 8) left a bridge every later ADD rejected: "could not set bridge's mac:
    invalid argument". The attach now deletes such a bridge and retries once, with a
    warning; the plugin makes the bridge anew and pins its MAC."""
    checker, chaos, net = _network_with_half_made_bridge(images, chaos_env, tmp_path,
                                                         "halfbr")
    bridge = net["network_interface"]
    res = chaos.run("pod pod create --name brpod --network halfbr")
    assert res.returncode == 0, res.stderr
    assert b"could not set bridge's mac" not in res.stderr
    assert f"deleted bridge {bridge}".encode() in res.stderr
    mac = _bridge_mac(bridge)
    assert mac not in (None, "00:00:00:00:00:00")
    from pathlib import Path

    assert Path(f"/sys/class/net/{bridge}/addr_assign_type").read_text().strip() == "3"
    chaos.check_clean("pod-create")
    assert chaos.must("pod pod rm -f -t 0 brpod", "pod-rm"), chaos.failures
    assert _bridge_mac(bridge) == mac  # pinned: kept when its last port went
    assert chaos.must("pod network rm halfbr", "network-rm"), chaos.failures
    assert checker.check() == [], chaos.failures


def test_system_check_reports_a_half_made_bridge_and_repair_deletes_it(
        images, chaos_env, tmp_path):
    """`pod system check` names the half-made bridge; `--repair` deletes it; a bridge
    whose plugin never pinned its MAC is deleted by the DEL that takes its last port."""
    import subprocess
    from pathlib import Path

    checker, chaos, net = _network_with_half_made_bridge(images, chaos_env, tmp_path,
                                                         "checkbr")
    bridge = net["network_interface"]
    report = jsonio.loads(chaos.run("pod system check").stdout)
    assert not report["clean"]
    assert [p["object"] for p in report["problems"] if p["kind"] == "bridge-half-made"] \
        == [f"bridge/{bridge}"]
    report = jsonio.loads(chaos.run("pod system check --repair").stdout)
    assert report["clean"], report
    assert _bridge_mac(bridge) is None
    chaos.check_clean("repair")
    # killed after the gateway address, before the MAC: ADDs work, the MAC is never
    # pinned, and the container's rm leaves the half-made bridge: the DEL deletes it
    _half_made_bridge(bridge)
    subprocess.run(["ip", "addr", "add", f"{net['subnets'][0]['gateway']}/24", "dev",
                    bridge], check=True)
    assert chaos.must(f"pod run -d --tls-verify=false --name brctr --network checkbr "
                      f"{image_of(images)} "
                      "sleep 3600", "run"), chaos.failures
    assert Path(f"/sys/class/net/{bridge}/addr_assign_type").read_text().strip() != "3"
    assert chaos.must("pod rm -f -t 0 brctr", "rm"), chaos.failures
    assert _bridge_mac(bridge) is None
    chaos.check_clean("rm")
    assert chaos.must("pod network rm checkbr", "network-rm"), chaos.failures
    assert checker.check() == [], chaos.failures


def test_a_create_sweeps_container_staging_files_of_a_dead_writer(images, chaos_env):
    """Staging files (``.tmp-<name>.<pid>.r<hex>``) a killed writer left in containers/
    and containers/names/ stayed for ever, `pod system check` reporting them each time:
    the next container create now sweeps them, as an import sweeps the image records'."""
    import subprocess
    from pathlib import Path

    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.must(f"pod create --tls-verify=false --name sweep1 {image_of(images)} true",
                      "create"), chaos.failures
    dead = subprocess.Popen(["true"])  # a pid that is no longer alive
    dead.wait()
    containers = Path(chaos_env["PODKIT_ROOT"]) / "containers"
    cid = next(p.name for p in containers.iterdir() if len(p.name) == 64)
    left = [containers / f".tmp-{cid}.{dead.pid}.r0badf00d",
            containers / "names" / f".tmp-sweep1.{dead.pid}.r0badf00d"]
    live = containers / f".tmp-{cid}.{os.getpid()}.r0badf00d"  # a writer at work
    for path in (*left, live):
        path.write_bytes(b"{")
    report = jsonio.loads(chaos.run("pod system check").stdout)
    assert sorted(p["kind"] for p in report["problems"]) == ["staging", "staging"]
    assert chaos.must(f"pod create --name sweep2 {image_of(images)} true", "create")
    assert [p for p in left if p.exists()] == []
    assert live.exists()
    live.unlink()
    chaos.check_clean("create")
    assert chaos.must("pod rm -a -f -t 0", "rm"), chaos.failures
    assert chaos.failures == []



def test_start_after_a_detach_killed_between_netns_unmount_and_record(images, chaos_env,
                                                                      tmp_path):
    """A detach SIGKILLed after it unmounted the network namespace but before it removed
    the attachment record (around a killed `pod start`, soak seed 1052147947) left a
    namespace file with no namespace behind it; the container's bundle names that file,
    so every later start failed with runc's "can't get final child's PID from pipe:
    EOF". The start now attaches the network anew (pod-netsetup finishes the detach)."""
    import subprocess
    from pathlib import Path

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.network_create("deadns")
    checker.watch_network(jsonio.loads(chaos.run("pod network inspect deadns").stdout)[0])
    cid = chaos.run(f"pod create --tls-verify=false --name dns1 --network deadns "
                    f"{image_of(images)} sleep 3600").stdout.decode().strip()
    assert len(cid) == 64, chaos.failures
    netns = Path(chaos_env["PODKIT_RUNROOT"]) / "netns" / f"netns-{cid}"
    subprocess.run(["umount", str(netns)], check=True)  # what the killed detach had done
    assert netns.exists()
    res = chaos.run("pod start dns1")
    assert res.returncode == 0, res.stderr
    assert chaos.containers()["dns1"] == "running"
    res = chaos.run("pod exec dns1 ip -4 addr show eth0")
    assert res.returncode == 0 and b"inet " in res.stdout, res.stderr
    chaos.check_clean("start")
    assert chaos.must("pod rm -f -t 0 dns1", "rm"), chaos.failures
    assert chaos.must("pod network rm deadns", "network-rm"), chaos.failures
    assert checker.check() == [], chaos.failures


def _drop_storage_record(env: dict[str, str], cid: str) -> None:
    """What an rm SIGKILLed inside the storage removal left: its ``container.json`` gone
    (dropped first), the rest (files, name, mount point) not yet."""
    from pathlib import Path

    record = Path(env["PODKIT_ROOT"]) / "containers" / cid / "container.json"
    assert record.is_file(), record
    record.unlink()


def test_rm_finishes_a_removal_killed_inside_the_storage_removal(images, chaos_env,
                                                                 tmp_path):
    """`pod rm -f` killed after the storage record went (kill round seed 1245428684): the
    retried `pod rm -f -i NAME` found no container and left its files, its name and its
    mount point for `pod system check` to report for ever. The retry now finishes it."""
    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    cid = chaos.run(f"pod create --tls-verify=false --name halfrm {image_of(images)} "
                    "sleep 3600").stdout.decode().strip()
    assert len(cid) == 64, chaos.failures
    assert chaos.must(f"pod-runtime rm {cid} >/dev/null", "runtime-rm"), chaos.failures
    _drop_storage_record(chaos_env, cid)
    report = jsonio.loads(chaos.run("pod system check").stdout)
    assert "incomplete-container" in {p["kind"] for p in report["problems"]}
    assert chaos.must("pod rm -f -i -t 0 halfrm", "rm"), chaos.failures
    chaos.check_clean("rm")
    assert chaos.run("pod ps -a -q").stdout.strip() == b""
    assert chaos.failures == [] and checker.check() == []


def test_pod_rm_finishes_members_a_killed_pod_rm_left(images, chaos_env, tmp_path):
    """`pod pod rm -f` killed after a member's runtime record and storage record were
    dropped (kill round seed 779479295): the retry left the member's runtime lock file
    (a stale lock for `pod system check`) and its storage remains. Both go now."""
    from pathlib import Path

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    assert chaos.must("pod pod create --name halfpod2 --network none", "pod-create")
    cid = chaos.run(f"pod create --tls-verify=false --pod halfpod2 --name halfpod2-m "
                    f"{image_of(images)} sleep 3600").stdout.decode().strip()
    assert len(cid) == 64, chaos.failures
    lock = Path(chaos_env["PODKIT_ROOT"]) / "locks" / f"runtime-{cid}.lock"
    assert lock.exists()
    _drop_runtime_record(chaos_env, cid)
    _drop_storage_record(chaos_env, cid)
    assert chaos.must("pod pod rm -f -t 0 halfpod2", "pod-rm"), chaos.failures
    assert not lock.exists()
    chaos.check_clean("pod-rm")
    assert chaos.run("pod ps -a -q").stdout.strip() == b""
    assert chaos.failures == [] and checker.check() == []


def test_pod_rm_finishes_a_member_that_left_the_pod_before_its_storage_went(
        images, chaos_env, tmp_path):
    """`pod pod rm -f` killed inside a member's storage removal (CI seed 20261130, part
    1): the member had already left the pod record's ``members`` with its bundle, so the
    retry did not know it, and its files, name and mount point stayed for `pod system
    check` to report for ever. The removal now keeps every member it takes named in the
    record (``removing_members``, written before anything goes) to its end."""
    from pathlib import Path

    from podkit_common import atomic

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    pod_id = chaos.run("pod pod create --name halfpod3 --network none").stdout.decode().strip()
    cid = chaos.run(f"pod create --tls-verify=false --pod halfpod3 --name halfpod3-m "
                    f"{image_of(images)} sleep 3600").stdout.decode().strip()
    assert len(cid) == 64 and len(pod_id) == 64, chaos.failures
    # What the killed `pod pod rm` left: the record marked as its first step does, the
    # member's runtime side gone (and with its bundle, its place in "members"), its
    # storage record dropped and the rest of its storage not yet.
    record = Path(chaos_env["PODKIT_ROOT"]) / "runtime" / "pods" / pod_id / "pod.json"
    pod = atomic.read_json(record)
    atomic.write_json(record, {**pod, "removing": True, "removing_members": [cid]})
    assert chaos.must(f"pod-runtime rm {cid} >/dev/null", "runtime-rm"), chaos.failures
    assert cid not in atomic.read_json(record)["members"]
    _drop_storage_record(chaos_env, cid)
    assert chaos.must("pod pod rm -f -t 0 halfpod3", "pod-rm"), chaos.failures
    chaos.check_clean("pod-rm")
    assert chaos.run("pod ps -a -q").stdout.strip() == b""
    assert chaos.failures == [] and checker.check() == []


def test_the_next_create_sweeps_what_a_killed_pod_create_left_in_the_store(
        images, chaos_env, tmp_path):
    """`pod pod create` killed inside its infra's storage create (soak seed 1930499760):
    a container directory and name with no record, of a pod nobody knows. The retried
    `pod pod create` did not know it either, and `pod system check` reported it for
    ever. A create now holds the container's lock from the name to the record, and the
    next create finishes any recordless container whose lock nobody holds."""
    from pathlib import Path

    checker = LeakChecker(tmp_path, chaos_env)
    chaos = Chaos(chaos_env, image_of(images), 0)
    made = chaos.run(f"pod-image-pull --tls-verify=false docker://{image_of(images)} | "
                     "pod-storage import | pod-storage create --name ghost-infra")
    assert made.returncode == 0, made.stderr
    cid = jsonio.loads(made.stdout)["container"]["id"]
    _drop_storage_record(chaos_env, cid)
    report = jsonio.loads(chaos.run("pod system check").stdout)
    assert {"incomplete-container", "orphan-name"} <= {p["kind"] for p in report["problems"]}
    assert chaos.must("pod pod create --name swept --network none", "pod-create")
    assert not (Path(chaos_env["PODKIT_ROOT"]) / "containers" / cid).exists()
    chaos.check_clean("pod-create")
    assert chaos.must(f"pod create --tls-verify=false --name ghost-infra {image_of(images)} "
                      "true", "create")
    assert chaos.must("pod rm ghost-infra", "rm")
    assert chaos.must("pod pod rm -f swept", "pod-rm")
    assert chaos.failures == [] and checker.check() == []
