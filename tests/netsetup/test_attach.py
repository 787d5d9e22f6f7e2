"""attach/detach/check/status with the real CNI plugins, on bare network namespaces
(no container runtime: the network stage alone). Every network is --internal."""

from __future__ import annotations

import ipaddress
import os
import shlex
import signal
import subprocess
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_netsetup._links import delete_link
from tests.netsetup.conftest import (
    SCHEMAS,
    container_doc,
    iptables_rules,
    leftover_rules,
    nsexec,
)
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.netns]


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def make_network(env, *extra: str) -> dict:
    name = f"t{uuid.uuid4().hex[:8]}"
    proc = sh(f"pod-netsetup network create {name} --internal {' '.join(extra)}", env=env)
    assert proc.returncode == 0, proc.stderr
    return jsonio.loads(proc.stdout)["network"]


def attach(env, doc: dict, args: str) -> subprocess.CompletedProcess[bytes]:
    return sh(f"pod-netsetup attach {args}", env=env, input=jsonio.dumps(doc))


def attached(env, args: str, name: str = "c") -> dict:
    proc = attach(env, container_doc(new_id(), name), args)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = jsonio.loads(proc.stdout)
    SCHEMAS.validate(doc, "urn:podkit:netsetup:network")
    return doc


def detach(env, doc: dict) -> dict:
    proc = sh("pod-netsetup detach", env=env, input=jsonio.dumps(doc))
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)


def leases(env, network: str) -> list[str]:
    d = Path(env["PODKIT_ROOT"]) / "netsetup" / "ipam" / network
    return sorted(p.name for p in d.iterdir()
                  if p.name != "lock" and not p.name.startswith("last_reserved")) \
        if d.is_dir() else []


def test_attach_gives_an_address_without_default_route_and_detach_leaves_nothing(net_env):
    net = make_network(net_env)
    before = iptables_rules()
    doc = attached(net_env, f"--network {net['name']} -p 127.0.0.1:0:80".replace(":0:", "::"))
    section = doc["network"]
    assert section["mode"] == "bridge" and doc["changed"] is True
    [att] = section["networks"]
    ip = att["addresses"][0].split("/")[0]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(net["subnets"][0]["subnet"])
    assert att["gateway"] == net["subnets"][0]["gateway"] and att["mac"]
    netns = section["netns"]
    assert netns.startswith(net_env["PODKIT_RUNROOT"])
    addr = nsexec(netns, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert f"{ip}/" in addr
    routes = nsexec(netns, "ip", "-4", "route").stdout
    assert "default" not in routes, routes  # --internal: nothing beyond the subnet
    assert leases(net_env, net["name"]) == [ip]
    cid = doc["container"]["id"]
    during = iptables_rules()
    assert leftover_rules(before, during, cid)  # portmap's DNAT names the container
    out = detach(net_env, doc)
    assert out["network"]["attached"] is False and "warnings" not in out["network"]
    assert not Path(netns).exists()
    assert leases(net_env, net["name"]) == []
    after = iptables_rules()
    assert leftover_rules(before, after, cid) == []
    assert leftover_rules(before, after, ip) == []
    assert not any(ip in line for line in after - before)
    # detach again: nothing to do
    assert detach(net_env, {**doc, "changed": False})["changed"] is False


def test_a_published_port_on_127_0_0_1_reaches_a_server_in_the_namespace(net_env, tmp_path):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']} -p 127.0.0.1::8080")
    [port] = doc["network"]["ports"]
    assert port["hostIP"] == "127.0.0.1" and port["containerPort"] == 8080
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello through portmap\n")
    server = subprocess.Popen(["nsenter", f"--net={doc['network']['netns']}", "busybox",
                               "httpd", "-f", "-p", "8080", "-h", str(www)])
    try:
        body = fetch(f"http://127.0.0.1:{port['hostPort']}/")
    finally:
        server.kill()
        server.wait()
    assert body == "hello through portmap\n"
    detach(net_env, doc)


def fetch(url: str, attempts: int = 100) -> str:
    """GET url, retrying while the server starts (not a timing assertion)."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"{url}: {last}")


def test_static_ip_and_mac_are_honoured_and_conflicts_refused(net_env):
    net = make_network(net_env)
    subnet = ipaddress.ip_network(net["subnets"][0]["subnet"])
    static, outside = str(subnet[77]), str(subnet.broadcast_address + 5)
    doc = attached(net_env, f"--network {net['name']} --ip {static} "
                            "--mac-address 02:42:ac:11:00:77")
    [att] = doc["network"]["networks"]
    assert att["addresses"] == [f"{static}/{subnet.prefixlen}"]
    link = nsexec(doc["network"]["netns"], "ip", "-o", "link", "show", "dev", "eth0").stdout
    assert "02:42:ac:11:00:77" in link
    taken = attach(net_env, container_doc(new_id(), "d"), f"--network {net['name']} "
                                                          f"--ip {static}")
    assert taken.returncode == 5, taken.stderr
    refused = attach(net_env, container_doc(new_id(), "e"),
                     f"--network {net['name']} --ip {outside}")
    assert refused.returncode == 5 and b"outside" in refused.stderr
    # a refused attach leaves no namespace and no lease behind
    assert leases(net_env, net["name"]) == [static]
    assert len(list((Path(net_env["PODKIT_RUNROOT"]) / "netns").iterdir())) == 1
    detach(net_env, doc)


def test_two_namespaces_on_one_network_reach_each_other(net_env):
    net = make_network(net_env)
    a = attached(net_env, f"--network {net['name']}", "a")
    b = attached(net_env, f"--network {net['name']}", "b")
    ip_b = b["network"]["networks"][0]["addresses"][0].split("/")[0]
    ping = nsexec(a["network"]["netns"], "busybox", "ping", "-c", "1", "-W", "5", ip_b)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    for d in (a, b):
        detach(net_env, d)


def test_check_status_and_network_rm_while_attached(net_env):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']}")
    check = sh("pod-netsetup check", env=net_env, input=jsonio.dumps(doc))
    assert check.returncode == 0, check.stderr
    assert jsonio.loads(check.stdout)["network"]["check"][0]["ok"] is True
    status = sh("pod-netsetup status", env=net_env, input=jsonio.dumps(doc))
    st = jsonio.loads(status.stdout)
    SCHEMAS.validate(st, "urn:podkit:netsetup:status")
    assert st["status"]["attached"] and st["status"]["netns_mounted"]
    busy = sh(f"pod-netsetup network rm {net['name']}", env=net_env)
    assert busy.returncode == 5
    before_rm = iptables_rules()
    forced = sh(f"pod-netsetup network rm --force {net['name']}", env=net_env)
    assert forced.returncode == 0, forced.stderr
    assert not Path("/sys/class/net", net["network_interface"]).exists()
    ip = doc["network"]["networks"][0]["addresses"][0].split("/")[0]
    assert not any(ip in line for line in iptables_rules() if line in before_rm
                   and "CNI-FORWARD" in line and f"{ip}/32" in line)
    # the container's DEL ran: detach now only removes the namespace
    out = detach(net_env, doc)
    assert not Path(doc["network"]["netns"]).exists() and "warnings" not in out["network"]


def test_network_rm_leaves_no_lease_dir_or_lock_file(net_env):
    """A removed network left host-local's directory (its lock, last_reserved_ip.0) and
    its own lock file behind, one pair per network ever made."""
    net = make_network(net_env)
    detach(net_env, attached(net_env, f"--network {net['name']}"))
    ipam = Path(net_env["PODKIT_ROOT"]) / "netsetup" / "ipam" / net["name"]
    assert (ipam / "lock").exists()
    rm = sh(f"pod-netsetup network rm {net['name']}", env=net_env)
    assert rm.returncode == 0, rm.stderr
    assert not ipam.exists()
    state = Path(net_env["PODKIT_ROOT"]) / "networks" / ".state"
    assert [p.name for p in state.iterdir() if p.name.startswith(f"{net['name']}.")] == []
    # The same name again starts over and works.
    made = sh(f"pod-netsetup network create {net['name']} --internal", env=net_env)
    assert made.returncode == 0, made.stderr
    doc = attached(net_env, f"--network {net['name']}")
    assert leases(net_env, net["name"]) == [doc["network"]["networks"][0]["addresses"][0]
                                             .split("/")[0]]
    detach(net_env, doc)
    assert sh(f"pod-netsetup network rm {net['name']}", env=net_env).returncode == 0


def test_detach_works_from_the_cache_after_the_network_is_gone(net_env):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']}")
    ip = doc["network"]["networks"][0]["addresses"][0].split("/")[0]
    conflist = Path(net_env["PODKIT_ROOT"]) / "networks" / f"{net['name']}.conflist"
    conflist.unlink()  # the config is gone; DEL must still run from the cached copy
    before = iptables_rules()
    assert any(f"{ip}/32" in line for line in before)
    detach(net_env, doc)
    assert not any(f"{ip}/32" in line for line in iptables_rules())
    assert leases(net_env, net["name"]) == []
    delete_link(net["network_interface"])  # its conflist is gone: teardown cannot see it


def test_container_and_ns_modes_share_an_existing_namespace(net_env):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']}", "first")
    cid = doc["container"]["id"]
    joined = attached(net_env, f"--network container:{cid[:12]}")
    assert joined["network"]["mode"] == "container"
    assert joined["network"]["netns"] == doc["network"]["netns"]
    by_path = attached(net_env, f"--network ns:{doc['network']['netns']}")
    assert by_path["network"]["mode"] == "ns"
    detach(net_env, joined)  # joining containers never delete the namespace
    assert Path(doc["network"]["netns"]).exists()
    detach(net_env, doc)
    missing = attach(net_env, container_doc(new_id(), "x"), "--network container:nosuch")
    assert missing.returncode == 4


def test_two_networks_give_two_interfaces(net_env):
    n1, n2 = make_network(net_env), make_network(net_env)
    doc = attached(net_env, f"--network {n1['name']},{n2['name']}")
    assert [a["interface"] for a in doc["network"]["networks"]] == ["eth0", "eth1"]
    links = nsexec(doc["network"]["netns"], "ip", "-o", "-4", "addr").stdout
    for att in doc["network"]["networks"]:
        assert att["addresses"][0] in links
    detach(net_env, doc)
    assert leases(net_env, n1["name"]) == leases(net_env, n2["name"]) == []


def test_fifty_parallel_attachments_get_distinct_addresses_and_leak_nothing(net_env):
    net = make_network(net_env)
    before = iptables_rules()
    docs = [container_doc(new_id(), f"p{i}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        procs = list(pool.map(lambda d: attach(net_env, d, f"--network {net['name']}"), docs))
    failed = [p.stderr.decode() for p in procs if p.returncode != 0]
    assert not failed, failed[:3]
    outs = [jsonio.loads(p.stdout) for p in procs]
    ips = [o["network"]["networks"][0]["addresses"][0] for o in outs]
    assert len(set(ips)) == 50
    assert len(leases(net_env, net["name"])) == 50
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda d: detach(net_env, d), outs))
    assert leases(net_env, net["name"]) == []
    assert list((Path(net_env["PODKIT_RUNROOT"]) / "netns").iterdir()) == []
    after = iptables_rules()
    subnet_prefix = net["subnets"][0]["subnet"].rsplit(".", 1)[0] + "."
    assert leftover_rules(before, after, subnet_prefix) == []
    members = sh(f"pod-netsetup network inspect {net['name']}", env=net_env)
    assert jsonio.loads(members.stdout)["members"] == {}


def test_kill_9_in_the_middle_of_add_then_cleanup_leaves_nothing(net_env, tmp_path):
    net = make_network(net_env)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for kind in ("bridge", "host-local", "portmap", "firewall", "loopback"):
        os.symlink(f"/usr/lib/cni/{kind}", plugins / kind)
    started = tmp_path / "tuning-started"
    (plugins / "tuning").write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 300\n")
    (plugins / "tuning").chmod(0o755)
    env = {**net_env, "PODKIT_CNI_PATH": str(plugins)}
    doc = container_doc(new_id(), "victim")
    before = iptables_rules()
    # a MAC address gives tuning work to do (without one the attach skips it)
    proc = subprocess.Popen(["pod-netsetup", "attach", "--network", net["name"],
                             "-p", "127.0.0.1::80", "--mac-address", "02:42:ac:11:00:66"],
                            env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    proc.stdin.write(jsonio.dumps(doc))
    proc.stdin.close()
    for _ in range(1200):  # until the chain reaches tuning: bridge, portmap, firewall done
        if started.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert started.exists(), "the attach never reached the tuning plugin"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(leases(net_env, net["name"])) == 1
    cid = doc["container"]["id"]
    assert leftover_rules(before, iptables_rules(), cid)
    clean = sh("pod-netsetup cleanup", env=net_env)
    assert clean.returncode == 0, clean.stderr
    report = jsonio.loads(clean.stdout)
    SCHEMAS.validate(report, "urn:podkit:netsetup:cleanup")
    assert report["changed"] and report["released"][0]["container_id"] == cid
    assert leases(net_env, net["name"]) == []
    assert list((Path(net_env["PODKIT_RUNROOT"]) / "netns").iterdir()) == []
    assert leftover_rules(before, iptables_rules(), cid) == []
    again = jsonio.loads(sh("pod-netsetup cleanup", env=net_env).stdout)
    assert again["changed"] is False


def test_cleanup_keeps_a_namespace_a_process_still_uses(net_env):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']}")
    holder = subprocess.Popen(["nsenter", f"--net={doc['network']['netns']}", "sleep", "300"])
    try:
        for _ in range(200):
            st = jsonio.loads(sh("pod-netsetup status", env=net_env,
                                 input=jsonio.dumps(doc)).stdout)
            if st["status"]["processes"]:
                break
            time.sleep(0.05)
        report = jsonio.loads(sh("pod-netsetup cleanup", env=net_env).stdout)
        assert report["released"] == []
    finally:
        holder.kill()
        holder.wait()
    report = jsonio.loads(sh("pod-netsetup cleanup", env=net_env).stdout)
    assert [r.get("container_id") for r in report["released"]] == [doc["container"]["id"]]
    assert not Path(doc["network"]["netns"]).exists()


def test_local_modes_need_no_plugin_and_refuse_ports(net_env):
    doc = attached(net_env, "--network none")
    assert doc["network"]["mode"] == "none" and doc["network"]["netns"] is None
    bad = attach(net_env, container_doc(new_id(), "x"), "--network host -p 80:80")
    assert bad.returncode == 2
    with_dns = attached(net_env, "--network none --dns 10.0.0.53 --add-host db:10.1.2.3 "
                                 + shlex.quote("--dns-search=a.test"))
    assert with_dns["network"]["dns"]["servers"] == ["10.0.0.53"]
    assert with_dns["network"]["hosts"] == [{"name": "db", "ip": "10.1.2.3"}]


def test_detach_carries_on_past_a_plugin_that_fails_and_reports_it(net_env, tmp_path):
    net = make_network(net_env)
    before = iptables_rules()
    doc = attached(net_env, f"--network {net['name']} -p 127.0.0.1::80")
    cid = doc["container"]["id"]
    plugins = tmp_path / "broken"
    plugins.mkdir()
    for kind in ("bridge", "host-local", "portmap", "loopback", "tuning"):
        os.symlink(f"/usr/lib/cni/{kind}", plugins / kind)
    (plugins / "firewall").write_text(
        '#!/bin/sh\necho \'{"cniVersion":"1.0.0","code":999,"msg":"firewall is broken"}\'\n'
        "exit 1\n")
    (plugins / "firewall").chmod(0o755)
    ip = doc["network"]["networks"][0]["addresses"][0].split("/")[0]
    try:
        proc = sh("pod-netsetup detach", env={**net_env, "PODKIT_CNI_PATH": str(plugins)},
                  input=jsonio.dumps(doc))
        assert proc.returncode == 0, proc.stderr
        out = jsonio.loads(proc.stdout)
        assert any("firewall is broken" in w for w in out["network"]["warnings"])
        # the plugins before and after the broken one still ran: no DNAT, lease, netns
        assert leftover_rules(before, iptables_rules(), cid) == []
        assert leases(net_env, net["name"]) == []
        assert not Path(doc["network"]["netns"]).exists()
    finally:
        for line in [r for r in iptables_rules() if f"{ip}/32" in r and r.startswith("-A")]:
            # the broken firewall never removed its rules: ours to remove by hand
            subprocess.run(["iptables", *shlex.split(line.replace("-A ", "-D ", 1))],
                           check=False)


def test_publish_all_maps_the_images_exposed_ports(net_env):
    net = make_network(net_env)
    doc = container_doc(new_id(), "exposed")
    doc["image"] = {"config": {"config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}}}
    proc = attach(net_env, doc, f"--network {net['name']} -P")
    assert proc.returncode == 0, proc.stderr
    out = jsonio.loads(proc.stdout)
    ports = {(p["containerPort"], p["protocol"]): p["hostPort"] for p in out["network"]["ports"]}
    assert set(ports) == {(80, "tcp"), (53, "udp")}
    assert all(1024 <= h <= 65535 for h in ports.values())
    rules = "\n".join(iptables_rules())
    assert f"--dport {ports[(80, 'tcp')]}" in rules
    detach(net_env, out)


def test_attaching_again_after_a_crashed_attach_undoes_the_leftovers_first(net_env):
    net = make_network(net_env)
    doc = attached(net_env, f"--network {net['name']}")
    record = Path(net_env["PODKIT_RUNROOT"]) / "netsetup" / "attachments" / \
        f"{doc['container']['id']}.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = {**jsonio.loads(record.read_bytes()), "complete": False,
               "attacher_pid": dead.pid}
    record.write_bytes(jsonio.dumps(crashed))
    again = attach(net_env, {**doc, "network": None}, f"--network {net['name']}")
    assert again.returncode == 0, again.stderr
    out = jsonio.loads(again.stdout)
    assert out["changed"] is True
    assert leases(net_env, net["name"]) == [out["network"]["networks"][0]["addresses"][0]
                                            .split("/")[0]]
    detach(net_env, out)
    assert leases(net_env, net["name"]) == []
