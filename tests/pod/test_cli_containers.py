"""`pod ps`, `restart`, `diff`, `mount`/`umount` and the `container` group against real
conmon + runc + overlayfs, compared with podman 4.3.1 (the oracle) where both can run
the same workload."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet

SCHEMAS = SchemaSet(["podkit_pod"])
pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

#: The same workload on both sides: an exited container that changed its rootfs, a
#: running one, and one created and never started.
DONE_SCRIPT = "echo hi; mkdir /newdir; touch /etc/x; rm /bin/ls; exit 3"


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def pod(env: dict[str, str], *args: str, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.args, proc.returncode, proc.stderr)
    return proc.stdout


def bare(images) -> str:
    return images.ref("busybox:latest").removeprefix("docker://")


def make_created(env: dict[str, str], images, name: str, *command: str) -> str:
    """A created (never started) container: `pod create` where it exists, else the
    stage pipeline that ends in `pod-runtime create`."""
    probe = pod(env, "create", "--help")
    if probe.returncode == 0:
        return ok(pod(env, "create", "--tls-verify=false", "--network", "none", "--name", name,
                      bare(images), *command)).strip()
    from tests.testbed.shell import sh

    cmd = (f"pod-image-pull --tls-verify=false {images.ref('busybox:latest')} "
           f"| pod-storage import | pod-storage create --name {name} "
           f"| pod-runtime bundle -- {' '.join(command)} "
           f"| pod-netsetup attach --network none | pod-runtime create")
    proc = sh(cmd, env)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)["container"]["id"]


def pod_workload(env: dict[str, str], images) -> None:
    ref = bare(images)
    done = pod(env, "run", "--tls-verify=false", "--name", "done", "--label", "a=b", ref,
               "sh", "-c", DONE_SCRIPT)
    assert done.returncode == 3, done.stderr
    ok(pod(env, "run", "-d", "--name", "web", "-v", "vol1:/v1", "-v", "/anon", ref,
           "sleep", "1000"))
    make_created(env, images, "made", "true")


def podman_workload(podman, images) -> None:
    ref = bare(images)
    podman.pull(ref)
    podman.run("run", "--network", "none", "--name", "done", "--label", "a=b", ref, "sh", "-c",
               DONE_SCRIPT, check=False)
    podman.run("run", "-d", "--network", "none", "--name", "web", "-v", "vol1:/v1", "-v",
               "/anon", ref, "sleep", "1000")
    podman.run("create", "--network", "none", "--name", "made", ref, "true")


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def without_times(status: str) -> str:
    return re.sub(r"\d+ seconds|Less than a second|1 second|About a minute", "N", status)


@pytest.fixture
def both(podkit_env, podman, images):
    pod_workload(podkit_env, images)
    podman_workload(podman, images)
    try:
        yield podkit_env, podman
    finally:
        pod(podkit_env, "rm", "-af", "-t", "0")


def test_ps_json_has_podmans_fields_and_values(both, images) -> None:
    env, podman = both
    ours = {r["Names"][0]: r for r in json.loads(ok(pod(env, "ps", "-a", "--format", "json")))}
    theirs = {r["Names"][0]: r for r in podman.json("ps", "-a", "--format", "json")}
    assert set(ours) == set(theirs) == {"done", "web", "made"}
    for row in ours.values():
        SCHEMAS.validate(row, "urn:podkit:pod:ps-row")
    same = ("AutoRemove", "Command", "Exited", "ExitCode", "Image", "ImageID", "IsInfra",
            "Labels", "Names", "Namespaces", "Networks", "Pod", "PodName", "Ports", "Size",
            "State")
    for name, want in theirs.items():
        got = ours[name]
        assert set(want) <= set(got), set(want) - set(got)
        assert {k: got[k] for k in same} == {k: want[k] for k in same}, name
        # the same destinations; podman keeps the command line's order, we the bundle's
        assert sorted(got["Mounts"]) == sorted(want["Mounts"]), name
        assert without_times(got["Status"]) == without_times(want["Status"])
        assert without_times(got["CreatedAt"]) == without_times(want["CreatedAt"])
        assert (got["Pid"] > 0) == (want["Pid"] > 0)
        for key in ("ExitedAt", "StartedAt"):  # Go's zero time when it never happened
            assert (got[key] == -62135596800) == (want[key] == -62135596800), (name, key)
    # The default listing: podman's columns, the same cells but for times and ids.
    ours_t = ok(pod(env, "ps", "-a")).splitlines()
    theirs_t = podman.run("ps", "-a").stdout.splitlines()
    assert cells(ours_t[0]) == cells(theirs_t[0])
    mine = sorted(cells(line)[1:] for line in ours_t[1:])
    podmans = sorted(cells(line)[1:] for line in theirs_t[1:])
    norm = [[without_times(c) for c in row] for row in mine]
    assert norm == [[without_times(c) for c in row] for row in podmans]
    # --size: what each wrote, and the whole rootfs; the same table cells as podman's
    sized = {r["Names"][0]: r for r in json.loads(ok(pod(env, "ps", "-a", "--size",
                                                         "--format", "json")))}
    for row in sized.values():
        SCHEMAS.validate(row, "urn:podkit:pod:ps-row")
    podman_sized = {r["Names"][0]: r for r in podman.json("ps", "-a", "--size", "--format",
                                                          "json")}
    assert sized["made"]["Size"]["rwSize"] == podman_sized["made"]["Size"]["rwSize"] == 0
    assert sized["done"]["Size"]["rootFsSize"] > sized["done"]["Size"]["rwSize"] >= 0
    ours_s = {cells(x)[-2]: cells(x)[-1] for x in ok(pod(env, "ps", "-a", "-s")).splitlines()}
    theirs_s = {cells(x)[-2]: cells(x)[-1]
                for x in podman.run("ps", "-a", "--size").stdout.splitlines()}
    assert ours_s["NAMES"] == theirs_s["NAMES"] == "SIZE"
    assert ours_s["made"] == theirs_s["made"], (ours_s, theirs_s)
    # only the running one without -a; --no-trunc shows whole ids and commands
    assert [cells(x)[-1] for x in ok(pod(env, "ps")).splitlines()[1:]] == ["web"]
    long = ok(pod(env, "ps", "-a", "--no-trunc"))
    assert DONE_SCRIPT in long and ours["done"]["Id"] in long
    assert "sh -c echo hi; mk..." in "\n".join(ours_t)


def test_ps_options_select_like_podman(both, images) -> None:
    env, podman = both
    ref = bare(images)

    def names(*args: str, side: str = "pod") -> list[str]:
        fmt = ("--format", "{{.Names}}")
        out = ok(pod(env, "ps", *args, *fmt)) if side == "pod" else \
            podman.run("ps", *args, *fmt).stdout
        return out.split()

    for args in (("-a",), ("--filter", "status=exited"), ("-a", "--filter", "exited=3"),
                 ("-a", "--filter", "label=a=b"), ("-a", "--filter", "label=a"),
                 ("-a", "--filter", "name=^we"), ("-a", "--filter", f"ancestor={ref}"),
                 ("-a", "--filter", "ancestor=nothing"),
                 ("-a", "--filter", "since=done"), ("-a", "--filter", "before=made"),
                 ("-a", "--filter", "status=created"), ("--last", "2"), ("--latest",),
                 ("-a", "--filter", "volume=vol1"), ("-a", "--filter", "volume=/v1"),
                 ("-a", "--sort", "names"), ("-a", "--sort", "runningfor"),
                 ("-a", "--filter", "status=running", "--filter", "status=created")):
        assert names(*args) == names(*args, side="podman"), args
    # --quiet / -q: ids only (12 hex digits), --noheading drops the header
    ids = ok(pod(env, "ps", "-aq")).split()
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert ok(pod(env, "ps", "-a", "--noheading")).count("\n") == 3
    table = ok(pod(env, "ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}")).splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "NAMES"]
    assert sorted(r.split()[1] for r in table[1:]) == ["done", "made", "web"]
    labels = ok(pod(env, "ps", "-a", "--filter", "name=done", "--format", "{{.Labels}}"))
    assert labels == podman.run("ps", "-a", "--filter", "name=done", "--format",
                                "{{.Labels}}").stdout == "map[a:b]\n"
    untagged = ref.rsplit(":", 1)[0]  # podman 4.3.1 misreads a registry's port here
    assert len(names("-a", "--filter", f"ancestor={untagged}")) == 3
    bad = pod(env, "ps", "-a", "--filter", "bogus=1")
    assert bad.returncode == 125 and "bogus is an invalid filter" in bad.stderr
    assert podman.run("ps", "--filter", "bogus=1", check=False).returncode == 125


def test_diff_lists_the_same_changes_as_podman(both) -> None:
    env, podman = both
    assert ok(pod(env, "diff", "done")) == podman.run("diff", "done").stdout
    ours = json.loads(ok(pod(env, "container", "diff", "--format", "json", "done")))
    SCHEMAS.validate(ours, "urn:podkit:pod:container-diff")
    assert ours == json.loads(podman.run("diff", "--format", "json", "done").stdout)
    assert ours == {"changed": ["/bin", "/etc"], "added": ["/etc/x", "/newdir"],
                    "deleted": ["/bin/ls"]}


def is_mountpoint(path: str) -> bool:
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


def test_mount_umount_and_the_mounted_list(both) -> None:
    env, _ = both
    path = ok(pod(env, "mount", "done")).strip()  # exited: its run's mount is gone
    assert Path(path, "newdir").is_dir() and is_mountpoint(path)
    listed = ok(pod(env, "mount")).splitlines()
    done_id = ok(pod(env, "ps", "-aq", "--no-trunc", "--filter", "name=done")).strip()
    assert f"{done_id[:12]}  {path}" in listed
    as_json = json.loads(ok(pod(env, "mount", "--format", "json")))
    assert {"id": done_id, "Names": ["done"], "mountpoint": path} in as_json
    assert ok(pod(env, "umount", "done")) == "done\n"
    assert not is_mountpoint(path)
    # a second mount then umount --all: done is unmounted, the running web is not
    ok(pod(env, "container", "mount", "done"))
    assert ok(pod(env, "umount", "--all")) == done_id + "\n"
    assert not is_mountpoint(path)
    web = json.loads(ok(pod(env, "inspect", "web")))[0]
    assert is_mountpoint(web["Rootfs"]), web["Rootfs"]
    refused = pod(env, "umount", "web")  # its own mount: refused, as libpod does
    assert refused.returncode == 125 and is_mountpoint(web["Rootfs"])
    ok(pod(env, "mount", "web"))  # a second user: that one can go again
    assert ok(pod(env, "umount", "web")) == "web\n" and is_mountpoint(web["Rootfs"])


def test_restart_brings_running_and_exited_containers_back(both) -> None:
    env, _ = both

    def state(name: str) -> dict:
        return json.loads(ok(pod(env, "inspect", name)))[0]

    before = state("web")
    assert ok(pod(env, "restart", "-t", "0", "web")) == "web\n"
    after = state("web")
    assert after["State"]["Status"] == "running"
    assert after["State"]["Pid"] != before["State"]["Pid"]
    assert after["RestartCount"] == before["RestartCount"] + 1
    ok(pod(env, "container", "restart", "done"))  # exited: started again
    ok(pod(env, "wait", "done"))
    again = state("done")
    assert again["State"]["ExitCode"] == 3 and again["RestartCount"] == 1
    # The restarted run did its work again in the same rootfs: mkdir fails now.
    logs = pod(env, "logs", "done")
    assert logs.stdout.count("hi") == 2
    # podman start of a stopped container runs it again
    ok(pod(env, "stop", "-t", "0", "web"))
    assert state("web")["State"]["Status"] == "exited"
    assert ok(pod(env, "start", "web")) == "web\n"
    assert state("web")["State"]["Status"] == "running"
    assert ok(pod(env, "exec", "web", "echo", "inside")) == "inside\n"


def test_container_group_exists_prune_and_exit_codes(both) -> None:
    env, podman = both
    assert pod(env, "container", "exists", "web").returncode == 0
    missing = pod(env, "container", "exists", "nope")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert podman.run("container", "exists", "nope", check=False).returncode == 1
    # podman's codes: rm of a missing container 1, other commands 125
    assert pod(env, "rm", "nope").returncode == podman.run("rm", "nope", check=False).returncode
    running = pod(env, "rm", "web")
    assert running.returncode == podman.run("rm", "web", check=False).returncode == 2
    assert pod(env, "container", "exists", "web").returncode == 0
    assert pod(env, "start", "nope").returncode == 125
    assert ok(pod(env, "wait", "done")) == "3\n"
    listed = ok(pod(env, "container", "ls", "-a", "--format", "{{.Names}}")).split()
    assert sorted(listed) == ["done", "made", "web"]
    assert ok(pod(env, "container", "list", "-aq")) == ok(pod(env, "ps", "-aq"))
    ids = {r["Names"][0]: r["Id"] for r in json.loads(ok(pod(env, "ps", "-a", "--format",
                                                               "json")))}
    pruned = ok(pod(env, "container", "prune", "-f")).split()
    assert sorted(pruned) == sorted([ids["done"], ids["made"]])
    assert ok(pod(env, "ps", "-a", "--format", "{{.Names}}")).split() == ["web"]
    assert pod(env, "container", "exists", "done").returncode == 1


def test_container_group_reuses_the_top_level_commands() -> None:
    from podkit_pod.cli import app
    from podkit_pod.cli_container_group import MIRRORED, command_name, container_app

    top = {command_name(i): i.callback for i in app.registered_commands}
    group = {command_name(i): i.callback for i in container_app.registered_commands}
    for name, source in MIRRORED.items():
        if source in top:
            assert group[name] is top[source], name
    for name in ("ls", "list", "ps", "restart", "diff", "mount", "umount", "rm", "stop",
                 "prune", "exists", "cleanup"):
        assert name in group, name


def test_container_cleanup_releases_an_exited_containers_mount(podkit_env, images) -> None:
    env = podkit_env
    ok(pod(env, "run", "-d", "--tls-verify=false", "--name", "short", bare(images), "true"))
    assert ok(pod(env, "wait", "short")) == "0\n"
    path = ok(pod(env, "mount", "short")).strip()
    cid = ok(pod(env, "container", "cleanup", "short")).strip()
    assert len(cid) == 64 and not is_mountpoint(path)
    assert ok(pod(env, "container", "cleanup", "--rm", "short")).strip() == cid
    assert pod(env, "container", "exists", "short").returncode == 1


# -- the logic above the machine, on rows made by hand (no root needed) ---------------

def _row(name: str, created: float, state: str = "exited", **kw) -> dict:
    from podkit_pod._ps import ZERO_UNIX

    base = {"AutoRemove": False, "Command": ["sh", "-c", "echo a long command line"],
            "CreatedAt": "1 second ago", "Exited": state == "exited", "ExitedAt": ZERO_UNIX,
            "ExitCode": 0, "Id": (name * 64)[:64], "Image": "reg:5000/busybox:latest",
            "ImageID": "ab" * 32, "IsInfra": False, "Labels": None, "Mounts": [],
            "Names": [name], "Namespaces": {}, "Networks": [], "Pid": 0, "Pod": "",
            "PodName": "", "Ports": None, "Size": None, "StartedAt": ZERO_UNIX,
            "State": state, "Status": "Exited (0) 1 second ago", "Created": int(created),
            "_health": "none", "_created": created, "_started": 0.0, "_volumes": []}
    return {**base, **kw}


def test_select_filters_sorts_and_limits_like_podman() -> None:
    from podkit_pod._ps import PsOptions, select

    rows = [_row("a", 1.0), _row("b", 2.0, "running", Pod="p" * 64, PodName="pp",
                                  Networks=["podkit"], _health="healthy",
                                  Labels={"tier": "web"}),
            _row("c", 3.0, "created")]

    def names(**kw) -> list[str]:
        return [r["Names"][0] for r in select(rows, PsOptions(**kw))]

    assert names() == ["b"] and names(all=True) == ["a", "b", "c"]
    assert names(filters=("pod=pp",)) == ["b"] == names(filters=("pod=ppp",))
    assert names(all=True, filters=("network=podkit",)) == ["b"]
    assert names(all=True, filters=("health=healthy",)) == ["b"]
    assert names(all=True, filters=("label=tier=web",)) == ["b"]
    assert names(all=True, filters=("label!=tier",)) == ["a", "c"]
    assert names(all=True, filters=("since=a", "before=c")) == ["b"]
    assert names(last=2) == ["b", "c"] and names(latest=True) == ["c"]
    assert names(all=True, sort="names") == ["a", "b", "c"]
    with pytest.raises(Exception, match="bogus is an invalid filter"):
        names(filters=("bogus=1",))
    with pytest.raises(Exception, match="nope is not a valid status"):
        names(filters=("status=nope",))


def test_table_has_podmans_layout_and_pod_columns() -> None:
    from podkit_pod._ps_format import render, tabwriter

    assert tabwriter([["A", "BB"], ["CCCCCCCCCCCC", ""]]) == \
        "A             BB\nCCCCCCCCCCCC  \n"  # min width 12, padding 2, last unpadded
    row = _row("b", 2.0, "running", Pod="f" * 64, PodName="pp", Status="Up 2 seconds ago",
               Ports=[{"host_ip": "", "container_port": 80, "host_port": 8080, "range": 1,
                       "protocol": "tcp"}])
    text = render([row], None, pod=True)
    head, line = text.splitlines()
    assert re.split(r"\s{2,}", head) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                         "STATUS", "PORTS", "NAMES", "POD ID", "PODNAME"]
    assert re.split(r"\s{2,}", line) == ["b" * 12, "reg:5000/busybox:latest",
                                         "sh -c echo a long...", "1 second ago",
                                         "Up 2 seconds ago", "0.0.0.0:8080->80/tcp", "b",
                                         "f" * 12, "pp"]
    assert render([row], None, quiet_=True) == "b" * 12 + "\n"
    assert render([row], None, noheading=True).count("\n") == 1
    assert "echo a long command line" in render([row], None, no_trunc=True)
    assert render([row], "{{.Pod}} {{.PodName}} {{.Ports}}") == \
        f"{'f' * 12} pp 0.0.0.0:8080->80/tcp\n"


def test_ps_shows_pod_members_and_prune_keeps_the_infra(podkit_env, images) -> None:
    if shutil.which("catatonit") is None:
        pytest.skip("needs catatonit (the pod's infra): apt-get install catatonit")
    env = podkit_env
    pod_id = ok(pod(env, "pod", "create", "--name", "pp", "--network", "none")).strip()
    try:
        ok(pod(env, "run", "-d", "--tls-verify=false", "--pod", "pp", "--name", "member",
               bare(images), "sleep", "1000"))
        ok(pod(env, "run", "-d", "--tls-verify=false", "--name", "alone", bare(images),
               "true"))
        ok(pod(env, "wait", "alone"))
        rows = {r["Names"][0]: r for r in json.loads(ok(pod(env, "ps", "-a", "--format",
                                                             "json")))}
        infra = [r for r in rows.values() if r["IsInfra"]]
        assert len(infra) == 1 and infra[0]["Pod"] == pod_id and infra[0]["PodName"] == "pp"
        assert (rows["member"]["Pod"], rows["member"]["PodName"]) == (pod_id, "pp")
        assert (rows["alone"]["Pod"], rows["alone"]["IsInfra"]) == ("", False)
        table = ok(pod(env, "ps", "-a", "--pod")).splitlines()
        assert cells(table[0])[-2:] == ["POD ID", "PODNAME"]
        member_line = next(line for line in table if " member " in line)
        assert cells(member_line)[-2:] == [pod_id[:12], "pp"]
        in_pod = ok(pod(env, "ps", "-a", "--filter", "pod=pp", "--format", "{{.Names}}"))
        assert sorted(in_pod.split()) == sorted([infra[0]["Names"][0], "member"])
        # prune takes the exited container, never the pod's infra
        ok(pod(env, "stop", "-t", "0", "member"))
        pruned = ok(pod(env, "container", "prune", "-f")).split()
        assert sorted(pruned) == sorted([rows["alone"]["Id"], rows["member"]["Id"]])
        assert pod(env, "container", "exists", infra[0]["Id"]).returncode == 0
    finally:
        pod(env, "pod", "rm", "-f", "pp")
        pod(env, "rm", "-af", "-t", "0")


def test_container_run_leaves_the_commands_own_options_alone(podkit_env, images) -> None:
    """`-q` and `--root` after the image belong to the container's command, under
    `container run` as under `run` (pod's global options are not taken from there)."""
    out = ok(pod(podkit_env, "container", "run", "--rm", "--tls-verify=false", bare(images),
                 "echo", "-q", "--root", "x"))
    assert out == "-q --root x\n"
    assert ok(pod(podkit_env, "container", "ls", "-aq")) == ""


def test_ps_watch_redraws_until_interrupted(podkit_env) -> None:  # type: ignore[no-untyped-def]
    import signal

    bad = subprocess.run(["pod", "ps", "--watch", "1", "--latest"], env=podkit_env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 125 and "watch and latest" in bad.stderr
    proc = subprocess.Popen(["pod", "ps", "-a", "--watch", "1"], env=podkit_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        while seen.count(b"CONTAINER ID") < 2:  # two screens: it redrew
            chunk = proc.stdout.read1(4096)  # type: ignore[union-attr]
            assert chunk, proc.stderr.read()  # type: ignore[union-attr]
            seen += chunk
        assert seen.startswith(b"\x1b[2J\x1b[1;1HCONTAINER ID")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == -signal.SIGINT
