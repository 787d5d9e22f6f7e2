"""`pod network create|ls|inspect|rm|prune|exists`: podman 4.3's output, checked against
podman (tests/testbed/podman.py; its networks are config files only: no container joins
them). Only --internal networks; subnets come from the host-wide test allocation state
shared with tests/netsetup (PODKIT_NET_STATE_DIR)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from podkit_common.schemas import SchemaSet
from tests.netsetup.conftest import net_env, restore_ip_forward  # noqa: F401  (fixtures)

SCHEMAS = SchemaSet(["podkit_pod"])

pytestmark = [pytest.mark.root]


@pytest.fixture
def env(net_env: dict[str, str]) -> Iterator[dict[str, str]]:  # noqa: F811
    """tests/netsetup's net_env (shared subnet state; its teardown DELs what is still
    attached and deletes the test's bridges); first removes containers and networks
    left behind through pod itself."""
    yield net_env
    for cid in pod(net_env, "ps", "-a", "-q").stdout.split():
        pod(net_env, "rm", "-f", cid)
    for name in pod(net_env, "network", "ls", "-q").stdout.split():
        pod(net_env, "network", "rm", "-f", name)


def pod(env: dict[str, str], *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=120)


def _name() -> str:
    return "pkt" + uuid.uuid4().hex[:8]


def test_create_ls_inspect_rm(env: dict[str, str]) -> None:
    name = _name()
    res = pod(env, "network", "create", "--internal", "--label", "team=a", name)
    assert (res.returncode, res.stdout) == (0, name + "\n"), res.stderr
    res = pod(env, "network", "create", "--internal", name)
    assert res.returncode == 125
    assert "already used" in res.stderr
    assert pod(env, "network", "create", "--internal", "--ignore", name).stdout == name + "\n"

    (doc,) = json.loads(pod(env, "network", "inspect", name).stdout)
    SCHEMAS.validate(doc, "urn:podkit:pod:network-inspect", what="pod network inspect")
    assert json.loads(pod(env, "inspect", "--type", "network", name).stdout) == [doc]
    assert list(doc) == ["name", "id", "driver", "network_interface", "created", "subnets",
                         "ipv6_enabled", "internal", "dns_enabled", "labels", "ipam_options"]
    assert doc["internal"] is True and doc["labels"] == {"team": "a"}
    subnet = doc["subnets"][0]["subnet"]
    assert subnet.startswith("10.") and not subnet.startswith("10.88.")

    lines = pod(env, "network", "ls").stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER"]
    assert f"{doc['id'][:12]}  {name}" in "\n".join(lines)
    out = pod(env, "network", "ls", "--filter", f"name={name}", "--format",
              "{{.Name}}|{{.Driver}}|{{.Labels}}|{{.Internal}}|{{.NetworkInterface}}").stdout
    assert out == f"{name}|bridge|team=a|true|{doc['network_interface']}\n"
    assert pod(env, "network", "ls", "--filter", "label=team=b", "-q").stdout == ""
    assert pod(env, "network", "ls", "--filter", "driver=bridge", "-q").stdout.split() == [name]
    out = pod(env, "network", "inspect", "--format",
              "{{.Name}} {{range .Subnets}}{{.Subnet}} via {{.Gateway}}{{end}} "
              "{{.DNSEnabled}} {{index .Labels \"team\"}}", name).stdout
    assert out == f"{name} {subnet} via {doc['subnets'][0]['gateway']} true a\n"

    assert pod(env, "network", "exists", name).returncode == 0
    res = pod(env, "network", "rm", name, "nope-" + name)
    assert (res.returncode, res.stdout) == (1, name + "\n")
    assert pod(env, "network", "exists", name).returncode == 1
    res = pod(env, "network", "inspect", name)
    assert (res.returncode, res.stdout) == (125, "[]\n")


def test_prune_removes_unused_networks_after_asking(env: dict[str, str]) -> None:
    names = sorted([_name(), _name()])
    for n in names:
        assert pod(env, "network", "create", "--internal", n).returncode == 0
    res = pod(env, "network", "prune", stdin="n\n")
    assert "Are you sure you want to continue? [y/N]" in res.stdout
    assert sorted(pod(env, "network", "ls", "-q").stdout.split()) == names
    res = pod(env, "network", "prune", "-f")
    assert sorted(res.stdout.split()) == names
    assert pod(env, "network", "ls", "-q").stdout == ""


def test_connect_needs_a_network_and_an_attached_container(env: dict[str, str]) -> None:
    res = pod(env, "network", "connect", "nope-net", "nope-ctr")
    assert res.returncode == 125
    assert "unable to find network" in res.stderr


def _addresses(env: dict[str, str], cid: str) -> dict[str, str]:
    """ifname -> IPv4 address/prefix inside the container's network namespace."""
    netns = f"{env['PODKIT_RUNROOT']}/netns/netns-{cid}"
    out = subprocess.run(["nsenter", f"--net={netns}", "ip", "-o", "-4", "addr", "show"],
                         capture_output=True, text=True, check=True).stdout
    return {f[1]: f[3] for f in (line.split() for line in out.splitlines()) if f[1] != "lo"}


@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.netns
@pytest.mark.registry
def test_connect_and_disconnect_a_running_container(env: dict[str, str], images: Any) -> None:
    first, second = _name(), _name()
    for n in (first, second):
        assert pod(env, "network", "create", "--internal", n).returncode == 0
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(env, "run", "-d", "--network", first, "--name", "cn-" + first, ref,
              "sleep", "600")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    assert list(_addresses(env, cid)) == ["eth0"]
    res = pod(env, "network", "connect", second, "cn-" + first)
    assert (res.returncode, res.stdout) == (0, ""), res.stderr
    addrs = _addresses(env, cid)
    (sub2,) = json.loads(pod(env, "network", "inspect", second).stdout)[0]["subnets"]
    prefix = sub2["subnet"].rsplit(".", 1)[0] + "."
    assert sorted(addrs) == ["eth0", "eth1"] and addrs["eth1"].startswith(prefix)
    res = pod(env, "network", "connect", second, "cn-" + first)
    assert res.returncode == 125 and "already connected" in res.stderr
    res = pod(env, "network", "rm", second)
    assert res.returncode == 2  # the container is a member now
    res = pod(env, "network", "disconnect", second, "cn-" + first)
    assert res.returncode == 0, res.stderr
    assert list(_addresses(env, cid)) == ["eth0"]
    res = pod(env, "network", "disconnect", second, "cn-" + first)
    assert res.returncode == 125 and "not connected" in res.stderr
    assert pod(env, "network", "rm", second).stdout == second + "\n"
    assert pod(env, "rm", "-f", "cn-" + first).returncode == 0


@pytest.mark.registry
def test_shapes_match_podman(podman: Any, env: dict[str, str]) -> None:
    name = _name()
    for args in [("network", "create", "--internal", "--label", "a=b", name),
                 ("network", "create", "--internal", name),
                 ("network", "exists", name),
                 ("network", "exists", "nope"),
                 ("network", "ls", "--filter", f"name={name}",
                  "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Internal}}"),
                 ("network", "ls", "--filter", f"name={name}", "--format",
                  "table {{.Name}}\t{{.Driver}}"),
                 ("network", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Internal}} "
                  "{{.DNSEnabled}} {{.Labels}} {{.IPAMOptions}}", name),
                 ("network", "inspect", "nope"),
                 ("network", "rm", "nope")]:
        want, got = podman.run(*args, check=False), pod(env, *args)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), (args, got.stderr)
    mine = json.loads(pod(env, "network", "inspect", name).stdout)[0]
    theirs = json.loads(podman.run("network", "inspect", name).stdout)[0]
    assert list(mine) == list(theirs)
    assert list(mine["subnets"][0]) == list(theirs["subnets"][0])
    for key in ("name", "driver", "ipv6_enabled", "internal", "dns_enabled", "labels",
                "ipam_options"):
        assert mine[key] == theirs[key], key
    out = pod(env, "network", "ls", "--format", "json", "--filter", f"name={name}").stdout
    assert out.startswith('[\n  {\n    "name": ')  # podman: 2 spaces in ls, 5 in inspect
    SCHEMAS.validate(json.loads(out)[0], "urn:podkit:pod:network-inspect", what="network ls")
    theirs = json.loads(podman.run("network", "ls", "--format", "json").stdout)
    assert list(json.loads(out)[0]) == list(next(t for t in theirs if t["name"] == name))
    for args in [("network", "rm", name), ("network", "exists", name)]:
        want, got = podman.run(*args, check=False), pod(env, *args)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), (args, got.stderr)


@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.netns
@pytest.mark.registry
def test_rm_refuses_a_network_in_use_and_force_removes_its_containers(
        env: dict[str, str], images: Any) -> None:
    name = _name()
    assert pod(env, "network", "create", "--internal", name).returncode == 0
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(env, "run", "-d", "--network", name, "--name", "user-" + name, ref,
              "sleep", "600")
    assert res.returncode == 0, res.stderr
    res = pod(env, "network", "rm", name)
    assert res.returncode == 2  # podman: the network is in use
    assert "associated containers" in res.stderr
    assert pod(env, "network", "exists", name).returncode == 0
    res = pod(env, "network", "rm", "-f", name)
    assert (res.returncode, res.stdout) == (0, name + "\n"), res.stderr
    assert "user-" + name not in pod(env, "ps", "-a").stdout
    assert pod(env, "network", "exists", name).returncode == 1
