"""`pod pod` against podman 4.3.1 (the oracle, its own roots; --network none pods only):
the fields of `pod inspect` and `pod ps --format json` users script against, the shared
hostname and hosts file a member sees, exit codes and messages of the refusals."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import pytest

from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry,
              pytest.mark.e2e]

MEMBER = "hostname; echo HOSTNAME=$HOSTNAME; echo $(cat /etc/hostname); cat /etc/hosts"


@pytest.fixture(autouse=True)
def _needs_conmon_and_catatonit() -> None:
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")


class Both:
    """One command line, run by podman and by `pod`."""

    def __init__(self, podman, env, image: str) -> None:
        self.podman, self.env, self.image = podman, env, image

    def podman_run(self, *args: str) -> subprocess.CompletedProcess:
        return self.podman.run(*args, check=False)

    def pod_run(self, *args: str) -> subprocess.CompletedProcess:
        proc = sh("pod " + " ".join(shlex.quote(a) for a in args), env=self.env)
        return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                           proc.stderr.decode())

    def both(self, *args: str) -> tuple[subprocess.CompletedProcess, ...]:
        return self.podman_run(*args), self.pod_run(*args)


@pytest.fixture
def both(podman, podkit_env, images) -> Both:
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    pulled = sh(f"pod pull --tls-verify=false {ref}", env=podkit_env)
    assert pulled.returncode == 0, pulled.stderr.decode()
    return Both(podman, podkit_env, ref)


def _ok(*procs) -> list[str]:
    for p in procs:
        assert p.returncode == 0, (p.args, p.stderr)
    return [p.stdout for p in procs]


def comparable_inspect(doc: dict) -> dict:
    """What users script against; ids, times, paths and the create command aside."""
    return {
        "Name": doc["Name"], "State": doc["State"], "ExitPolicy": doc["ExitPolicy"],
        "Hostname": doc["Hostname"], "Labels": doc.get("Labels", {}),
        "CreateCgroup": doc["CreateCgroup"], "CreateInfra": doc["CreateInfra"],
        "SharedNamespaces": sorted(doc["SharedNamespaces"]),
        "NumContainers": doc["NumContainers"],
        "ContainerStates": sorted(c["State"] for c in doc["Containers"]),
        "InfraName": [c["Name"] for c in doc["Containers"]
                      if c["Id"] == doc["InfraContainerID"]] == [doc["Id"][:12] + "-infra"],
        "CgroupPath": doc["CgroupPath"] == doc["CgroupParent"] + "/" + doc["Id"],
        "InfraConfig": doc["InfraConfig"],
        "keys": sorted(set(doc) - {"CreateCommand"}),
    }


def comparable_ps(rows: list[dict]) -> list[dict]:
    return [{"keys": sorted(r), "Name": r["Name"], "Status": r["Status"],
             "Labels": r["Labels"], "Networks": r["Networks"],
             "Containers": sorted((sorted(c), c["Status"]) for c in r["Containers"]),
             "InfraIdIsAContainer": r["InfraId"] in [c["Id"] for c in r["Containers"]]}
            for r in rows]


def test_pod_inspect_ps_and_members_agree_with_podman(both):
    ids = _ok(*both.both("pod", "create", "--name", "pp", "--network", "none",
                         "--label", "tier=web", "--exit-policy", "continue"))
    assert all(len(i.strip()) == 64 for i in ids)

    def inspects():
        return [comparable_inspect(json.loads(o)) for o in _ok(*both.both("pod", "inspect",
                                                                          "pp"))]

    def ps():
        return [comparable_ps(json.loads(o)) for o in _ok(*both.both("pod", "ps", "--format",
                                                                     "json"))]

    expected, got = inspects()
    assert got == expected
    expected, got = ps()
    assert got == expected

    # a member: the pod's hostname everywhere, its own line in the shared hosts file
    outs = _ok(*both.both("run", "--rm", "--pod", "pp", "--name", "m1", both.image,
                          "sh", "-c", MEMBER))
    for out in outs:
        lines = out.splitlines()
        assert lines[:3] == ["pp", "HOSTNAME=pp", "pp"], out
        assert "127.0.0.1\tpp m1" in lines, out
    _ok(*both.both("run", "-d", "--pod", "pp", "--name", "m2", both.image, "sleep", "1000"))
    expected, got = inspects()
    assert got == expected and got["State"] == "Running" and got["NumContainers"] == 2
    expected, got = ps()
    assert got == expected

    # refusals: the same exit code and message
    for args in (("run", "--rm", "--pod", "pp", "-p", "8080:80", both.image, "true"),
                 ("run", "--rm", "--pod", "pp", "--hostname", "x", both.image, "true"),
                 ("pod", "create", "--share", "bogus")):
        theirs, ours = both.both(*args)
        assert (theirs.returncode, ours.returncode) == (125, 125), args
        message = theirs.stderr.strip().removeprefix("Error: ")
        assert json.loads(ours.stderr)["error"]["message"] == message

    refused = both.both("pod", "rm", "pp")
    assert [p.returncode for p in refused] == [125, 125]

    stopped = _ok(*both.both("pod", "stop", "-t", "0", "pp"))
    assert stopped[0] == stopped[0] and all(len(s.strip()) == 64 for s in stopped)
    expected, got = inspects()
    assert got == expected and got["State"] == "Exited"
    expected, got = ps()
    assert got == expected
    removed = _ok(*both.both("pod", "rm", "pp"))
    assert [r.strip() for r in removed] == [i.strip() for i in ids]
    assert [p.returncode for p in both.both("pod", "exists", "pp")] == [1, 1]


def test_share_and_hostname_options_agree_with_podman(both):
    _ok(*both.both("pod", "create", "--name", "sh1", "--network", "none", "--share", "+pid",
                   "--hostname", "box"))
    docs = [json.loads(o) for o in _ok(*both.both("pod", "inspect", "sh1"))]
    assert [sorted(d["SharedNamespaces"]) for d in docs] == [["ipc", "net", "pid", "uts"]] * 2
    assert [d["Hostname"] for d in docs] == ["box", "box"]
    outs = _ok(*both.both("run", "--rm", "--pod", "sh1", both.image, "sh", "-c",
                          "hostname; ps -o pid,comm | grep -c catatonit"))
    assert [o.split() for o in outs] == [["box", "1"], ["box", "1"]]  # pid ns shared
    _ok(*both.both("pod", "rm", "-f", "sh1"))
