"""Named volumes: the library (create, inspect, users, rm, prune, copy-up) and
`pod-runtime volume ...` as a user runs it, outputs validated against the schemas."""

from __future__ import annotations

import os
import stat

import pytest

from podkit_common import errors, jsonio
from podkit_common.roots import Roots
from podkit_common.schemas import SchemaSet
from podkit_runtime import _volumes as V
from tests.testbed.shell import sh

SCHEMAS = SchemaSet(["podkit_runtime"])
CID1, CID2 = "1" * 64, "2" * 64


@pytest.fixture
def roots(tmp_path) -> Roots:
    return Roots(tmp_path / "root", tmp_path / "runroot")


def test_create_inspect_and_podmans_layout(roots):
    rec, made = V.create_volume(roots, "data", labels={"a": "b"})
    assert made is True
    assert rec["Mountpoint"] == str(roots.root / "volumes" / "data" / "_data")
    assert os.path.isdir(rec["Mountpoint"])
    SCHEMAS.validate(rec, "urn:podkit:runtime:volume")
    assert V.inspect_volume(roots, "data") == rec
    again, made = V.create_volume(roots, "data", ignore=True)
    assert made is False and again == rec
    with pytest.raises(errors.Conflict, match="already exists"):
        V.create_volume(roots, "data")
    with pytest.raises(errors.UsageError):
        V.create_volume(roots, "../escape")
    anon, _ = V.create_volume(roots, anonymous=True)
    assert len(anon["Name"]) == 64 and anon["Anonymous"] is True
    assert [r["Name"] for r in V.list_volumes(roots)] == sorted(["data", anon["Name"]])


def test_users_block_rm_until_released(roots):
    V.acquire_volume(roots, "shared", CID1)
    rec = V.acquire_volume(roots, "shared", CID2)
    assert rec["users"] == [CID1, CID2] and rec["MountCount"] == 2
    with pytest.raises(errors.Conflict, match="volume is being used"):
        V.remove_volume(roots, "shared")
    assert V.prune_volumes(roots) == []
    V.release_volumes(roots, ["shared"], CID1)
    V.release_volumes(roots, ["shared"], CID2)
    assert V.prune_volumes(roots) == ["shared"]
    assert not (roots.root / "volumes" / "shared").exists()
    V.acquire_volume(roots, "forced", CID1)
    assert V.remove_volume(roots, "forced", force=True)
    with pytest.raises(errors.NotFound):
        V.inspect_volume(roots, "forced")


def test_anonymous_volumes_go_with_their_container_when_asked(roots):
    anon = V.acquire_volume(roots, None, CID1)
    named = V.acquire_volume(roots, "named", CID1)
    assert anon["Anonymous"] is True and named["Anonymous"] is False
    removed = V.release_volumes(roots, [anon["Name"], "named"], CID1, remove_anonymous=True)
    assert removed == [anon["Name"]]
    assert V.volume_exists(roots, "named") and not V.volume_exists(roots, anon["Name"])


def test_a_half_made_volume_is_not_a_volume(roots):
    (roots.root / "volumes" / "half" / "_data").mkdir(parents=True)
    assert not V.volume_exists(roots, "half")
    assert V.list_volumes(roots) == []
    _, made = V.create_volume(roots, "half")
    assert made


def test_copy_up_keeps_owners_modes_and_symlinks_without_following(tmp_path):
    src = tmp_path / "img" / "data"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("content")
    os.chown(src / "file", 1000, 50)
    os.chmod(src / "file", 0o640)
    os.chmod(src / "sub", 0o555)  # read-only dir still gets its files
    (src / "sub" / "inner").write_text("in")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), src / "link")
    os.mkfifo(src / "fifo")
    dest = tmp_path / "vol" / "_data"
    dest.mkdir(parents=True)
    assert V.copy_up(str(src), str(dest)) is True
    st = os.lstat(dest / "file")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 50, 0o640)
    assert (dest / "sub" / "inner").read_text() == "in"
    assert stat.S_IMODE(os.lstat(dest / "sub").st_mode) == 0o555
    assert os.readlink(dest / "link") == str(outside) and os.listdir(outside) == []
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert V.copy_up(str(src), str(dest)) is False  # not empty any more: left alone
    assert V.copy_up(str(tmp_path / "nothing"), str(dest)) is False


def _cli(env, args):
    return sh(f"pod-runtime volume {args}", env=env)


def test_the_volume_commands(podkit_env):
    made = _cli(podkit_env, "create web --label app=web")
    assert made.returncode == 0, made.stderr
    doc = jsonio.loads(made.stdout)
    SCHEMAS.validate(doc, "urn:podkit:runtime:volume-result")
    assert doc["changed"] is True and doc["volume"]["Labels"] == {"app": "web"}
    again = _cli(podkit_env, "create web")
    assert again.returncode == errors.Conflict.exit_code
    assert jsonio.loads(_cli(podkit_env, "create web --ignore").stdout)["changed"] is False
    anon = jsonio.loads(_cli(podkit_env, "create").stdout)["volume"]["Name"]
    lines = _cli(podkit_env, "ls").stdout.splitlines()
    assert sorted(jsonio.loads(line)["Name"] for line in lines) == sorted(["web", anon])
    for line in lines:
        SCHEMAS.validate(jsonio.loads(line), "urn:podkit:runtime:volume")
    inspect = jsonio.loads(_cli(podkit_env, "inspect web").stdout)
    assert inspect["changed"] is False and inspect["volume"]["Name"] == "web"
    assert _cli(podkit_env, "exists web").returncode == 0
    missing = _cli(podkit_env, "exists nope")
    assert missing.returncode == 1 and jsonio.loads(missing.stdout)["exists"] is False
    assert _cli(podkit_env, "inspect nope").returncode == errors.NotFound.exit_code
    removed = jsonio.loads(_cli(podkit_env, f"rm web {anon}").stdout)
    assert removed == {"changed": True, "removed": ["web", anon]}
    assert jsonio.loads(_cli(podkit_env, "prune").stdout) == {"changed": False, "removed": []}
    assert _cli(podkit_env, "ls").stdout == b""


def test_first_use_gives_the_volume_to_the_user_or_the_images_directory(roots, tmp_path):
    V.create_volume(roots, "empty")
    assert V.initialise_volume(roots, "empty", owner=(1000, 1000), source=None) is True
    data = roots.root / "volumes" / "empty" / "_data"
    assert (os.stat(data).st_uid, os.stat(data).st_gid) == (1000, 1000)
    assert V.initialise_volume(roots, "empty", owner=(0, 0), source=None) is False
    assert os.stat(data).st_uid == 1000  # only the first use counts
    image_dir = tmp_path / "img"
    image_dir.mkdir(mode=0o750)
    os.chown(image_dir, 33, 33)
    (image_dir / "seed").write_text("seed")
    V.create_volume(roots, "seeded")
    V.initialise_volume(roots, "seeded", owner=(1000, 1000), source=str(image_dir))
    seeded = roots.root / "volumes" / "seeded" / "_data"
    st = os.stat(seeded)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (33, 0o750)
    assert (seeded / "seed").read_text() == "seed"
    assert V.inspect_volume(roots, "seeded")["NeedsCopyUp"] is False


def test_many_containers_taking_one_new_volume_at_once_fill_it_once(roots, tmp_path):
    """Bundles run concurrently (Ansible forks): one record, every user kept, one copy."""
    from concurrent.futures import ThreadPoolExecutor

    image_dir = tmp_path / "img"
    image_dir.mkdir()
    (image_dir / "seed").write_text("seed")
    cids = [f"{i:064x}" for i in range(8)]

    def take(cid: str) -> bool:
        V.acquire_volume(roots, "busy", cid)
        return V.initialise_volume(roots, "busy", owner=(0, 0), source=str(image_dir))

    with ThreadPoolExecutor(4) as pool:
        firsts = list(pool.map(take, cids))
    assert firsts.count(True) == 1
    rec = V.inspect_volume(roots, "busy")
    assert sorted(rec["users"]) == cids
    assert os.listdir(rec["Mountpoint"]) == ["seed"]


def test_the_volume_api_is_exported(roots):
    import podkit_runtime

    names = {"create_volume", "inspect_volume", "list_volumes", "prune_volumes",
             "remove_volume", "volume_exists"}
    assert names <= set(podkit_runtime.__all__)
    podkit_runtime.create_volume(roots, "exported")
    assert podkit_runtime.volume_exists(roots, "exported")


def test_pod_volume_speaks_podman(podkit_env):
    assert sh("pod volume create web", env=podkit_env).stdout == b"web\n"
    table = sh("pod volume ls", env=podkit_env).stdout.decode().splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and table[1].split() == [
        "local", "web"]
    inspected = jsonio.loads(sh("pod volume inspect web", env=podkit_env).stdout)
    assert isinstance(inspected, list) and inspected[0]["Name"] == "web"
    assert sh("pod volume exists web", env=podkit_env).returncode == 0
    assert sh("pod volume exists nope", env=podkit_env).returncode == 1
    assert sh("pod volume inspect nope", env=podkit_env).returncode == errors.EXIT_RUN_OWN_ERROR
    assert sh("pod volume rm web", env=podkit_env).stdout == b"web\n"
    assert sh("pod volume ls --format names", env=podkit_env).stdout == b""
