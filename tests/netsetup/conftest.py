"""Fixtures for pod-netsetup's tests.

Every test gets its own roots (podkit_env) and therefore its own network config dir and
host-local leases; all tests share one host-wide allocation state dir under /tmp, so
networks made by parallel tests never get the same subnet. Teardown DELs whatever is
still attached (from the attachment records), deletes the bridges of the test's
networks, and only then lets podkit_env unmount the namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.roots import Roots
from podkit_common.schemas import SchemaSet

#: Shared by all tests (and xdist workers) on this host: subnet registry + its lock.
TEST_NET_STATE = "/tmp/podkit-net-tests"

SCHEMAS = SchemaSet(["podkit_netsetup"])

#: Chains and rules the CNI plugins create once per host and never remove (the firewall
#: and portmap plugins' skeletons), plus iptables-save's table framing.
SKELETON = re.compile(r"^(\*\w+|COMMIT|:[A-Z-]+ [A-Z-]+|:CNI-(ADMIN|FORWARD|HOSTPORT-\w+) -"
                      r"|-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-(FORWARD|HOSTPORT-\w+)"
                      r"|-A CNI-FORWARD .*-j CNI-ADMIN|-A CNI-HOSTPORT-(MASQ|SETMARK) .*)$")


def iptables_rules() -> set[str]:
    """iptables-save without comments and counters, as a set of lines."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return {re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
            if line and not line.startswith("#")}


def leftover_rules(before: set[str], after: set[str], marker: str) -> list[str]:
    """Rules present now but not before that mention ``marker`` (a container id or an
    address of the test), ignoring the plugins' permanent skeleton."""
    return sorted(line for line in after - before
                  if not SKELETON.match(line) and marker in line)


IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@pytest.fixture(scope="session", autouse=True)
def restore_ip_forward() -> Iterator[None]:
    """The bridge plugin turns on net.ipv4.ip_forward (as podman's networks do). Put back
    the host's value when the last test session using these tests (xdist workers
    included: live pids are counted under a lock) ends."""
    with ip_forward_kept():
        yield


@contextlib.contextmanager
def ip_forward_kept() -> Iterator[None]:
    """restore_ip_forward for any process (the soak too): the host's ip_forward is put
    back when the last live user of the test network state leaves."""
    import os

    from podkit_common.locks import FileLock

    state = Path(TEST_NET_STATE) / "ip_forward.json"

    def update(change):
        with FileLock(Path(TEST_NET_STATE) / "ip_forward.lock", timeout=60):
            try:
                rec = jsonio.loads(state.read_bytes())
            except Exception:  # missing or half-written: start afresh
                rec = {"original": IP_FORWARD.read_text().strip(), "pids": []}
            rec["pids"] = [p for p in rec["pids"] if Path(f"/proc/{p}").exists()
                           and p != os.getpid()]
            change(rec)
            if rec["pids"]:
                state.write_bytes(jsonio.dumps(rec))
            else:
                if IP_FORWARD.read_text().strip() != rec["original"]:
                    IP_FORWARD.write_text(rec["original"] + "\n")
                state.unlink(missing_ok=True)

    Path(TEST_NET_STATE).mkdir(parents=True, exist_ok=True)
    update(lambda rec: rec["pids"].append(os.getpid()))
    try:
        yield
    finally:
        update(lambda rec: None)


@contextlib.contextmanager
def networked(podkit_env: dict[str, str], tmp_path: Path,
              **extra: str) -> Iterator[dict[str, str]]:
    """podkit_env (plus ``extra``) on the tests' shared subnet registry with the default
    network config dir; every network, attachment, bridge and subnet record the test
    made under tmp_path is torn down afterwards, even when the test failed."""
    env = {**podkit_env, "PODKIT_NET_STATE_DIR": TEST_NET_STATE, **extra}
    env.pop("PODKIT_NETWORK_CONFIG_DIR", None)
    try:
        yield env
    finally:
        teardown_networks(Roots(Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])))
        forget_subnets_under(tmp_path)


@pytest.fixture
def net_env(podkit_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """networked(), also for library calls made in this process (the environment)."""
    with pytest.MonkeyPatch.context() as mp, networked(podkit_env, tmp_path) as env:
        mp.setenv("PODKIT_NET_STATE_DIR", TEST_NET_STATE)
        mp.delenv("PODKIT_NETWORK_CONFIG_DIR", raising=False)
        yield env


def teardown_networks(roots: Roots) -> None:
    from podkit_netsetup._attach import attachments_dir
    from podkit_netsetup._cni import CniRuntime
    from podkit_netsetup._cni_attach import _teardown
    from podkit_netsetup._links import delete_link
    from podkit_netsetup._networks import NetworkStore
    from podkit_netsetup._subnets import SubnetRegistry

    folder = attachments_dir(roots)
    for rpath in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(Exception):
            _teardown(jsonio.loads(rpath.read_bytes()), rpath, CniRuntime())
    store = NetworkStore(roots)
    for name in store.names():
        with contextlib.suppress(Exception):
            meta = store.load(name).get("podkit") or {}
            if meta.get("driver") == "bridge":
                delete_link(meta["network_interface"])
            SubnetRegistry().forget(ipaddress.ip_network(meta["subnet"]), store.path(name))


def forget_subnets_under(base: Path) -> None:
    """Drop the host-wide subnet records of networks whose conflist lives under ``base``
    (other config dirs and roots a test made), deleting their bridges."""
    from podkit_netsetup._links import delete_link
    from podkit_netsetup._subnets import SubnetRegistry

    registry = SubnetRegistry(Path(TEST_NET_STATE))
    for record in sorted(registry.dir.glob("*")) if registry.dir.is_dir() else []:
        with contextlib.suppress(Exception):
            rec = jsonio.loads(record.read_bytes())
            conflist = Path(rec["conflist"])
            if not conflist.is_relative_to(base):
                continue
            with contextlib.suppress(Exception):
                meta = jsonio.loads(conflist.read_bytes()).get("podkit") or {}
                if meta.get("driver") == "bridge":
                    delete_link(meta["network_interface"])
            record.unlink()


def container_doc(cid: str, name: str, bundle: str | None = None) -> dict:
    doc: dict = {"changed": False, "container": {"id": cid, "name": name}}
    if bundle:
        doc["bundle"] = {"path": bundle, "hostname": cid[:12]}
    return doc


def nsexec(netns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a host command inside a network namespace (nsenter), capturing text."""
    return subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)
