"""Issue #9's end-to-end test: a pod of two containers, a busybox httpd and a client, on
an --internal CNI network with a port published on 127.0.0.1. The client reaches the
server on localhost inside the pod, the host reaches it on 127.0.0.1:PORT, and `pod pod
stop` + `pod pod rm` leave no process, mount, netns, iptables rule or IP lease behind.
Then the same as a shell pipeline of the stage executables, with the same result."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.schemas import SchemaSet
from tests.netsetup.conftest import (  # noqa: F401  (restore_ip_forward: autouse fixture)
    iptables_rules,
    leftover_rules,
    networked,
    restore_ip_forward,
)
from tests.netsetup.test_attach import fetch, leases, make_network
from tests.testbed.env import mounts_under
from tests.testbed.procs import live_mentions
from tests.testbed.shell import sh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_runtime", "podkit_netsetup"])
WEB = ("mkdir -p /tmp/w && echo hi-from-$(hostname) > /tmp/w/index.html"
       " && exec httpd -f -p 80 -h /tmp/w")
#: the client waits for the server to listen (a bound, not a timing claim)
CLIENT = ("for i in $(seq 100); do wget -qO- http://127.0.0.1:80/ 2>/dev/null && exit 0;"
          " sleep 0.1; done; exit 1")


@pytest.fixture
def env(podkit_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """podkit_env on the tests' shared subnet registry; networks torn down after."""
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")
    with networked(podkit_env, tmp_path) as env:
        yield env


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def leftovers(env: dict[str, str], tmp_path: Path, net: dict, before: set[str],
              markers: list[str]) -> list[str]:
    """Everything a removed pod must not leave (processes are given time to end: conmon's
    exit command may still be finishing when `rm` returns, as with podman)."""
    import time

    deadline = time.monotonic() + 15
    while live_mentions(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    found = [f"process {p}" for p in live_mentions(tmp_path)]
    found += [f"mount {m}" for m in mounts_under(tmp_path)]
    netns = Path(env["PODKIT_RUNROOT"]) / "netns"
    found += [f"netns {p}" for p in (netns.iterdir() if netns.is_dir() else [])]
    found += [f"lease {x}" for x in leases(env, net["name"])]
    after = iptables_rules()
    for marker in markers:
        found += [f"iptables {r}" for r in leftover_rules(before, after, marker)]
    bundles = Path(env["PODKIT_RUNROOT"]) / "bundles"
    found += [f"bundle {p.name}" for p in (bundles.iterdir() if bundles.is_dir() else [])]
    return found


def host_port(info: dict) -> int:
    [binding] = info["InfraConfig"]["PortBindings"]["80/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    return int(binding["HostPort"])


def test_a_pod_with_a_published_port_through_pod_then_through_the_stages(images, env,
                                                                         tmp_path):
    net = make_network(env)
    prefix = net["subnets"][0]["subnet"].rsplit(".", 1)[0] + "."
    ref = images.ref("busybox:latest")
    img = ref.removeprefix("docker://")
    before = iptables_rules()

    # -- `pod pod` and `pod run --pod`, in-process compositions of the stages ----------------
    pod_id = ok(sh(f"pod pod create --name duo --network {net['name']} -p 127.0.0.1::80",
                   env=env)).strip()
    ok(sh(f"pod run -d --tls-verify=false --name srv --pod duo {img} sh -c "
          f"{shlex.quote(WEB)}", env=env))
    inside = sh(f"pod run --rm --name cli --pod duo {img} sh -c {shlex.quote(CLIENT)}",
                env=env)
    assert ok(inside) == "hi-from-duo\n"
    info = jsonio.loads(ok(sh("pod pod inspect duo", env=env)))
    SCHEMAS.validate(info, "urn:podkit:runtime:pod-inspect")
    assert info["State"] == "Running" and info["InfraConfig"]["Networks"] == [net["name"]]
    assert fetch(f"http://127.0.0.1:{host_port(info)}/") == "hi-from-duo\n"
    # a member shows the pod's ports (podman's ps/port do too)
    assert ok(sh("pod port srv", env=env)) == f"80/tcp -> 127.0.0.1:{host_port(info)}\n"
    infra = info["InfraContainerID"]
    ok(sh("pod pod stop duo", env=env))
    assert jsonio.loads(ok(sh("pod pod inspect duo", env=env)))["State"] == "Exited"
    assert ok(sh("pod pod rm duo", env=env)).strip() == pod_id
    assert ok(sh("pod ps -a -q", env=env)) == ""
    assert leftovers(env, tmp_path, net, before, [prefix, infra, f"{host_port(info)}"]) == []

    # -- the same pod as a pipeline of the stage executables ---------------------------------
    created = jsonio.loads(ok(sh("pod-runtime pod create --name duo2", env=env)))
    SCHEMAS.validate(created, "urn:podkit:runtime:pod")
    infra_name = created["pod"]["infra"]["name"]
    build = tmp_path / "pause"
    build.mkdir()
    shutil.copy(shutil.which("catatonit"), build / "catatonit")
    ok(sh(f"tar -C {build} -cf - catatonit | pod-storage import-tarball - "
          "localhost/podkit-pause:pipeline --change 'ENTRYPOINT [\"/catatonit\", \"-P\"]'",
          env=env))
    infra_doc = jsonio.loads(ok(sh(
        f"pod-storage create --image localhost/podkit-pause:pipeline --name {infra_name}"
        f" | pod-runtime pod bundle-infra duo2"
        f" | pod-netsetup attach --network {net['name']} -p 127.0.0.1::80"
        f" | pod-runtime create", env=env)))
    SCHEMAS.validate(infra_doc, "urn:podkit:netsetup:network")
    ok(sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import"
          f" | pod-storage create --name srv2 | pod-runtime bundle --pod duo2 -- sh -c "
          f"{shlex.quote(WEB)} | pod-runtime run -d", env=env))
    client = sh(f"pod-storage create --image {img} --name cli2 | pod-runtime bundle --pod "
                f"duo2 -- sh -c {shlex.quote(CLIENT)} | pod-runtime run --rm", env=env)
    assert client.returncode == 0, client.stderr.decode()
    assert client.stderr.decode() == "hi-from-duo2\n"  # the container's stdout: our stderr
    ok(sh("pod-storage rm cli2", env=env))
    info2 = jsonio.loads(ok(sh("pod-runtime pod inspect duo2", env=env)))
    assert fetch(f"http://127.0.0.1:{host_port(info2)}/") == "hi-from-duo2\n"
    # both forms made the same pod (names, ids, times and ports aside)
    same = ("State", "SharedNamespaces", "NumContainers", "ExitPolicy", "CgroupParent",
            "CreateInfra")
    assert {k: info[k] for k in same} | {"State": "Running"} == {k: info2[k] for k in same}
    assert info["InfraConfig"].keys() == info2["InfraConfig"].keys()
    stopped = jsonio.loads(ok(sh("pod-runtime pod stop duo2", env=env)))
    assert stopped["pod"]["status"] == "Exited"
    removal = sh("pod-runtime pod rm duo2 | pod-netsetup detach", env=env)
    detached = jsonio.loads(ok(removal))
    assert detached["pod"]["name"] == "duo2" and detached["network"]["attached"] is False
    ids = [item["id"] for item in detached["removed"]]
    ok(sh(" && ".join(f"pod-storage rm {i} >/dev/null" for i in ids), env=env))
    assert ok(sh("pod ps -a -q", env=env)) == ""
    markers = [prefix, info2["InfraContainerID"], f"{host_port(info2)}"]
    assert leftovers(env, tmp_path, net, before, markers) == []
