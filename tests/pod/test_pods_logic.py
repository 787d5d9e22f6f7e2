"""Pods, the pure half: --share, names, status rules, podman's refusals, the infra
image's tar, the cgroup limit plan."""

from __future__ import annotations

import io
import tarfile

import pytest

from podkit_common import errors
from podkit_common.names import valid_name
from podkit_runtime import _pod_cgroup, _pod_members
from podkit_runtime import _pod_record as R
from podkit_runtime._pods import pod_status


@pytest.mark.parametrize(("value", "expected"), [
    (None, ["ipc", "net", "uts"]),
    ("ipc,net,uts", ["ipc", "net", "uts"]),
    ("net", ["net"]),
    ("+pid", ["ipc", "net", "uts", "pid"]),
    ("+net", ["ipc", "net", "uts"]),
    ("none", []),
    ("cgroup,pid", ["cgroup", "pid"]),
    ("net,user", ["net"]),
])
def test_share_takes_podmans_forms(value, expected):
    assert R.parse_share(value) == expected


@pytest.mark.parametrize("value", ["bogus", "net,mnt", "+bogus"])
def test_a_bad_share_gets_podmans_message(value):
    with pytest.raises(errors.UsageError) as info:
        R.parse_share(value)
    bad = next(p for p in value.lstrip("+").split(",") if p not in R.SHAREABLE)
    assert str(info.value).startswith(
        f"invalid kernel namespace to share: {bad}. Options are: cgroup, ipc, net, pid, uts "
        "or none")


@pytest.mark.parametrize("name", ["-x", "a b", "é", ""])
def test_pod_names_follow_podmans_rule(name):
    with pytest.raises(errors.UsageError):
        R.new_record(R.PodOptions(name=name), set())


def test_a_taken_name_is_a_conflict_and_a_new_record_has_podmans_defaults():
    with pytest.raises(errors.Conflict):
        R.new_record(R.PodOptions(name="web"), {"web"})
    rec = R.new_record(R.PodOptions(name="web", labels={"a": "b"}), set())
    assert len(rec["id"]) == 64 and rec["name"] == "web" and rec["hostname"] == "web"
    assert rec["share"] == ["ipc", "net", "uts"] and rec["exit_policy"] == "continue"
    assert rec["infra"]["name"] == f"{rec['id'][:12]}-infra"
    assert rec["cgroup_path"] == f"/podkit/{rec['id']}"
    generated = R.new_record(R.PodOptions(), {"web"})
    assert valid_name(generated["name"])


def test_exit_policy_and_limits_are_checked_before_anything_is_made():
    with pytest.raises(errors.UsageError, match="exit policy"):
        R.new_record(R.PodOptions(exit_policy="sometimes"), set())
    with pytest.raises(errors.UsageError):
        R.new_record(R.PodOptions(cpus="lots"), set())
    with pytest.raises(errors.UsageError, match="6MB"):
        R.new_record(R.PodOptions(memory="1m"), set())


def test_no_infra_means_nothing_to_share_and_no_ports():
    rec = R.new_record(R.PodOptions(infra=False), set())
    assert rec["share"] == [] and rec["infra"]["name"] is None
    with pytest.raises(errors.UsageError):
        R.new_record(R.PodOptions(infra=False, publish=("8080:80",)), set())


@pytest.mark.parametrize(("states", "status"), [
    ([], "Created"),
    (["running", "running"], "Running"),
    (["running", "exited"], "Degraded"),
    (["running", "created"], "Degraded"),
    (["paused", "paused"], "Paused"),
    (["exited", "exited"], "Exited"),
    (["created", "created"], "Created"),
    (["configured", "created"], "Created"),
    (["created", "exited"], "Created"),
])
def test_pod_status_follows_podmans_rules(states, status):
    assert pod_status(states) == status


def test_members_refuse_what_belongs_to_the_pod_with_podmans_messages():
    pod = {"share": ["ipc", "net", "uts"]}
    cases = [
        (("mynet", None, False, None), "networks must be defined when the pod is created"),
        ((None, ["8080:80"], False, None), "published or exposed ports must be defined when "
                                           "the pod is created"),
        ((None, None, True, None), "published or exposed ports must be defined when the pod "
                                   "is created"),
        ((None, None, False, ["db:1.2.3.4"]), "extra host entries must be specified on the pod"),
    ]
    for args, message in cases:
        with pytest.raises(errors.UsageError) as info:
            _pod_members.check_member_network(pod, *args)
        assert str(info.value) == ("invalid config provided: " + message + ": network "
                                   "cannot be configured when it is shared with a pod")
    _pod_members.check_member_network({"share": ["ipc"]}, "mynet", ["80"], True, ["a:1.1.1.1"])

    class Opts:
        hostname = "mine"

    with pytest.raises(errors.UsageError) as info:
        _pod_members.validate_member(pod, Opts())
    assert str(info.value) == ("invalid config provided: cannot set hostname when joining the "
                               "pod UTS namespace: invalid configuration")
    _pod_members.validate_member({"share": ["net"]}, Opts())


def test_cgroup_limits_plan_v1_and_v2():
    assert _pod_cgroup.limit_files("0.5", "64m", unified=False) == {
        "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"},
        "memory": {"memory.limit_in_bytes": str(64 << 20)}}
    assert _pod_cgroup.limit_files("2", None, unified=True) == {"": {"cpu.max": "200000 100000"}}
    assert _pod_cgroup.limit_files(None, None, unified=False) == {}


def test_the_pause_tar_holds_only_catatonit_and_is_the_same_every_time():
    from podkit_pod._pods import pause_image_name, pause_tar

    binary = b"\x7fELF pretend"
    first, second = pause_tar(binary), pause_tar(binary)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert [(m.name, m.mode, m.uid, m.gid, m.isfile()) for m in members] == [
            ("catatonit", 0o755, 0, 0, True)]
        assert tar.extractfile(members[0]).read() == binary
    name = pause_image_name(binary)
    assert name.startswith("localhost/podkit-pause:0.") and name != pause_image_name(b"other")


def test_host_lines_are_added_once_and_removed_exactly(tmp_path):
    from podkit_common.roots import Roots

    roots = Roots(tmp_path / "root", tmp_path / "run")
    infra = "a" * 64
    hosts = tmp_path / "run" / "bundles" / infra / "hosts"
    hosts.parent.mkdir(parents=True)
    text = "127.0.0.1\tlocalhost\n127.0.1.1\tweb web-infra\n"
    hosts.write_text(text)
    inode = hosts.stat().st_ino
    pod = {"id": "b" * 64, "hostname": "web"}
    for _ in range(2):
        _pod_members.add_host_entry(roots, pod, infra, "srv")
    _pod_members.add_host_entry(roots, pod, infra, "cli")
    assert hosts.read_text() == text + "127.0.0.1\tweb srv\n127.0.0.1\tweb cli\n"
    _pod_members.remove_host_entry(roots, pod["id"], infra, "srv")
    _pod_members.remove_host_entry(roots, pod["id"], infra, "cli")
    assert hosts.read_text() == text
    assert hosts.stat().st_ino == inode  # bind-mounted into members: edited in place


def _line(name: str, status: str, labels: dict, ctrs: list[tuple[str, str, str]],
          networks: list[str] | None = None) -> dict:
    return {"Id": (name[0] * 64), "Name": name, "Status": status, "Labels": labels,
            "Networks": networks or [],
            "Containers": [{"Id": i * 64, "Names": n, "Status": s} for i, n, s in ctrs]}


def test_pod_ps_filters_follow_podmans_keys():
    from podkit_runtime._pod_filter import filter_pods

    lines = [_line("web", "Running", {"tier": "front"}, [("1", "web-infra", "running"),
                                                         ("2", "srv", "running")], ["n1"]),
             _line("db", "Exited", {"tier": "back", "x": ""}, [("3", "db-infra", "exited")])]

    def names(*filters: str) -> list[str]:
        return [x["Name"] for x in filter_pods(lines, list(filters))]

    assert names() == ["web", "db"]
    assert names("name=^w") == ["web"] and names("name=^d") == ["db"]
    assert names("id=ddd") == ["db"]
    assert names("label=tier=back") == ["db"] and names("label=tier") == ["web", "db"]
    assert names("status=running") == ["web"] and names("status=Exited") == ["db"]
    assert names("status=running", "status=exited") == ["web", "db"]  # same key: any
    assert names("status=running", "label=tier=back") == []           # keys: all
    assert names("ctr-names=srv") == ["web"] and names("ctr-ids=333") == ["db"]
    assert names("ctr-status=exited") == ["db"] and names("ctr-number=2") == ["web"]
    assert names("network=n1") == ["web"]
    for bad in ("bogus=1", "status=sleepy", "nofilter", "ctr-number=two"):
        with pytest.raises(errors.UsageError):
            filter_pods(lines, [bad])
