"""Idle CNI plugins are left out of ADD and DEL alike: the pure plan, and with the real
plugins the attachment record holds the chain that ran and DEL leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_netsetup._plugin_plan import active_conflist, plugin_is_idle
from tests.netsetup.conftest import container_doc, iptables_rules, leftover_rules
from tests.netsetup.test_attach import attach, detach, leases, make_network, new_id

BRIDGE = {"type": "bridge", "bridge": "pk0", "ipam": {"type": "host-local"}}
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}}
FIREWALL = {"type": "firewall", "backend": "iptables"}
TUNING = {"type": "tuning", "capabilities": {"mac": True}}
CONFLIST = {"cniVersion": "1.0.0", "name": "n", "plugins": [BRIDGE, PORTMAP, FIREWALL, TUNING]}
PORTS = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]


def types(conflist: dict) -> list[str]:
    return [p["type"] for p in conflist["plugins"]]


def test_without_ports_or_mac_only_bridge_and_firewall_run() -> None:
    ran, skipped = active_conflist(CONFLIST, {}, [["K8S_POD_NAME", "c"]])
    assert types(ran) == ["bridge", "firewall"]
    assert skipped == ["portmap", "tuning"]
    assert types(CONFLIST) == ["bridge", "portmap", "firewall", "tuning"]  # not mutated


@pytest.mark.parametrize(("caps", "args", "want"), [
    ({"portMappings": PORTS}, [], ["bridge", "portmap", "firewall"]),
    ({"mac": "02:42:ac:11:00:02"}, [], ["bridge", "firewall", "tuning"]),
    ({}, [["MAC", "02:42:ac:11:00:02"]], ["bridge", "firewall", "tuning"]),
    ({"portMappings": []}, [["MAC", ""]], ["bridge", "firewall"]),
])
def test_a_plugin_with_input_for_this_container_runs(caps, args, want) -> None:
    assert types(active_conflist(CONFLIST, caps, args)[0]) == want


@pytest.mark.parametrize("plugin", [
    {**TUNING, "sysctl": {"net.ipv4.conf.eth0.rp_filter": "1"}},
    {**TUNING, "mtu": 1400},
    {**PORTMAP, "snat": False},
    {"type": "portmap"},  # declares no capability but is otherwise bare: still idle
])
def test_configured_or_unknown_plugins_are_never_skipped(plugin) -> None:
    idle = plugin_is_idle(plugin, {}, [])
    assert idle is (plugin == {"type": "portmap"})
    assert not plugin_is_idle({"type": "firewall"}, {}, [])
    assert not plugin_is_idle({"type": "bandwidth", "capabilities": {"bandwidth": True}}, {}, [])


def test_a_capability_the_plugin_does_not_declare_does_not_wake_it() -> None:
    bare = {"type": "portmap", "capabilities": {"portMappings": False}}
    assert plugin_is_idle(bare, {"portMappings": PORTS}, [])


def test_the_first_plugin_always_stays() -> None:
    only = {"cniVersion": "1.0.0", "name": "n", "plugins": [PORTMAP, TUNING]}
    ran, skipped = active_conflist(only, {}, [])
    assert types(ran) == ["portmap"] and skipped == ["tuning"]


def _record(env: dict, cid: str) -> dict:
    path = Path(env["PODKIT_RUNROOT"]) / "netsetup" / "attachments" / f"{cid}.json"
    return jsonio.loads(path.read_bytes())


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.parametrize("extra", ["", "-p 127.0.0.1::80"])
def test_the_record_holds_the_chain_that_ran_and_detach_leaves_nothing(net_env, extra,
                                                                       tmp_path):
    net = make_network(net_env)
    # every plugin is the real one behind a wrapper that logs "COMMAND type"
    plugins, calls = tmp_path / "plugins", tmp_path / "calls.log"
    plugins.mkdir()
    for kind in ("bridge", "host-local", "portmap", "firewall", "tuning", "loopback"):
        (plugins / kind).write_text(f'#!/bin/sh\necho "$CNI_COMMAND {kind}" >> {calls}\n'
                                    f"exec /usr/lib/cni/{kind}\n")
        (plugins / kind).chmod(0o755)
    env = {**net_env, "PODKIT_CNI_PATH": str(plugins)}
    doc = container_doc(new_id(), "planned")
    cid = doc["container"]["id"]
    before = iptables_rules()
    proc = attach(env, doc, f"--network {net['name']} {extra}")
    assert proc.returncode == 0, proc.stderr.decode()
    out = jsonio.loads(proc.stdout)
    [entry] = _record(net_env, cid)["networks"]
    if extra:
        assert types(entry["conflist"]) == ["bridge", "portmap", "firewall"]
        assert entry["skipped_plugins"] == ["tuning"]
        assert out["network"]["ports"]
    else:
        assert types(entry["conflist"]) == ["bridge", "firewall"]
        assert entry["skipped_plugins"] == ["portmap", "tuning"]
    address = out["network"]["networks"][0]["addresses"][0].split("/")[0]
    assert len(leases(net_env, net["name"])) == 1
    detach(env, out)
    ran = [t for t in types(entry["conflist"]) if t != "bridge"]
    assert [line for line in calls.read_text().splitlines()
            if "host-local" not in line and "bridge" not in line] \
        == [f"ADD {t}" for t in ran] + [f"DEL {t}" for t in reversed(ran)]
    assert leases(net_env, net["name"]) == []
    assert leftover_rules(before, iptables_rules(), address) == []
    assert leftover_rules(before, iptables_rules(), cid) == []
