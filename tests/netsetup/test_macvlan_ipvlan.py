"""macvlan and ipvlan networks with real plugins: two containers on one network made
over a parent link (a veth end created by the test, no address, no route anywhere) reach
each other by address and by name, and leave no lease, netns or link behind."""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netsetup.test_attach import leases, make_network
from tests.netsetup.test_containers import WEB
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.runc, pytest.mark.overlay,
              pytest.mark.registry]


@pytest.fixture
def parent_link() -> Iterator[str]:
    """A link in the host's namespace to hang macvlan/ipvlan links on: one end of a veth
    pair (this kernel has no dummy links), with no address and no route."""
    name = f"pkd{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True)
    try:
        for link in (name, name + "p"):
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _links_on(parent: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines()
            if f"@{parent}:" in line and f" {parent}p@" not in line]  # not the veth peer


def _kernel_has(driver: str, parent: str) -> bool:
    probe = f"pkq{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "link", "add", probe, "link", parent, "type", driver],
                          capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", probe], capture_output=True, check=False)
    return made.returncode == 0


@pytest.mark.parametrize("driver", ["macvlan", "ipvlan"])
def test_two_containers_talk_over_a_macvlan_or_ipvlan_network(images, net_env, parent_link,
                                                              driver):
    net = make_network(net_env, f"--driver {driver} --opt parent={parent_link}")
    assert net["driver"] == driver and net["network_interface"] == parent_link
    ref = images.ref("busybox:latest").removeprefix("docker://")
    started = sh(f"pod run -d --tls-verify=false --name web --network {net['name']} {ref} "
                 f"sh -c {shlex.quote(WEB)}", env=net_env)
    if not _kernel_has(driver, parent_link):
        # the plugin's failure is reported, and undone: no lease, no netns
        assert started.returncode == 125
        assert f"failed to create {driver}" in started.stderr.decode()
        assert leases(net_env, net["name"]) == []
        assert list((Path(net_env["PODKIT_RUNROOT"]) / "netns").iterdir()) == []
        sh("pod rm -f -t 0 web", env=net_env)
        pytest.skip(f"this kernel cannot make {driver} links (ip link add ... type {driver}"
                    " fails); the failed run was checked to leave nothing")
    assert started.returncode == 0, started.stderr.decode()
    try:
        assert len(_links_on(parent_link)) == 0  # the link lives in the container's netns
        info = json.loads(sh("pod inspect web", env=net_env).stdout)[0]
        ip = info["NetworkSettings"]["Networks"][net["name"]]["IPAddress"]
        assert ip.startswith(net["subnets"][0]["subnet"].rsplit(".", 1)[0] + ".")
        get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5"
        script = (f"for i in $(seq 100); do {get} web 80 | grep hi- && break; sleep 0.1;"
                  f" done; {get} {ip} 80 | grep hi-")
        client = sh(f"pod run --rm --tls-verify=false --network {net['name']} {ref} "
                    f"sh -c {shlex.quote(script)}", env=net_env, timeout=120)
        assert client.returncode == 0, client.stderr.decode()
        assert client.stdout.decode().count("hi-from-") == 2
    finally:
        sh("pod rm -f -t 0 web", env=net_env)
    assert leases(net_env, net["name"]) == []
    assert list((Path(net_env["PODKIT_RUNROOT"]) / "netns").iterdir()) == []
