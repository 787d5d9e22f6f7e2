"""The `run-bridge` scenario's side work: both engines on their default bridge network.

podkit runs `pod run --rm --network podkit` (the default network, made on first use like
podman's "podman"); podman runs with no --network, i.e. its default network through
netavark (bridge podman0, 10.88.0.0/16). podkit's host-wide subnet registry goes into
the bench's scratch dir. Afterwards podkit's network is removed (`network rm --force`:
its bridge goes too), and podman0 is deleted only if it was not there before the bench
(netavark removes it itself when the last container leaves; this checks), and
net.ipv4.ip_forward gets its old value back.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from .runner import BenchFailure

PODMAN_BRIDGE = "podman0"
#: Both sides' bridge plugins turn forwarding on; the bench puts the host's value back.
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
_state: dict[str, Any] = {}


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def argv(side: Any, ref: str, command: list[str]) -> list[str]:
    if side.name == "podkit":
        return [side.exe("pod"), "run", "--rm", "--network", "podkit", "--tls-verify=false",
                ref, *command]
    return side.cmd("run", "--rm", "--tls-verify=false", ref, *command)


def setup(ctx: Any) -> None:
    ctx.podkit.env["PODKIT_NET_STATE_DIR"] = str(ctx.podkit.base / "netstate")
    _state["podman0_before"] = link_exists(PODMAN_BRIDGE)
    _state["ip_forward"] = IP_FORWARD.read_text().strip()


def verify(side: Any) -> None:
    """Nothing of the run may stay attached: no netns left under podkit's runroot."""
    if side.name == "podkit":
        left = list((side.runroot / "netns").glob("*")) if (side.runroot / "netns").is_dir() \
            else []
        if left:
            raise BenchFailure(f"podkit: run --rm left network namespaces {left}")


def teardown(ctx: Any, say: Any) -> None:
    pk = ctx.podkit
    rm = subprocess.run([pk.exe("pod-netsetup"), "network", "rm", "--force", "podkit"],
                        env=pk.env, capture_output=True, text=True, timeout=120, check=False)
    if rm.returncode not in (0, 4):
        say(f"bench: run-bridge: podkit network rm: {rm.stderr.strip()}")
    if link_exists(PODMAN_BRIDGE):
        if _state.get("podman0_before"):
            say("bench: run-bridge: podman0 existed before the bench; left alone")
        else:
            say("bench: run-bridge: podman0 was still there after podman's last container; "
                "removing it (the bench created it)")
            subprocess.run(["ip", "link", "delete", PODMAN_BRIDGE], check=False,
                           capture_output=True, timeout=30)
    else:
        say("bench: run-bridge: podman0 is gone (netavark removed it)")
    if _state.get("ip_forward") and IP_FORWARD.read_text().strip() != _state["ip_forward"]:
        IP_FORWARD.write_text(_state["ip_forward"] + "\n")
