"""Real containers (runc through pod-runtime) on CNI networks made by pod-netsetup.

Every network here is --internal (no default route, no masquerade): traffic goes only
between the test's own containers and to 127.0.0.1 through published ports.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from podkit_common import jsonio
from tests.netsetup.conftest import SCHEMAS, iptables_rules, leftover_rules
from tests.netsetup.test_attach import fetch, leases, make_network
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.runc, pytest.mark.overlay,
              pytest.mark.registry]

WEB = ("mkdir -p /tmp/w && echo hi-from-$(hostname) > /tmp/w/index.html"
       " && exec httpd -f -p 80 -h /tmp/w")


def bundle(env, ref: str, name: str, script: str) -> bytes:
    """pull | import | create --name | bundle -- sh -c script: the document, as bytes."""
    proc = sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import"
              f" | pod-storage create --name {name}"
              f" | pod-runtime bundle --hostname {name} -- sh -c {shlex.quote(script)}",
              env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def attach(env, doc: bytes, args: str) -> dict:
    proc = sh(f"pod-netsetup attach {args}", env=env, input=doc)
    assert proc.returncode == 0, proc.stderr.decode()
    out = jsonio.loads(proc.stdout)
    SCHEMAS.validate(out, "urn:podkit:netsetup:network")
    return out


def run(env, doc: dict, *flags: str):
    return sh(f"pod-runtime run {' '.join(flags)}", env=env, input=jsonio.dumps(doc),
              timeout=120)


def stop(env, doc: dict) -> None:
    sh(f"pod-runtime kill {doc['container']['id']}", env=env)
    sh(f"pod-runtime rm --force {doc['container']['id']}", env=env)


def detach(env, doc: dict) -> dict:
    proc = sh("pod-netsetup detach", env=env, input=jsonio.dumps(doc))
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)


@pytest.fixture
def web(images, net_env):
    """An internal network with a busybox httpd container "web" running on it."""
    net = make_network(net_env)
    ref = images.ref("busybox:latest")
    server = attach(net_env, bundle(net_env, ref, "web", WEB),
                    f"--network {net['name']} -p 127.0.0.1::80")
    started = run(net_env, server, "--detach")
    assert started.returncode == 0, started.stderr.decode()
    yield net, server, ref
    stop(net_env, server)
    detach(net_env, server)


def test_two_containers_reach_each_other_by_address_and_by_name(web, net_env):
    net, server, ref = web
    ip = server["network"]["networks"][0]["addresses"][0].split("/")[0]
    hosts = Path(server["bundle"]["path"]) / "hosts"
    inode = os.stat(hosts).st_ino
    # busybox-static's wget crashes here; nc speaks enough HTTP/1.0
    get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5"
    script = (f"for i in $(seq 100); do {get} web 80 | grep hi- && break; sleep 0.1; done;"
              f" {get} {ip} 80 | grep hi-; cat /etc/hosts")
    client = attach(net_env, bundle(net_env, ref, "client", script), f"--network {net['name']}")
    client_ip = client["network"]["networks"][0]["addresses"][0].split("/")[0]
    # the running server's /etc/hosts learnt the new member, in place
    assert f"{client_ip}\tclient" in hosts.read_text()
    assert os.stat(hosts).st_ino == inode
    proc = run(net_env, client)
    out = proc.stderr.decode()
    assert proc.returncode == 0, out
    assert out.count("hi-from-web") == 2, out
    assert f"{ip}\tweb" in out  # name resolution comes from the generated hosts entries
    detach(net_env, client)
    assert f"{client_ip}\t" not in hosts.read_text()  # and forgot it when it left


def test_a_published_port_on_127_0_0_1_reaches_httpd_in_a_container(web):
    _net, server, _ref = web
    [port] = server["network"]["ports"]
    body = fetch(f"http://127.0.0.1:{port['hostPort']}/")
    assert body == "hi-from-web\n"


def test_internal_network_has_no_default_route_and_none_has_only_loopback(images, net_env):
    net = make_network(net_env)
    ref = images.ref("busybox:latest")
    show = "cat /proc/net/route; echo IFACES; tail -n +3 /proc/net/dev | cut -d: -f1"
    doc = attach(net_env, bundle(net_env, ref, "inner", show), f"--network {net['name']}")
    proc = run(net_env, doc)
    out = proc.stderr.decode()
    assert proc.returncode == 0, out
    routes, ifaces = out.split("IFACES")
    dests = [line.split()[1] for line in routes.splitlines()[1:] if line.strip()]
    assert dests and "00000000" not in dests, routes
    assert sorted(ifaces.split()) == ["eth0", "lo"]
    detach(net_env, doc)
    none = attach(net_env, bundle(net_env, ref, "alone", show), "--network none")
    out = run(net_env, none).stderr.decode()
    assert out.split("IFACES")[1].split() == ["lo"]


def test_pod_run_uses_the_default_network_and_leaves_nothing(images, net_env):
    """`pod run` without --network joins "podkit" (made internal here first: podkit only
    makes the default when it is missing) and detaches when the container exits."""
    env = {k: v for k, v in net_env.items() if k != "PODKIT_NETWORK"}
    made = sh("pod-netsetup network create podkit --internal", env=env)
    assert made.returncode == 0, made.stderr
    net = jsonio.loads(made.stdout)["network"]
    before = iptables_rules()
    ref = images.ref("busybox:latest").removeprefix("docker://")
    script = "tail -n +3 /proc/net/dev | cut -d: -f1; cat /etc/hosts /etc/resolv.conf"
    proc = sh(f"pod run --rm --tls-verify=false --add-host db.test:10.1.2.3 --dns 10.9.9.9 "
              f"--dns-search corp.test -p 127.0.0.1::80 {ref} sh -c {shlex.quote(script)}",
              env=env)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "eth0" in out.split()
    assert "10.1.2.3\tdb.test" in out
    assert "nameserver 10.9.9.9" in out and "search corp.test" in out
    assert leases(env, "podkit") == []
    assert list((Path(env["PODKIT_RUNROOT"]) / "netns").iterdir()) == []
    prefix = net["subnets"][0]["subnet"].rsplit(".", 1)[0] + "."
    assert leftover_rules(before, iptables_rules(), prefix) == []
    # and --network none still means loopback only
    none = sh(f"pod run --rm --network none --tls-verify=false {ref} "
              "sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1'", env=env)
    assert none.stdout.split() == [b"lo"]

