"""`pod port` / `pod-runtime port` against a really published port: busybox httpd in a
container on an --internal test network with `-p 127.0.0.1:HOSTPORT:80`, reached from
the host through 127.0.0.1 only."""

from __future__ import annotations

import shlex
import socket

import pytest

from podkit_common import jsonio
from tests.netsetup.test_attach import fetch, make_network
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.runc, pytest.mark.overlay,
              pytest.mark.registry]

WEB = "mkdir -p /tmp/w && echo hi-from-web > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_reports_a_published_port_that_really_serves(images, net_env) -> None:
    from podkit_runtime._top import port_lines

    net = make_network(net_env)
    ref = images.ref("busybox:latest").removeprefix("docker://")
    host_port = free_port()
    proc = sh(f"pod run -d --tls-verify=false --name web --network {net['name']} "
              f"-p 127.0.0.1:{host_port}:80 {ref} sh -c {shlex.quote(WEB)}", env=net_env)
    assert proc.returncode == 0, proc.stderr.decode()
    try:
        assert fetch(f"http://127.0.0.1:{host_port}/") == "hi-from-web\n"
        listing = sh("pod port web", env=net_env)
        assert listing.returncode == 0, listing.stderr.decode()
        assert listing.stdout.decode() == f"80/tcp -> 127.0.0.1:{host_port}\n"
        for spec in ("80/tcp", "80"):
            one = sh(f"pod port web {spec}", env=net_env)
            assert one.returncode == 0, one.stderr.decode()
            assert one.stdout.decode() == f"127.0.0.1:{host_port}\n"
        # the stage executable says the same
        assert sh("pod-runtime port web 80", env=net_env).stdout.decode() == (
            f"127.0.0.1:{host_port}\n")
        everyone = sh("pod port --all", env=net_env).stdout.decode().splitlines()
        assert len(everyone) == 1 and everyone[0].endswith(
            f"\t80/tcp -> 127.0.0.1:{host_port}")
        missing = sh("pod port web 81/tcp", env=net_env)
        assert missing.returncode == 125  # podman's code for its own errors
        error = jsonio.loads(missing.stderr.splitlines()[-1])["error"]
        assert error["message"] == 'failed to find published port "81/tcp"'
        assert sh("pod port web 80/udp", env=net_env).returncode == 125
        [info] = jsonio.loads(sh("pod inspect web", env=net_env).stdout)
        assert info["NetworkSettings"]["Ports"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}
    finally:
        sh("pod rm -f -t 0 web", env=net_env)
    # a unit check of the range arithmetic podman does
    record = {"doc": {"network": {"ports": [
        {"hostPort": 9000, "containerPort": 80, "protocol": "tcp", "range": 3}]}}}
    assert port_lines(record) == ["80/tcp -> 0.0.0.0:9000", "81/tcp -> 0.0.0.0:9001",
                                  "82/tcp -> 0.0.0.0:9002"]
    assert port_lines(record, "82") == ["0.0.0.0:9002"]
