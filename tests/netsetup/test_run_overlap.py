"""`pod run` on a bridge network with CNI ADD overlapped with runc create, and DEL with
the removal: the container still sees its own address, and every failure, in either
branch, leaves nothing behind (no namespace, lease, record, rule, runc container).

Every network here is --internal (no default route, no masquerade). Plugin failures and
a plugin that hangs are made by a wrapper script named like the real plugin, placed
first on PODKIT_CNI_PATH; everything else is the real plugins, runc and conmon.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.roots import Roots
from tests.netsetup.conftest import SCHEMAS, iptables_rules, leftover_rules
from tests.netsetup.test_attach import leases, make_network
from tests.testbed.procs import is_alive
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.runc, pytest.mark.overlay,
              pytest.mark.registry]

REAL_PLUGINS = "/usr/lib/cni"


def wrapped_plugins(tmp_path: Path, plugin: str, on_add: str) -> str:
    """A PODKIT_CNI_PATH whose ``plugin`` runs ``on_add`` (shell) for ADD and is the
    real plugin for every other command."""
    folder = tmp_path / "cni-wrap"
    folder.mkdir(exist_ok=True)
    script = folder / plugin
    script.write_text("#!/bin/sh\n"
                      f'if [ "$CNI_COMMAND" = ADD ]; then\n{on_add}\nfi\n'
                      f"exec {REAL_PLUGINS}/{plugin}\n")
    script.chmod(0o755)
    return f"{folder}:{REAL_PLUGINS}"


def leftovers(env: dict[str, str], network: str) -> dict[str, list[str]]:
    """What a finished `pod run --rm` must not leave: namespaces, attachment records,
    leases, runc containers, containers in `pod ps -a`."""
    runroot = Path(env["PODKIT_RUNROOT"])

    def names(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    ps = sh("pod ps -a --format json", env=env)
    assert ps.returncode == 0, ps.stderr.decode()
    return {"netns": names(runroot / "netns"),
            "records": names(runroot / "netsetup" / "attachments"),
            "leases": leases(env, network),
            "runc": [n for n in names(runroot / "runc") if len(n) == 64],
            "ps": [c["Id"] for c in jsonio.loads(ps.stdout or b"[]")]}


NOTHING = {"netns": [], "records": [], "leases": [], "runc": [], "ps": []}


def subnet_prefix(net: dict) -> str:
    return net["subnets"][0]["subnet"].rsplit(".", 1)[0] + "."


def test_run_rm_sees_its_own_address_and_leaves_nothing(images, net_env):
    net = make_network(net_env)
    before = iptables_rules()
    ref = images.ref("busybox:latest").removeprefix("docker://")
    script = "cat /etc/hosts; echo ADDR; ip -o -4 addr show eth0"
    proc = sh(f"pod run --rm --tls-verify=false --network {net['name']} --hostname h1 "
              f"--add-host db.test:10.1.2.3 {ref} sh -c {shlex.quote(script)}", env=net_env)
    assert proc.returncode == 0, proc.stderr.decode()
    hosts, addr = proc.stdout.decode().split("ADDR")
    ip = addr.split("inet ")[1].split("/")[0]
    assert ip.startswith(subnet_prefix(net))
    # Written in place after ADD, while the container was already created.
    assert f"{ip}\th1" in hosts
    assert "10.1.2.3\tdb.test" in hosts
    assert leftovers(net_env, net["name"]) == NOTHING
    assert leftover_rules(before, iptables_rules(), subnet_prefix(net)) == []
    cleaned = sh("pod-netsetup cleanup", env=net_env)  # nothing stale for it to find
    assert cleaned.returncode == 0, cleaned.stderr.decode()
    assert jsonio.loads(cleaned.stdout)["released"] == []


def test_detached_run_keeps_the_complete_network_in_its_record(images, net_env):
    from podkit_runtime._state import load_record

    net = make_network(net_env)
    before = iptables_rules()
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = sh(f"pod run -d --tls-verify=false --network {net['name']} --hostname h2 {ref} "
              "sh -c 'cat /etc/hosts'", env=net_env)
    assert proc.returncode == 0, proc.stderr.decode()
    cid = proc.stdout.decode().strip()
    roots = Roots(Path(net_env["PODKIT_ROOT"]), Path(net_env["PODKIT_RUNROOT"]))
    section = load_record(roots, cid)["doc"]["network"]
    SCHEMAS.validate({"changed": True, "container": {"id": cid}, "network": section},
                     "urn:podkit:netsetup:network")
    [att] = section["networks"]
    ip = att["addresses"][0].split("/")[0]
    waited = sh(f"pod wait {cid}", env=net_env)
    assert waited.stdout.decode().strip() == "0", waited.stderr.decode()
    logs = sh(f"pod logs {cid}", env=net_env)
    assert f"{ip}\th2" in logs.stdout.decode()
    # conmon's exit command (`pod cleanup`) released the network when it exited
    assert leases(net_env, net["name"]) == []
    assert sh(f"pod rm {cid}", env=net_env).returncode == 0
    assert leftovers(net_env, net["name"]) == NOTHING
    assert leftover_rules(before, iptables_rules(), subnet_prefix(net)) == []


def test_a_failing_plugin_undoes_the_created_container(images, net_env, tmp_path):
    net = make_network(net_env)
    before = iptables_rules()
    env = {**net_env, "PODKIT_CNI_PATH": wrapped_plugins(
        tmp_path, "firewall",
        """echo '{"cniVersion":"1.0.0","code":999,"msg":"test firewall says no"}'; exit 1""")}
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = sh(f"pod run --rm --tls-verify=false --network {net['name']} {ref} sh -c true", env=env)
    assert proc.returncode == 125
    assert "test firewall says no" in proc.stderr.decode()
    assert leftovers(env, net["name"]) == NOTHING
    assert leftover_rules(before, iptables_rules(), subnet_prefix(net)) == []
    # without --rm the storage container stays (as podman's does), nothing else
    kept = sh(f"pod run --name kept --tls-verify=false --network {net['name']} {ref} sh -c true",
              env=env)
    assert kept.returncode == 125
    left = leftovers(env, net["name"])
    assert len(left.pop("ps")) == 1
    assert left == {k: v for k, v in NOTHING.items() if k != "ps"}


def test_a_failing_create_undoes_the_network(images, net_env):
    net = make_network(net_env)
    before = iptables_rules()
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = sh(f"pod run --rm --tls-verify=false --network {net['name']} {ref} /no/such/cmd",
              env=net_env)
    assert proc.returncode == 127, proc.stderr.decode()
    assert leftovers(net_env, net["name"]) == NOTHING
    assert leftover_rules(before, iptables_rules(), subnet_prefix(net)) == []


def test_kill_9_during_add_is_released_by_cleanup(images, net_env, tmp_path):
    """kill -9 of `pod run` while a plugin runs and the container is created: the
    record written before ADD lets `pod-netsetup cleanup` DEL it; `pod rm -f` removes
    the created container; nothing is left."""
    net = make_network(net_env)
    before = iptables_rules()
    marker = tmp_path / f"plugin-{uuid.uuid4().hex[:6]}.pid"
    env = {**net_env, "PODKIT_CNI_PATH": wrapped_plugins(
        tmp_path, "firewall", f"echo $$ > {marker}; exec sleep 300")}
    ref = images.ref("busybox:latest").removeprefix("docker://")
    runner = subprocess.Popen(
        ["pod", "run", "--rm", "--name", "k9", "--tls-verify=false", "--network",
         net["name"], ref, "sh", "-c", "true"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    plugin_pid = 0
    try:
        pause = threading.Event()

        def created() -> bool:  # the runtime's record: runc create is over
            ps = sh("pod ps -a --format json", env=net_env)
            return any(c.get("State") == "created" for c in jsonio.loads(ps.stdout or b"[]"))

        # The plugin hangs: both branches are in flight until the kill.
        while runner.poll() is None and not (marker.exists() and created()):
            pause.wait(0.05)
        assert runner.poll() is None, "pod run ended before the kill"
        plugin_pid = int(marker.read_text().split()[0])
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        if plugin_pid and is_alive(plugin_pid):
            os.kill(plugin_pid, signal.SIGKILL)
    cleaned = sh("pod-netsetup cleanup", env=net_env)
    assert cleaned.returncode == 0, cleaned.stderr.decode()
    SCHEMAS.validate(jsonio.loads(cleaned.stdout), "urn:podkit:netsetup:cleanup")
    removed = sh("pod rm -f k9", env=net_env)
    assert removed.returncode == 0, removed.stderr.decode()
    assert leftovers(net_env, net["name"]) == NOTHING
    assert leftover_rules(before, iptables_rules(), subnet_prefix(net)) == []


def test_begin_attach_gives_the_namespace_before_the_plugins_run(net_env):
    from podkit_netsetup import AttachOptions, begin_attach, detach
    from tests.netsetup.conftest import container_doc

    net = make_network(net_env)
    roots = Roots(Path(net_env["PODKIT_ROOT"]), Path(net_env["PODKIT_RUNROOT"]))
    cid = uuid.uuid4().hex * 2
    pending = begin_attach(container_doc(cid, "early"), AttachOptions(network=net["name"]),
                           roots=roots)
    early = pending.doc["network"]
    assert early["mode"] == "bridge" and early["networks"] == []
    assert Path(early["netns"]).exists()
    record = jsonio.loads((roots.runroot / "netsetup" / "attachments" /
                           f"{cid}.json").read_bytes())
    assert record["complete"] is False
    assert leases(net_env, net["name"]) == []
    worker = threading.Thread(target=pending.run_plugins)
    worker.start()
    worker.join()
    doc = pending.complete()
    SCHEMAS.validate(doc, "urn:podkit:netsetup:network")
    [att] = doc["network"]["networks"]
    assert [a.split("/")[0] for a in att["addresses"]] == leases(net_env, net["name"])
    assert doc["network"]["netns"] == early["netns"]
    detach(doc, roots=roots)
    assert leases(net_env, net["name"]) == []
    assert not Path(early["netns"]).exists()


def test_abort_before_the_plugins_ran_leaves_nothing(net_env):
    from podkit_netsetup import AttachOptions, begin_attach
    from tests.netsetup.conftest import container_doc

    net = make_network(net_env)
    roots = Roots(Path(net_env["PODKIT_ROOT"]), Path(net_env["PODKIT_RUNROOT"]))
    cid = uuid.uuid4().hex * 2
    pending = begin_attach(container_doc(cid, "aborted"),
                           AttachOptions(network=net["name"]), roots=roots)
    netns = Path(pending.doc["network"]["netns"])
    assert netns.exists()
    assert pending.abort() == []
    assert not netns.exists()
    assert not (roots.runroot / "netsetup" / "attachments" / f"{cid}.json").exists()
