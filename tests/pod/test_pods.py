"""Pods against real conmon, runc, overlayfs and cgroups, through `pod pod ...` and
`pod run --pod` (no network: --network none pods; the bridge e2e is in
tests/e2e/test_pod_e2e.py), and through the stage executables."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.schemas import SchemaSet
from tests.testbed.env import mounts_under
from tests.testbed.procs import eventually, live_mentions
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_runtime"])
CGROUP = Path("/sys/fs/cgroup")


@pytest.fixture(autouse=True)
def _needs_conmon_and_catatonit() -> None:
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")


def image(images) -> str:
    return images.ref("busybox:latest").removeprefix("docker://")


def pod(env, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = sh("pod " + " ".join(shlex.quote(a) for a in args), env=env)
    if check:
        assert proc.returncode == 0, (args, proc.stderr.decode())
    return proc


def out(env, *args: str) -> str:
    return pod(env, *args).stdout.decode()


def run(env, images, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """`pod run --tls-verify=false ARGS... IMAGE`: the last args after "--" go after the
    image."""
    i = args.index("--")
    return pod(env, "run", "--tls-verify=false", *args[:i], image(images), *args[i + 1:],
               check=check)


def inspect(env, ref: str) -> dict:
    doc = jsonio.loads(pod(env, "pod", "inspect", ref).stdout)
    SCHEMAS.validate(doc, "urn:podkit:runtime:pod-inspect")
    return doc


def ps_json(env) -> list[dict]:
    rows = jsonio.loads(pod(env, "pod", "ps", "--format", "json").stdout)
    for row in rows:
        SCHEMAS.validate(row, "urn:podkit:runtime:pod-ps-line")
    return rows


def container(env, name: str) -> dict:
    return jsonio.loads(pod(env, "inspect", name).stdout)[0]


def container_pid(env, name: str) -> int:
    return int(container(env, name)["State"]["Pid"])


def ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def cgroup_dirs(path: str) -> list[Path]:
    return [d / path.strip("/") for d in CGROUP.iterdir()
            if (d / path.strip("/")).is_dir()]


def test_members_share_the_infras_namespaces_hostname_and_hosts_file(images, podkit_env,
                                                                    tmp_path):
    env = podkit_env
    pod_id = out(env, "pod", "create", "--name", "web", "--network", "none",
                 "--label", "team=a").strip()
    assert len(pod_id) == 64
    info = inspect(env, "web")
    assert info["State"] == "Created" and info["NumContainers"] == 1
    assert info["SharedNamespaces"] == ["ipc", "net", "uts"] and info["Labels"] == {"team": "a"}
    infra = info["InfraContainerID"]
    assert info["Containers"] == [{"Id": infra, "Name": f"{pod_id[:12]}-infra",
                                   "State": "created"}]
    assert info["CgroupPath"] == f"/podkit/{pod_id}" and cgroup_dirs(info["CgroupPath"])

    # A member starts the infra first, then joins it.
    run(env, images, "-d", "--name", "srv", "--pod", "web", "--", "httpd", "-f", "-p", "8080",
        "-h", "/etc")
    assert inspect(env, "web")["State"] == "Running"
    srv, infra_pid = container_pid(env, "srv"), container_pid(env, infra)
    for kind in ("net", "uts", "ipc"):
        assert ns(srv, kind) == ns(infra_pid, kind)
    assert ns(srv, "pid") != ns(infra_pid, "pid")  # not shared by default, as in podman
    srv_id = container(env, "srv")["Id"]
    for controller in ("pids", "memory"):  # the pod cgroup parents its containers'
        if (CGROUP / controller).is_dir():
            assert (CGROUP / controller / info["CgroupPath"].strip("/") / f"podkit-{srv_id}"
                    ).is_dir()

    script = ("hostname; echo HOSTNAME=$HOSTNAME; cat /etc/hosts; "
              "wget -qO- http://127.0.0.1:8080/passwd | head -1")
    proc = run(env, images, "--rm", "--name", "cli", "--pod", "web", "--", "sh", "-c", script)
    text = proc.stdout.decode()
    assert text.splitlines()[0] == "web" and "HOSTNAME=web" in text
    assert "127.0.0.1\tweb srv\n" in text and "127.0.0.1\tweb cli\n" in text
    assert text.rstrip().endswith("root:x:0:0:root:/root:/bin/sh")  # reached srv on localhost
    hosts = Path(env["PODKIT_RUNROOT"], "bundles", infra, "hosts").read_text()
    assert "127.0.0.1\tweb srv\n" in hosts and "cli" not in hosts  # cli's went with it

    rows = ps_json(env)
    assert [(r["Name"], r["Status"], len(r["Containers"])) for r in rows] == [
        ("web", "Running", 2)]
    table = out(env, "pod", "ps").splitlines()
    assert table[0].split() == ["POD", "ID", "NAME", "STATUS", "CREATED", "INFRA", "ID", "#",
                                "OF", "CONTAINERS"]
    assert table[1].split()[:3] == [pod_id[:12], "web", "Running"]
    assert out(env, "pod", "ps", "--format", "{{.Name}} {{.NumberOfContainers}}") == "web 2\n"

    # stop: members then infra; start: infra then members, joined again.
    assert out(env, "pod", "stop", "-t", "0", "web").strip() == pod_id
    assert inspect(env, "web")["State"] == "Exited"
    assert out(env, "pod", "start", "web").strip() == pod_id
    assert inspect(env, "web")["State"] == "Running"
    srv2, infra2 = container_pid(env, "srv"), container_pid(env, infra)
    assert srv2 != srv and ns(srv2, "net") == ns(infra2, "net")

    refused = pod(env, "pod", "rm", "web", check=False)
    assert refused.returncode == 125 and b"cannot be removed without force" in refused.stderr
    assert out(env, "pod", "rm", "-f", "-t", "0", "web").strip() == pod_id
    assert pod(env, "pod", "exists", "web", check=False).returncode == 1
    assert out(env, "ps", "-a", "-q") == "" and ps_json(env) == []
    assert not cgroup_dirs(info["CgroupPath"])
    assert not list(Path(env["PODKIT_RUNROOT"], "bundles").iterdir())
    assert eventually(lambda: not live_mentions(tmp_path), "no process left")
    assert [m for m in mounts_under(tmp_path) if "overlay" in str(m) or "merged" in str(m)
            ] == []


@pytest.mark.parametrize(("args", "message"), [
    (("--hostname", "mine"), "invalid config provided: cannot set hostname when joining the "
                             "pod UTS namespace"),
    (("-p", "8080:80"), "published or exposed ports must be defined when the pod is created"),
    (("--network", "none"), "networks must be defined when the pod is created"),
    (("--add-host", "db:10.1.2.3"), "extra host entries must be specified on the pod"),
])
def test_members_refuse_what_belongs_to_the_pod(images, podkit_env, args, message):
    out(podkit_env, "pod", "create", "--name", "p", "--network", "none")
    proc = run(podkit_env, images, "--rm", "--pod", "p", *args, "--", "true", check=False)
    assert proc.returncode == 125 and message.encode() in proc.stderr
    assert inspect(podkit_env, "p")["NumContainers"] == 1  # nothing joined
    out(podkit_env, "pod", "rm", "-f", "p")


def test_bad_share_and_names_are_refused_like_podman(podkit_env):
    proc = pod(podkit_env, "pod", "create", "--share", "bogus", check=False)
    assert proc.returncode == 125
    assert (b"invalid kernel namespace to share: bogus. Options are: cgroup, ipc, net, pid, "
            b"uts or none") in proc.stderr
    out(podkit_env, "pod", "create", "--name", "twice", "--network", "none")
    again = pod(podkit_env, "pod", "create", "--name", "twice", check=False)
    assert again.returncode == 125 and b"name twice is in use" in again.stderr
    out(podkit_env, "pod", "rm", "twice")


def test_pod_limits_are_on_the_pod_cgroup_that_parents_its_containers(images, podkit_env):
    env = podkit_env
    out(env, "pod", "create", "--name", "lim", "--network", "none", "--cpus", "0.5",
        "--memory", "64m", "--add-host", "db.test:10.1.2.3", "--dns", "10.9.9.9")
    info = inspect(env, "lim")
    assert info["CPUQuota"] == 50000 and info["CPUPeriod"] == 100000
    assert info["MemoryLimit"] == 64 << 20
    rel = info["CgroupPath"].strip("/")
    if (CGROUP / "memory").is_dir():
        assert (CGROUP / "memory" / rel / "memory.limit_in_bytes").read_text().strip() == \
            str(64 << 20)
        assert (CGROUP / "cpu" / rel / "cpu.cfs_quota_us").read_text().strip() == "50000"
    proc = run(env, images, "--rm", "--pod", "lim", "--", "cat", "/proc/self/cgroup",
               "/etc/hosts", "/etc/resolv.conf")
    text = proc.stdout.decode()
    # the pod's --add-host and --dns, through the infra's files
    assert "10.1.2.3\tdb.test\n" in text and "nameserver 10.9.9.9\n" in text
    assert info["InfraConfig"]["HostAdd"] == ["db.test:10.1.2.3"]
    memory = [line for line in text.splitlines() if ":memory:" in line
              or line.startswith("0::")]
    assert memory and all(info["Id"] in line or line.endswith(":/") for line in memory)
    out(env, "pod", "rm", "-f", "lim")
    assert not cgroup_dirs(info["CgroupPath"])


def test_two_pod_creates_at_once_make_one_infra_image(podkit_env):
    env = podkit_env
    procs = [subprocess.Popen(["pod", "pod", "create", "--name", f"c{i}", "--network", "none"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert [r[2] for r in results] == [0, 0], [r[1] for r in results]
    images_out = out(env, "images", "--format", "json")
    names = [n for img in jsonio.loads(images_out) for n in img.get("Names") or []]
    pause = [n for n in names if "podkit-pause" in n]
    assert len(pause) == 1 and pause[0].startswith("localhost/podkit-pause:")
    ids = {inspect(env, f"c{i}")["InfraContainerID"] for i in range(2)}
    assert len(ids) == 2
    out(env, "pod", "rm", "c0", "c1")


def test_exit_policy_stop_stops_the_pod_when_its_last_member_exits(images, podkit_env):
    env = podkit_env
    out(env, "pod", "create", "--name", "once", "--network", "none", "--exit-policy", "stop")
    run(env, images, "-d", "--name", "brief", "--pod", "once", "--", "sh", "-c",
        "echo bye; sleep 1")
    # logs -f follows the members and ends when they have exited
    assert out(env, "pod", "logs", "-f", "once") == f"{container(env, 'brief')['Id'][:12]} bye\n"
    assert eventually(lambda: inspect(env, "once")["State"] == "Exited",
                      "the pod stopped after its member", limit=60)
    assert inspect(env, "once")["ExitPolicy"] == "stop"
    out(env, "pod", "rm", "once")


def test_kill_pause_top_stats_logs_restart_prune(images, podkit_env):
    env = podkit_env
    pod_id = out(env, "pod", "create", "--name", "ops", "--network", "none").strip()
    run(env, images, "-d", "--name", "talker", "--pod", "ops", "--", "sh", "-c",
        "echo one; echo two; sleep 1000")
    eventually(lambda: "two" in out(env, "pod", "logs", "ops"), "the member's output")
    cid = container(env, "talker")["Id"]
    assert out(env, "pod", "logs", "ops") == f"{cid[:12]} one\n{cid[:12]} two\n"
    top = out(env, "pod", "top", "ops")
    assert "sleep 1000" in top and "catatonit" in top
    assert out(env, "pod", "pause", "ops")
    assert inspect(env, "ops")["State"] == "Paused"
    out(env, "pod", "unpause", "ops")
    assert inspect(env, "ops")["State"] == "Running"
    stats = jsonio.loads(out(env, "pod", "stats", "--format", "json", "ops"))
    assert {s["Name"] for s in stats} == {"talker", inspect(env, "ops")["Containers"][0]["Name"]}
    before = container_pid(env, "talker")
    out(env, "pod", "restart", "ops")
    assert inspect(env, "ops")["State"] == "Running" and container_pid(env, "talker") != before
    out(env, "pod", "kill", "ops")
    eventually(lambda: inspect(env, "ops")["State"] == "Exited", "killed")
    out(env, "pod", "create", "--name", "fresh", "--network", "none")
    assert out(env, "pod", "prune", "-f").split() == [pod_id]  # Exited, not Created ones
    assert pod(env, "pod", "exists", "ops", check=False).returncode == 1
    assert pod(env, "pod", "exists", "fresh", check=False).returncode == 0
    out(env, "pod", "rm", "fresh")


def test_the_stage_executables_make_the_same_pod(images, podkit_env, tmp_path):
    """pod-runtime pod create | (infra through pod-storage, pod-runtime, pod-netsetup) ...
    a member through `pod-runtime bundle --pod`, and the pod record, inspect and hosts
    file come out as with `pod pod`."""
    env = podkit_env
    ref = images.ref("busybox:latest")
    created = jsonio.loads(sh("pod-runtime pod create --name pipe", env=env).stdout)
    SCHEMAS.validate(created, "urn:podkit:runtime:pod")
    pod_id = created["pod"]["id"]
    infra_name = created["pod"]["infra"]["name"]
    catatonit = shutil.which("catatonit")
    build = tmp_path / "pause"
    build.mkdir()
    shutil.copy(catatonit, build / "catatonit")
    steps = [
        f"tar -C {build} -cf - catatonit | pod-storage import-tarball - "
        "localhost/podkit-pause:pipeline --change 'ENTRYPOINT [\"/catatonit\", \"-P\"]' "
        ">/dev/null",
        f"pod-storage create --image localhost/podkit-pause:pipeline --name {infra_name}"
        " | pod-runtime pod bundle-infra pipe | pod-netsetup attach --network none"
        f" | pod-runtime create > {tmp_path}/infra.json",
        f"pod-image-pull --tls-verify=false {ref} | pod-storage import"
        " | pod-storage create --name srv | pod-runtime bundle --pod pipe -- httpd -f -p 8080"
        " -h /etc | pod-runtime run -d",
        f"pod-storage create --image {ref.removeprefix('docker://')} --name cli"
        " | pod-runtime bundle --pod pipe -- sh -c 'hostname; cat /etc/hosts;"
        " wget -qO- http://127.0.0.1:8080/passwd | head -1' | pod-runtime run",
    ]
    results = [sh(step, env=env) for step in steps]
    for step, proc in zip(steps, results, strict=True):
        assert proc.returncode == 0, (step, proc.stderr.decode())
    srv = jsonio.loads(results[2].stdout)
    assert srv["pod"] == {"id": pod_id, "name": "pipe"}
    SCHEMAS.validate(srv, "urn:podkit:runtime:bundle")
    talk = results[3].stderr.decode()
    assert talk.splitlines()[0] == "pipe" and "127.0.0.1\tpipe srv" in talk
    assert "root:x:0:0:root:/root:/bin/sh" in talk
    record = jsonio.loads(Path(env["PODKIT_ROOT"], "runtime", "containers",
                               srv["container"]["id"], "record.json").read_bytes())
    assert record["pod"] == {"id": pod_id, "name": "pipe"}
    lines = [jsonio.loads(x) for x in sh("pod-runtime pod ps", env=env).stdout.splitlines()]
    for line in lines:
        SCHEMAS.validate(line, "urn:podkit:runtime:pod-ps-line")
    assert [(x["Name"], x["Status"]) for x in lines] == [("pipe", "Degraded")]  # cli exited
    info = jsonio.loads(sh("pod-runtime pod inspect pipe", env=env).stdout)
    assert info == inspect(env, "pipe")  # the stage and `pod pod` agree
    top = jsonio.loads(sh("pod-runtime pod top pipe", env=env).stdout)
    SCHEMAS.validate(top, "urn:podkit:runtime:pod-top")
    assert {p["Container"] for p in top["processes"]} == {"srv", infra_name}
    logs = [jsonio.loads(x) for x in sh("pod-runtime pod logs pipe", env=env).stdout.split(b"\n")
            if x.strip()]
    for line in logs:
        SCHEMAS.validate(line, "urn:podkit:runtime:pod-log-line")
    assert next(x["Message"] for x in logs if x["Name"] == "cli") == "pipe"
    for row in [jsonio.loads(x) for x in sh("pod-runtime pod stats pipe",
                                            env=env).stdout.splitlines()]:
        SCHEMAS.validate(row, "urn:podkit:runtime:pod-stats-line")
    stopped = jsonio.loads(sh("pod-runtime pod stop -t 0 pipe", env=env).stdout)
    SCHEMAS.validate(stopped, "urn:podkit:runtime:pod")
    assert stopped["pod"]["status"] == "Exited"
    removal = sh(f"pod-runtime pod rm pipe | tee {tmp_path}/rm.json | pod-netsetup detach",
                 env=env)
    assert removal.returncode == 0, removal.stderr.decode()
    removed = jsonio.loads((tmp_path / "rm.json").read_bytes())
    SCHEMAS.validate(removed, "urn:podkit:runtime:pod-removal")
    assert removed["container"]["name"] == infra_name and removed["removed"][-1]["infra"]
    ids = [item["id"] for item in removed["removed"]]
    assert len(ids) == 3 and {srv["container"]["id"], removed["container"]["id"]} < set(ids)
    gone = jsonio.loads(sh("pod-runtime pod rm pipe", env=env).stderr.splitlines()[-1])
    assert gone["error"]["type"] == "NotFound"
    for name in ("srv", "cli", infra_name):
        assert sh(f"pod-storage rm {name}", env=env).returncode == 0
    assert eventually(lambda: not live_mentions(tmp_path), "no process left")
    assert not cgroup_dirs(f"/podkit/{pod_id}")


def test_pod_create_members_run_when_the_pod_starts(images, podkit_env):
    """`pod create --pod` makes members (created, the infra too: nothing runs before the
    pod starts, as with podman); `pod pod start` runs them; a member removed alone takes
    its hosts line and membership along."""
    env = podkit_env
    out(env, "pod", "create", "--name", "trio", "--network", "none")
    for i in range(3):
        out(env, "create", "--tls-verify=false", "--pod", "trio", "--name", f"m{i}",
            image(images), "sleep", "1000")
    assert sorted(c["State"] for c in inspect(env, "trio")["Containers"]) == [
        "created", "created", "created", "created"]
    out(env, "pod", "start", "trio")
    info = inspect(env, "trio")
    assert info["State"] == "Running" and info["NumContainers"] == 4
    assert container(env, "m0")["Pod"] == info["Id"]
    hosts = Path(env["PODKIT_RUNROOT"], "bundles", info["InfraContainerID"], "hosts")
    assert "127.0.0.1\ttrio m1\n" in hosts.read_text()
    out(env, "rm", "-f", "-t", "0", "m1")
    assert "m1" not in hosts.read_text() and inspect(env, "trio")["NumContainers"] == 3
    out(env, "pod", "rm", "-f", "-t", "0", "trio")
    assert out(env, "ps", "-a", "-q") == ""


def test_infra_name_image_and_command(images, podkit_env):
    env = podkit_env
    out(env, "pull", "--tls-verify=false", image(images))
    out(env, "pod", "create", "--name", "custom", "--network", "none", "--infra-name",
        "holder", "--infra-image", image(images), "--infra-command", "sleep 1000")
    info = inspect(env, "custom")
    assert [c["Name"] for c in info["Containers"]] == ["holder"]
    proc = run(env, images, "--rm", "--pod", "custom", "--", "ps", "-o", "comm")
    assert proc.stdout.decode().split() == ["COMMAND", "ps"]  # pid ns not shared
    assert container(env, "holder")["Config"]["Cmd"] == ["sleep", "1000"]
    out(env, "pod", "rm", "-f", "-t", "0", "custom")
    assert out(env, "ps", "-a", "-q") == ""
