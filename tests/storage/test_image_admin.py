"""Image management as a podman user meets it: images (JSON lines and the table),
inspect (checked against skopeo), tag/untag, rmi (shared layers kept, containers
protect their image) and prune (bytes freed measured on disk)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from tests.testbed.images import busybox_image
from tests.testbed.push import push
from tests.testbed.shell import sh
from tests.testbed.skopeo import Skopeo, needs_skopeo

pytestmark = [pytest.mark.root, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_storage"])


@pytest.fixture(scope="module")
def sharing(registry) -> dict[str, str]:
    """Two images on one base layer: sharing:one (1 layer), sharing:two (2 layers)."""
    refs = {}
    for tag, layers in (("one", 1), ("two", 2)):
        push(registry.url, "sharing", tag, busybox_image(layers, fmt="oci"))
        refs[tag] = f"docker://{registry.url}/sharing:{tag}"
    return refs


def pull(env: dict, ref: str) -> dict:
    proc = sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import",
              env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)["image"]


def storage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pod-storage", *args], capture_output=True, env=env)


def ok(env: dict, *args: str, schema: str | None = None) -> dict:
    proc = storage(env, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = jsonio.loads(proc.stdout)
    if schema:
        SCHEMAS.validate(doc, f"urn:podkit:storage:{schema}")
    return doc


def error_of(proc: subprocess.CompletedProcess) -> dict:
    return jsonio.loads(proc.stderr.splitlines()[-1])["error"]


def listed(env: dict) -> list[dict]:
    proc = storage(env, "images")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [jsonio.loads(line) for line in proc.stdout.splitlines()]
    for row in rows:
        SCHEMAS.validate(row, "urn:podkit:storage:image-line")
    return rows


def disk_usage(root: Path) -> int:
    """st_blocks*512 of every inode under root, once each (what `du` counts)."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def layer_dirs(env: dict) -> set[str]:
    return {p.name for p in (Path(env["PODKIT_ROOT"]) / "layers").iterdir()
            if not p.name.startswith(".")}


def blob_files(env: dict) -> set[str]:
    d = Path(env["PODKIT_ROOT"]) / "blobs" / "sha256"
    return {"sha256:" + p.name for p in d.iterdir()} if d.exists() else set()


def test_images_lists_json_lines_and_podmans_table(images, podkit_env):
    latest = pull(podkit_env, images.ref("busybox:latest"))
    oci = pull(podkit_env, images.ref("busybox:oci"))
    rows = {r["id"]: r for r in listed(podkit_env)}
    assert set(rows) == {latest["id"], oci["id"]}
    assert rows[oci["id"]]["layers"] == 2 and rows[oci["id"]]["size"] > 0
    assert rows[latest["id"]]["digest"] == images.digests["busybox:latest"]
    assert not rows[latest["id"]]["dangling"]

    proc = storage(podkit_env, "images", "--format", "table")
    assert proc.returncode == 0, proc.stderr.decode()
    header, *lines = proc.stdout.decode().splitlines()
    assert re.split(r"\s{2,}", header.strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED",
                                                   "SIZE"]
    table = {}
    for line in lines:
        repo, tag, short, created, size = re.split(r"\s{2,}", line.strip())
        table[tag] = (repo, short, created, size)
    repo = images.ref("busybox:latest").removeprefix("docker://").rsplit(":", 1)[0]
    assert table["latest"][:2] == (repo, latest["id"][:12])
    assert table["oci"][:2] == (repo, oci["id"][:12])
    assert re.fullmatch(r"\d+ (year|month|week|day|hour|minute)s? ago", table["oci"][2])
    assert re.fullmatch(r"[\d.]+ (B|kB|MB|GB)", table["oci"][3])


@needs_skopeo
def test_inspect_agrees_with_skopeo(images, podkit_env, tmp_path):
    ref = images.ref("busybox:oci")
    image = pull(podkit_env, ref)
    ours = ok(podkit_env, "inspect", image["id"][:12], schema="image-inspect")["inspect"]
    skopeo = Skopeo(tmp_path / "skopeo")
    theirs = skopeo.json("inspect", "--tls-verify=false", ref)
    config = skopeo.json("inspect", "--tls-verify=false", "--config", ref)
    assert ours["Id"] == image["id"]
    assert ours["Digest"] == theirs["Digest"] == images.digests["busybox:oci"]
    assert ours["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert len(ours["RootFS"]["Layers"]) == len(theirs["Layers"])
    assert (ours["Architecture"], ours["Os"]) == (theirs["Architecture"], theirs["Os"])
    assert ours["Created"] == config["created"]
    name = ref.removeprefix("docker://")
    assert ours["RepoTags"] == [name]
    assert ours["RepoDigests"] == [name.rsplit(":", 1)[0] + "@" + theirs["Digest"]]
    assert ours["Config"]["Cmd"] == config["config"]["Cmd"]
    # Every way podman accepts to name it finds the same image.
    for spelling in (ref, name, "sha256:" + image["id"]):
        assert ok(podkit_env, "inspect", spelling)["inspect"]["Id"] == image["id"]


def test_tag_moves_names_and_untag_removes_them(images, podkit_env):
    latest = pull(podkit_env, images.ref("busybox:latest"))
    oci = pull(podkit_env, images.ref("busybox:oci"))
    doc = ok(podkit_env, "tag", latest["id"][:12], "mine", "docker://example.org/team/app:1",
             schema="image-names")
    assert doc["changed"] is True
    assert doc["tagged"] == ["localhost/mine:latest", "example.org/team/app:1"]
    assert ok(podkit_env, "inspect", "mine")["inspect"]["Id"] == latest["id"]
    again = ok(podkit_env, "tag", latest["id"], "localhost/mine:latest")
    assert again["changed"] is False
    # A name moves from the image that had it, as podman tag does.
    ok(podkit_env, "tag", oci["id"], "mine")
    assert ok(podkit_env, "inspect", "mine")["inspect"]["Id"] == oci["id"]
    assert "localhost/mine:latest" not in ok(podkit_env, "inspect", latest["id"])[
        "inspect"]["RepoTags"]

    gone = ok(podkit_env, "untag", latest["id"], "example.org/team/app:1", schema="image-names")
    assert gone["untagged"] == ["example.org/team/app:1"]
    inspected = ok(podkit_env, "inspect", latest["id"])["inspect"]
    assert "example.org/team/app:1" in inspected["NamesHistory"]
    missing = storage(podkit_env, "untag", latest["id"], "never:seen")
    assert missing.returncode == errors.NotFound.exit_code
    bad = storage(podkit_env, "tag", latest["id"], "Not A Name")
    assert bad.returncode == errors.UsageError.exit_code
    # untag without names leaves the image dangling, still in the store.
    ok(podkit_env, "untag", oci["id"])
    row = {r["id"]: r for r in listed(podkit_env)}[oci["id"]]
    assert row["names"] == [] and row["dangling"] is True


def test_rmi_keeps_the_layer_and_blobs_another_image_shares(sharing, podkit_env):
    one = pull(podkit_env, sharing["one"])
    two = pull(podkit_env, sharing["two"])
    base, top = (la["chain_id"].split(":")[1] for la in two["layers"])
    assert one["layers"][0]["chain_id"] == two["layers"][0]["chain_id"]
    assert layer_dirs(podkit_env) == {base, top}
    blobs_before = blob_files(podkit_env)
    root = Path(podkit_env["PODKIT_ROOT"])
    before = disk_usage(root)

    report = ok(podkit_env, "rmi", "sharing:two", schema="image-removal")
    assert report["deleted"] == [two["id"]]
    assert report["layers_removed"] == [two["layers"][1]["chain_id"]]
    assert layer_dirs(podkit_env) == {base}
    only_two = {two["digest"], two["config_digest"], two["layers"][1]["digest"]}
    assert set(report["blobs_removed"]) == only_two
    assert blob_files(podkit_env) == blobs_before - only_two
    assert one["layers"][0]["digest"] in blob_files(podkit_env)
    assert report["bytes_freed"] > 0
    assert report["bytes_freed"] == before - disk_usage(root)
    # The image that shares the base still makes containers.
    created = ok(podkit_env, "create", "--image", "sharing:one", "--no-mount")
    assert created["container"]["image_id"] == one["id"]
    assert storage(podkit_env, "inspect", two["id"]).returncode == errors.NotFound.exit_code

    ok(podkit_env, "rm", created["container"]["id"])
    last = ok(podkit_env, "rmi", one["id"][:12])
    assert last["layers_removed"] == [one["layers"][0]["chain_id"]]
    assert layer_dirs(podkit_env) == set() and blob_files(podkit_env) == set()
    assert listed(podkit_env) == []
    # Their lock files went with them (they piled up, one per layer and blob ever stored).
    assert [n for n in os.listdir(root / "locks") if n.startswith(("layer-", "blob-"))] == []


@pytest.mark.overlay
def test_rmi_refuses_an_image_a_container_uses_unless_forced(images, podkit_env):
    image = pull(podkit_env, images.ref("busybox:oci"))
    c = ok(podkit_env, "create", "--image", image["id"], "--name", "user")["container"]
    refused = storage(podkit_env, "rmi", "busybox:oci")
    assert refused.returncode == errors.Conflict.exit_code == 5
    assert error_of(refused)["type"] == "Conflict" and "user" in error_of(refused)["message"]
    assert [r["id"] for r in listed(podkit_env)] == [image["id"]]
    assert layer_dirs(podkit_env)

    # --force removes the containers too, as `podman rmi -f` does.
    forced = ok(podkit_env, "rmi", "--force", "busybox:oci", schema="image-removal")
    assert forced["containers_removed"] == [c["id"]] and forced["deleted"] == [image["id"]]
    assert storage(podkit_env, "containers").stdout.strip() == b""
    assert listed(podkit_env) == [] and layer_dirs(podkit_env) == set()
    assert not Path(c["rootfs"]).exists()


def test_rmi_by_one_of_several_names_only_untags(images, podkit_env):
    image = pull(podkit_env, images.ref("busybox:latest"))
    ok(podkit_env, "tag", image["id"], "second")
    by_id = storage(podkit_env, "rmi", image["id"])
    assert by_id.returncode == errors.Conflict.exit_code
    report = ok(podkit_env, "rmi", "second")
    assert report["untagged"] == ["localhost/second:latest"] and report["deleted"] == []
    assert [r["id"] for r in listed(podkit_env)] == [image["id"]]


def test_prune_removes_dangling_then_all_unused_and_measures_bytes(images, sharing,
                                                                   podkit_env):
    latest = pull(podkit_env, images.ref("busybox:latest"))
    two = pull(podkit_env, sharing["two"])
    ok(podkit_env, "untag", two["id"])
    c = ok(podkit_env, "create", "--image", latest["id"], "--no-mount")["container"]
    root = Path(podkit_env["PODKIT_ROOT"])

    before = disk_usage(root)
    dangling = ok(podkit_env, "prune", schema="image-removal")
    assert dangling["deleted"] == [two["id"]]
    assert dangling["bytes_freed"] > 0 and dangling["bytes_freed"] == before - disk_usage(root)
    # busybox:latest shares the base layer with sharing:two and keeps it.
    assert layer_dirs(podkit_env) == {latest["layers"][0]["chain_id"].split(":")[1]}

    assert ok(podkit_env, "prune")["changed"] is False
    kept = ok(podkit_env, "prune", "--all")
    assert kept["deleted"] == []  # a container uses it
    ok(podkit_env, "rm", c["id"])
    before = disk_usage(root)
    everything = ok(podkit_env, "prune", "--all")
    assert everything["deleted"] == [latest["id"]]
    assert everything["bytes_freed"] == before - disk_usage(root) > 0
    assert layer_dirs(podkit_env) == set() and listed(podkit_env) == []


def test_an_interrupted_removal_is_finished_by_the_next_one(images, podkit_env):
    image = pull(podkit_env, images.ref("busybox:oci"))
    root = Path(podkit_env["PODKIT_ROOT"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    # What a kill -9 right after step 1 (and half of step 2) leaves behind.
    os.rename(root / "images" / f"{image['id']}.json",
              root / "images" / f".tmp-rmi-{image['id']}.{dead.pid}")
    first = image["layers"][0]["chain_id"].split(":")[1]
    os.rename(root / "layers" / first, root / "layers" / f".tmp-rmi-{first}.{dead.pid}")
    assert listed(podkit_env) == []

    report = ok(podkit_env, "prune")
    assert set(report["layers_removed"]) == {image["layers"][1]["chain_id"]}
    assert image["digest"] in report["blobs_removed"]
    assert not any(p.name.startswith(".tmp-") for p in (root / "images").iterdir())
    assert layer_dirs(podkit_env) == set() and blob_files(podkit_env) == set()
    # The half-deleted layer is the import staging sweep's to remove.
    pull(podkit_env, images.ref("busybox:latest"))
    assert not any(p.name.startswith(".tmp-") for p in (root / "layers").iterdir())
