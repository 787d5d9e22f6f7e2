"""Issue #10's done-when for Kubernetes YAML: a pod of two containers (a busybox httpd and
a client) with a port published on 127.0.0.1 on the default bridge network; `pod kube
generate` it, remove the pod, `pod kube play` the YAML, reach the port from the host,
`pod kube down`, and nothing is left: no process, mount, netns, iptables rule, IP lease
or bundle (the leak checks of tests/e2e/test_pod_e2e.py)."""

from __future__ import annotations

import shlex
import time

import pytest
import yaml

from podkit_common import jsonio
from tests.e2e.test_pod_e2e import CLIENT, WEB, env, host_port, leftovers, ok  # noqa: F401
from tests.netsetup.conftest import iptables_rules, restore_ip_forward  # noqa: F401
from tests.netsetup.test_attach import fetch
from tests.testbed.shell import sh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.runc,
              pytest.mark.overlay, pytest.mark.registry]

#: the client fetches the page inside the pod (localhost), then stays up; both end at
#: once when stopped (pid 1 ignores a SIGTERM it has no handler for: a 10 s wait)
CLIENT_STAYS = f"trap 'exit 0' TERM; ({CLIENT}) && {{ sleep 600 & wait; }}"
#: test_pod_e2e's server, ending at once when stopped too
SERVER = WEB.replace("exec httpd", "trap 'exit 0' TERM; httpd") + " & wait"


def test_generate_remove_play_reach_down_leaves_nothing(images, env, tmp_path):  # noqa: F811
    import kubernetes_validate

    bridge = {k: v for k, v in env.items() if k != "PODKIT_NETWORK"}  # podman's default
    img = images.ref("busybox:latest").removeprefix("docker://")
    before = iptables_rules()
    since = f"{time.time() - 1:.3f}"

    ok(sh("pod pod create --name duo -p 127.0.0.1::80", env=bridge))
    ok(sh(f"pod run -d --tls-verify=false --name srv --pod duo {img} sh -c "
          f"{shlex.quote(SERVER)}", env=bridge))
    ok(sh(f"pod run -d --name cli --pod duo {img} sh -c {shlex.quote(CLIENT_STAYS)}",
          env=bridge))
    port = host_port(jsonio.loads(ok(sh("pod pod inspect duo", env=bridge))))
    assert fetch(f"http://127.0.0.1:{port}/") == "hi-from-duo\n"
    net = jsonio.loads(ok(sh("pod network inspect podkit", env=bridge)))[0]
    prefix = net["subnets"][0]["subnet"].rsplit(".", 1)[0] + "."

    text = ok(sh("pod kube generate duo", env=bridge))
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    [srv, cli] = docs[0]["spec"]["containers"]
    assert srv["ports"] == [{"containerPort": 80, "hostIP": "127.0.0.1", "hostPort": port,
                             "protocol": "TCP"}]
    assert cli["command"][-1] == CLIENT_STAYS
    (tmp_path / "duo.yaml").write_text(text)
    ok(sh("pod pod rm -f duo", env=bridge))
    assert ok(sh("pod ps -a -q", env=bridge)) == ""

    played = ok(sh(f"pod kube play {tmp_path / 'duo.yaml'}", env=bridge)).splitlines()
    assert played[0] == "Pod:" and played[2] == "Containers:"
    info = jsonio.loads(ok(sh("pod pod inspect duo", env=bridge)))
    assert info["State"] == "Running" and info["InfraConfig"]["Networks"] == ["podkit"]
    assert host_port(info) == port
    assert fetch(f"http://127.0.0.1:{port}/") == "hi-from-duo\n"
    # the client reached the server on localhost inside the played pod too
    logs = sh("pod logs duo-cli", env=bridge)
    for _ in range(100):  # the client retries for up to 10 s: a bound, not a timing
        if b"hi-from-duo" in logs.stdout:
            break
        time.sleep(0.1)
        logs = sh("pod logs duo-cli", env=bridge)
    assert ok(logs) == "hi-from-duo\n"
    infra = info["InfraContainerID"]

    down = ok(sh(f"pod kube down {tmp_path / 'duo.yaml'}", env=bridge)).splitlines()
    assert down == ["Pods stopped:", info["Id"], "Pods removed:", info["Id"]]
    assert ok(sh("pod ps -a -q", env=bridge)) == ""
    assert leftovers(bridge, tmp_path, {"name": "podkit"}, before,
                     [prefix, infra, f"{port}"]) == []

    # #10: `pod events --since` tells the whole story, in order, with exit codes
    lines = ok(sh(f"pod events --stream=false --since {since} --format json", env=bridge))
    events = [jsonio.loads(line) for line in lines.splitlines()]
    assert [e["Time"] for e in events] == sorted(e["Time"] for e in events)

    def story(kind: str, name: str) -> list[str]:
        return [e["Status"] + (f"={e['ContainerExitCode']}" if e["Status"] == "died" else "")
                for e in events if e["Type"] == kind and e["Name"] == name]

    # made by hand (its members started the infra: no pod start, as with podman), then
    # played (kube play starts the pod) and taken down
    assert story("pod", "duo") == ["create", "stop", "remove",
                                   "create", "start", "stop", "remove"]
    for name in ("srv", "duo-srv"):  # made by hand, then by kube play
        told = story("container", name)
        assert told[:4] == ["create", "init", "start", "died=0"], told
        assert told[-1] == "remove", told
