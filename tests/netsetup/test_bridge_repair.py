"""The logic of the half-made bridge repair (podkit_netsetup._bridge_repair) with the
plugin runner and /sys swapped out; tests/chaos/test_regressions.py runs it against the
real bridge plugin and a real half-made bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from podkit_netsetup import _bridge_repair as br
from podkit_netsetup._cni import PluginFailed

CONF = {"name": "n1", "cniVersion": "1.0.0",
        "plugins": [{"type": "bridge", "bridge": "pktest0"}, {"type": "firewall"}]}


def fake_link(base: Path, name: str, mac: str, ports: tuple[str, ...] = ()) -> None:
    link = base / name
    (link / "bridge").mkdir(parents=True)
    (link / "brif").mkdir()
    for p in ports:
        (link / "brif" / p).mkdir()
    (link / "address").write_text(mac + "\n")


def test_a_bridge_is_half_made_with_no_ports_and_the_zero_mac(tmp_path):
    fake_link(tmp_path, "zero", br.ZERO_MAC)
    fake_link(tmp_path, "pinned", "0a:58:0a:00:00:01")
    fake_link(tmp_path, "busy", br.ZERO_MAC, ports=("veth1",))
    (tmp_path / "notbridge").mkdir()
    (tmp_path / "notbridge" / "address").write_text(br.ZERO_MAC)
    assert [n for n in ("zero", "pinned", "busy", "notbridge", "absent")
            if br.half_made(n, sys_net=str(tmp_path))] == ["zero"]


def test_bridge_of_names_the_first_plugins_bridge():
    assert br.bridge_of(CONF) == "pktest0"
    assert br.bridge_of({"plugins": [{"type": "bridge"}]}) == "cni0"
    assert br.bridge_of({"plugins": [{"type": "macvlan", "master": "eth0"}]}) is None


class FakeCni:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def add(self, conflist, rt):
        self.calls.append("ADD")
        if self.failures:
            raise PluginFailed(self.failures.pop(0))
        return {"cniVersion": "1.0.0", "ips": []}

    def delete(self, conflist, rt, cached):
        self.calls.append(f"DEL {cached}")
        return []


@pytest.fixture
def bridge_state(monkeypatch, tmp_path):
    """The bridge exists; whether it is half made is the test's to say."""
    state = {"half_made": True, "deleted": 0}
    monkeypatch.setattr(br, "SYS_NET", str(tmp_path))
    (tmp_path / "pktest0").mkdir()
    monkeypatch.setattr(br, "half_made", lambda name, sys_net=None: state["half_made"])

    def delete(name):
        state["deleted"] += 1
        return True
    monkeypatch.setattr(br, "delete_half_made", delete)
    return state


MAC_FAILURE = "CNI ADD n1/bridge (eth0) failed: failed to set bridge addr: could not set " \
    "bridge's mac: invalid argument"


def test_a_bridge_plugin_failure_on_a_half_made_bridge_deletes_it_and_retries_once(
        bridge_state, tmp_path):
    cni, warned = FakeCni([MAC_FAILURE]), []
    result, repairs = br.add_with_bridge_repair(cni, CONF, None, tmp_path, warned.append)
    assert result["cniVersion"] == "1.0.0"
    assert cni.calls == ["ADD", "DEL None", "ADD"]
    assert bridge_state["deleted"] == 1
    assert len(repairs) == 1 and "pktest0" in repairs[0]
    assert warned == ["WARNING: " + repairs[0]]


def test_the_retry_happens_once(bridge_state, tmp_path):
    cni = FakeCni([MAC_FAILURE, MAC_FAILURE])
    with pytest.raises(PluginFailed):
        br.add_with_bridge_repair(cni, CONF, None, tmp_path, lambda _: None)
    assert cni.calls == ["ADD", "DEL None", "ADD"]


def test_a_healthy_bridge_is_kept_and_the_failure_raised(bridge_state, tmp_path):
    bridge_state["half_made"] = False
    cni = FakeCni(["CNI ADD n1/bridge (eth0) failed: no IP addresses available"])
    with pytest.raises(PluginFailed, match="no IP addresses"):
        br.add_with_bridge_repair(cni, CONF, None, tmp_path, lambda _: None)
    assert cni.calls == ["ADD", "DEL None"]
    assert bridge_state["deleted"] == 0


def test_a_later_plugins_failure_is_left_to_the_callers_undo(bridge_state, tmp_path):
    cni = FakeCni(["CNI ADD n1/firewall (eth0) failed: iptables: exit 1"])
    with pytest.raises(PluginFailed, match="firewall"):
        br.add_with_bridge_repair(cni, CONF, None, tmp_path, lambda _: None)
    assert cni.calls == ["ADD"]  # no DEL without the result the firewall's DEL needs
    assert bridge_state["deleted"] == 0
