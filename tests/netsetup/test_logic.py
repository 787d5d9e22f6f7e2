"""Pure logic of pod-netsetup: subnet choice, conflists, ports, the CNI chain, hosts blocks.

The CNI chain tests swap the plugin runner (the one seam) for a recorder; everything
that touches plugins for real is in the root-marked test files.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_netsetup import _subnets
from podkit_netsetup._cni import CniRuntime, RuntimeConf, plugin_stdin, result_summary
from podkit_netsetup._members import hosts_lines, replace_block
from podkit_netsetup._networks import NetworkSpec, build_conflist, conflicts_with
from podkit_netsetup._ports import parse_publish, port_mappings
from podkit_runtime._netfiles import hosts_block, resolv_text

net = ipaddress.ip_network


def test_the_first_free_subnet_skips_reserved_used_and_routed_ones():
    used = [net("10.99.0.0/24"), net("10.99.2.0/23")]
    routes = [net("0.0.0.0/0"), net("10.99.1.0/28"), net("192.0.2.0/24")]
    assert _subnets.pick_subnet(used, routes) == net("10.99.4.0/24")


def test_a_route_covering_the_whole_pool_block_moves_on_to_the_next_block():
    assert _subnets.pick_subnet([], [net("10.99.0.0/16")]) == net("10.100.0.0/24")


def test_podmans_subnets_are_never_chosen_even_from_a_pool_that_holds_them():
    pool = [net("10.88.0.0/15"), net("10.90.0.0/24")]
    assert _subnets.pick_subnet([], [], pool=pool) == net("10.90.0.0/24")


def test_an_exhausted_pool_says_so():
    with pytest.raises(errors.ResourceExhausted):
        _subnets.pick_subnet([net("10.99.0.0/24")], [], pool=[net("10.99.0.0/24")])


def test_proc_net_route_is_parsed():
    text = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"
            "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n")
    assert _subnets.parse_proc_route(text) == [net("0.0.0.0/0"), net("192.0.2.0/24")]


def test_a_subnet_picked_on_this_host_overlaps_none_of_its_routes():
    routes = _subnets.host_routes()
    chosen = _subnets.pick_subnet([], routes)
    assert not any(chosen.overlaps(r) for r in routes if r.prefixlen)
    assert not chosen.overlaps(net("10.88.0.0/16"))


def test_bridge_names_are_short_unique_and_never_podmans(tmp_path):
    a = _subnets.bridge_name(tmp_path / "a", "web")
    b = _subnets.bridge_name(tmp_path / "b", "web")
    assert a != b and len(a) <= 15 and a.startswith("pk")


def test_the_conflist_has_podmans_shape_at_cni_1_0_0():
    spec = NetworkSpec("web", options={"mtu": "1400"})
    conf = build_conflist(spec, net("10.99.7.0/24"), "10.99.7.1", "pkabc", Path("/d"), "t")
    assert conf["cniVersion"] == "1.0.0" and conf["name"] == "web"
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    bridge = conf["plugins"][0]
    assert bridge["ipMasq"] is True and bridge["mtu"] == 1400
    assert bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.99.7.0/24", "gateway": "10.99.7.1"}]]
    assert bridge["ipam"]["dataDir"] == "/d"


def test_an_internal_network_has_no_default_route_and_no_masquerade():
    conf = build_conflist(NetworkSpec("in", internal=True, ip_range="10.99.7.128/25"),
                          net("10.99.7.0/24"), "10.99.7.1", "pkabc", Path("/d"), "t")
    bridge = conf["plugins"][0]
    assert bridge["ipMasq"] is False and bridge["ipam"]["routes"] == []
    rng = bridge["ipam"]["ranges"][0][0]
    assert (rng["rangeStart"], rng["rangeEnd"]) == ("10.99.7.129", "10.99.7.254")


def test_ensure_compares_only_what_was_asked():
    conf = build_conflist(NetworkSpec("n", internal=True), net("10.99.7.0/24"), "10.99.7.1",
                          "pkabc", Path("/d"), "t")
    assert conflicts_with(NetworkSpec("n", internal=True), conf) == []
    assert conflicts_with(NetworkSpec("n", internal=True, subnet="10.99.7.0/24"), conf) == []
    assert conflicts_with(NetworkSpec("n"), conf)
    assert conflicts_with(NetworkSpec("n", internal=True, subnet="10.99.8.0/24"), conf)


@pytest.mark.parametrize("spec,expected", [
    ("8080:80", [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    ("127.0.0.1:8080:80/udp",
     [{"hostPort": 8080, "containerPort": 80, "protocol": "udp", "hostIP": "127.0.0.1"}]),
    ("9000-9001:90-91", [{"hostPort": 9000, "containerPort": 90, "protocol": "tcp"},
                         {"hostPort": 9001, "containerPort": 91, "protocol": "tcp"}]),
    ("127.0.0.1::80", [{"hostPort": 40000, "containerPort": 80, "protocol": "tcp",
                        "hostIP": "127.0.0.1"}]),
    ("80", [{"hostPort": 40000, "containerPort": 80, "protocol": "tcp"}]),
])
def test_publish_specs_expand_like_podman(spec, expected):
    assert parse_publish(spec, allocate=lambda ip, proto: 40000) == expected


@pytest.mark.parametrize("spec", ["8080:80/icmp", "1-3:80", "x:80", "1:2:3:4", "70000:80"])
def test_bad_publish_specs_are_usage_errors(spec):
    with pytest.raises(errors.UsageError):
        parse_publish(spec)


def test_publish_all_maps_exposed_ports_and_refuses_duplicates():
    counter = iter(range(41000, 42000))
    image = {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}
    got = port_mappings(["8080:80"], True, image, allocate=lambda ip, p: next(counter))
    assert {(m["containerPort"], m["protocol"]) for m in got} == {(80, "tcp"), (53, "udp")}
    with pytest.raises(errors.Conflict):
        port_mappings(["8080:80", "8080:81"], False, {})


def test_a_plugin_gets_only_the_capabilities_it_declares_and_the_previous_result():
    conflist = {"cniVersion": "1.0.0", "name": "n", "plugins": []}
    rt = RuntimeConf("c" * 64, "/ns", "eth0",
                     capability_args={"portMappings": [1], "ips": ["10.0.0.2/24"]})
    plugin = {"type": "portmap", "capabilities": {"portMappings": True, "ips": False}}
    conf = plugin_stdin(plugin, conflist, rt, {"cniVersion": "1.0.0"})
    assert conf["runtimeConfig"] == {"portMappings": [1]}
    assert conf["prevResult"] == {"cniVersion": "1.0.0"} and conf["name"] == "n"
    assert "runtimeConfig" not in plugin_stdin({"type": "firewall"}, conflist, rt, None)


class Recorder:
    """Stands in for the plugin binaries: records each call, fails where told."""

    def __init__(self, fail: set[tuple[str, str]] = frozenset()) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.fail = fail

    def __call__(self, binary, env, stdin):
        kind = Path(binary).name
        conf = jsonio.loads(stdin)
        self.calls.append((env["CNI_COMMAND"], kind, conf))
        assert env["CNI_ARGS"].startswith("IgnoreUnknown=1")
        if (env["CNI_COMMAND"], kind) in self.fail:
            return 1, b'{"code": 11, "msg": "broken on purpose"}', b""
        if env["CNI_COMMAND"] == "ADD":
            prev = conf.get("prevResult") or {"cniVersion": "1.0.0", "ips": []}
            return 0, jsonio.dumps({**prev, "seen": [*prev.get("seen", []), kind]}), b""
        return 0, b"", b""


@pytest.fixture
def fake_plugins(tmp_path):
    for kind in ("bridge", "portmap", "firewall", "tuning"):
        p = tmp_path / "plugins" / kind
        p.parent.mkdir(exist_ok=True)
        p.write_text("#!/bin/false\n")
        p.chmod(0o755)
    return [str(tmp_path / "plugins")]


CHAIN = {"cniVersion": "1.0.0", "name": "n",
         "plugins": [{"type": "bridge"}, {"type": "portmap"}, {"type": "firewall"},
                     {"type": "tuning"}]}


def test_add_runs_in_order_passing_each_result_on(fake_plugins):
    rec = Recorder()
    result = CniRuntime(dirs=fake_plugins, runner=rec).add(CHAIN, RuntimeConf("c", "/ns", "eth0"))
    assert [k for _, k, _ in rec.calls] == ["bridge", "portmap", "firewall", "tuning"]
    assert "prevResult" not in rec.calls[0][2]
    assert rec.calls[3][2]["prevResult"]["seen"] == ["bridge", "portmap", "firewall"]
    assert result["seen"] == ["bridge", "portmap", "firewall", "tuning"]


def test_del_runs_in_reverse_and_carries_on_past_a_failing_plugin(fake_plugins):
    rec = Recorder(fail={("DEL", "portmap")})
    failures = CniRuntime(dirs=fake_plugins, runner=rec).delete(
        CHAIN, RuntimeConf("c", "/ns", "eth0"), {"cniVersion": "1.0.0", "x": 1})
    assert [k for _, k, _ in rec.calls] == ["tuning", "firewall", "portmap", "bridge"]
    assert all(c[2]["prevResult"] == {"cniVersion": "1.0.0", "x": 1} for c in rec.calls)
    assert len(failures) == 1 and "broken on purpose" in failures[0]


def test_a_failing_add_is_a_runtime_failure_naming_the_plugin(fake_plugins):
    rec = Recorder(fail={("ADD", "firewall")})
    with pytest.raises(errors.RuntimeFailure, match=r"n/firewall.*broken on purpose"):
        CniRuntime(dirs=fake_plugins, runner=rec).add(CHAIN, RuntimeConf("c", "/ns", "eth0"))


def test_result_summary_takes_the_sandbox_interface():
    result = {"interfaces": [{"name": "pk1", "mac": "aa"}, {"name": "veth", "mac": "bb"},
                             {"name": "eth0", "mac": "cc", "sandbox": "/ns"}],
              "ips": [{"address": "10.99.0.5/24", "gateway": "10.99.0.1", "interface": 2}]}
    assert result_summary(result, "eth0") == {"interface": "eth0", "mac": "cc",
                                              "addresses": ["10.99.0.5/24"],
                                              "gateway": "10.99.0.1"}


def test_the_members_block_is_replaced_and_the_rest_kept():
    base = "127.0.0.1\tlocalhost\n"
    lines = hosts_lines({"b": {"name": "web", "hostname": "bbbb", "addresses": ["10.9.0.3/24"]},
                         "a": {"name": "db", "hostname": "aaaa", "addresses": ["10.9.0.2/24"]}})
    assert lines == ["10.9.0.2\tdb aaaa", "10.9.0.3\tweb bbbb"]
    once = replace_block(base, lines)
    assert once.startswith(base) and "10.9.0.3\tweb bbbb" in once
    assert replace_block(replace_block(once, lines[:1]), []) == base


def test_runtime_hosts_and_resolv_conf_from_the_network_section():
    section = {"hosts": [{"name": "db", "ip": "10.1.1.1"}],
               "networks": [{"addresses": ["10.99.0.2/24"]}]}
    assert hosts_block(section, "h") == ["10.1.1.1\tdb", "10.99.0.2\th"]
    old = "search example.org\nnameserver 192.0.2.53\noptions rotate\n"
    new = resolv_text(old, {"servers": ["10.0.0.53"], "search": ["a.test"], "options": []})
    assert new == "options rotate\nsearch a.test\nnameserver 10.0.0.53\n"
    assert resolv_text(old, {"servers": [], "search": [], "options": []}) == old


def test_macvlan_and_ipvlan_conflists_name_their_parent_and_skip_port_plugins():
    spec = NetworkSpec("mv", driver="macvlan", internal=True, options={"mode": "bridge"})
    conf = build_conflist(spec, net("10.99.9.0/24"), "10.99.9.1", "eth9", Path("/d"), "t")
    assert [p["type"] for p in conf["plugins"]] == ["macvlan", "tuning"]
    assert conf["plugins"][0]["master"] == "eth9" and conf["plugins"][0]["mode"] == "bridge"
    ipvlan = build_conflist(NetworkSpec("iv", driver="ipvlan"), net("10.99.9.0/24"),
                            "10.99.9.1", "eth9", Path("/d"), "t")
    assert ipvlan["plugins"][0]["type"] == "ipvlan"


def test_the_public_api_is_pinned():
    import podkit_netsetup

    assert sorted(podkit_netsetup.__all__) == [
        "AttachOptions", "NetworkSpec", "NetworkStore", "attach", "begin_attach",
        "check_networks", "cleanup", "detach", "network_status"]
    for name in podkit_netsetup.__all__:
        assert getattr(podkit_netsetup, name) is not None


def test_every_command_has_help():
    import typer

    from podkit_netsetup.cli import app

    def walk(cmd, path=()):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    found = dict(walk(typer.main.get_command(app)))
    assert {("attach",), ("detach",), ("check",), ("status",), ("cleanup",),
            ("network", "create"), ("network", "ls"), ("network", "inspect"),
            ("network", "rm"), ("network", "prune"), ("network", "exists")} <= set(found)
    assert all((cmd.help or "").strip() for cmd in found.values())
