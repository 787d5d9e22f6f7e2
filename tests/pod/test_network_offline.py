"""`pod network connect|disconnect` on a stopped container: podman records the change
and applies it at the next start (tools/pod/src/podkit_pod/_network_offline.py)."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from tests.netsetup.conftest import networked, restore_ip_forward  # noqa: F401  (fixture)

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.netns,
              pytest.mark.registry]


@pytest.fixture
def env(podkit_env, tmp_path):
    """The test's roots on the shared test subnets; its networks torn down afterwards."""
    with networked(podkit_env, tmp_path) as networked_env:
        yield networked_env


def pod(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def ok(env: dict[str, str], *args: str) -> str:
    res = pod(env, *args)
    assert res.returncode == 0, (args, res.stderr)
    return res.stdout


def subnet(env: dict[str, str], network: str) -> ipaddress.IPv4Network:
    info = json.loads(ok(env, "network", "inspect", network))[0]
    return ipaddress.ip_network(info["subnets"][0]["subnet"])


def addresses(env: dict[str, str], name: str) -> dict[str, ipaddress.IPv4Address]:
    """interface -> IPv4 address inside the running container (lo left out)."""
    out = ok(env, "exec", name, "ip", "-o", "-4", "addr", "show")
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if fields[1] != "lo":
            found[fields[1]] = ipaddress.ip_interface(fields[3]).ip
    return found


def test_connect_and_disconnect_of_a_stopped_container_apply_at_its_next_start(
        images, env):
    image = images.ref("busybox:latest").removeprefix("docker://")
    for net in ("offa", "offb"):
        ok(env, "network", "create", "--internal", net)
    a, b = subnet(env, "offa"), subnet(env, "offb")
    ok(env, "run", "-d", "--tls-verify=false", "--name", "off1", "--network", "offa", image,
       "sleep", "3600")
    ok(env, "stop", "-t", "0", "off1")

    ok(env, "network", "connect", "offb", "off1")
    res = pod(env, "network", "connect", "offb", "off1")
    assert res.returncode == 125 and "already connected" in res.stderr
    networks = json.loads(ok(env, "inspect", "off1"))[0]["NetworkSettings"]["Networks"]
    assert sorted(networks) == ["offa", "offb"]
    assert ok(env, "ps", "-a", "--format", "{{.State}}").split() == ["exited"]

    ok(env, "start", "off1")
    got = addresses(env, "off1")
    assert sorted(got) == ["eth0", "eth1"]
    assert got["eth0"] in a and got["eth1"] in b

    ok(env, "stop", "-t", "0", "off1")
    ok(env, "network", "disconnect", "offa", "off1")
    res = pod(env, "network", "disconnect", "offa", "off1")
    assert res.returncode == 125 and "not connected" in res.stderr
    res = pod(env, "network", "disconnect", "offb", "off1")  # its last one
    assert res.returncode == 125 and "only network" in res.stderr
    ok(env, "start", "off1")
    got = addresses(env, "off1")
    assert list(got) == ["eth0"] and got["eth0"] in b
    ok(env, "rm", "-f", "-t", "0", "off1")


def test_connect_of_a_stopped_container_without_a_network_of_its_own_is_refused(
        images, env):
    image = images.ref("busybox:latest").removeprefix("docker://")
    ok(env, "network", "create", "--internal", "offc")
    ok(env, "create", "--tls-verify=false", "--name", "off2", "--network", "none", image,
       "true")
    res = pod(env, "network", "connect", "offc", "off2")
    assert res.returncode == 125 and "network mode none" in res.stderr, res.stderr
    ok(env, "rm", "-f", "off2")
