"""Images and filesystems move between podkit and podman, both ways, with podman as the
oracle: what podkit saves podman loads (same image id) and runs; what podman saves
(docker-archive, -m, oci-archive) `pod load` loads with podman's ids and diff_ids and
runs; an export from either side imports into the other as the same files."""

from __future__ import annotations

import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from podkit_common import jsonio
from tests.storage.test_archive_io import ok, pull, tar_listing, tree_listing
from tests.testbed import layers

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.overlay, pytest.mark.runc,
              pytest.mark.registry]


def bare(ref: str) -> str:
    return ref.removeprefix("docker://")


def pod(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pod", *args], capture_output=True, env=env, timeout=300)


def archive_config_digest(path: Path) -> str:
    """The config digest of the only image of an oci-archive (what its id must be)."""
    with tarfile.open(path) as tar:
        index = jsonio.loads(tar.extractfile("index.json").read())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = jsonio.loads(tar.extractfile(f"blobs/sha256/{digest}").read())
    return manifest["config"]["digest"].split(":", 1)[1]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "multi-image"])
def test_podkit_save_is_loaded_and_run_by_podman(images, podkit_env, podman, tmp_path, fmt):
    pulled = [pull(podkit_env, images.ref(tag)) for tag in ("busybox:oci", "busybox:zstd")]
    out = tmp_path / "podkit.tar"
    if fmt == "multi-image":
        ok(podkit_env, "save", "-m", "-o", str(out), *(p["name"] for p in pulled))
    else:
        ok(podkit_env, "save", "--format", fmt, "-o", str(out), pulled[0]["name"])
        pulled = pulled[:1]
    loaded = podman.run("load", "-i", str(out)).stdout
    for image in pulled:
        assert f"Loaded image: {image['name']}" in loaded
        info = podman.json("image", "inspect", image["name"])[0]
        assert info["Id"] == image["id"]
        assert info["RootFS"]["Layers"] == [la["diff_id"] for la in image["layers"]]
    res = podman.run("run", "--rm", "--network", "none", pulled[0]["name"],
                     "cat", layers.HELLO_PATH)
    assert res.stdout == layers.HELLO_TEXT


@pytest.mark.parametrize("how", ["docker-archive", "multi-image", "oci-archive"])
def test_podman_save_is_loaded_and_run_by_pod(images, podkit_env, podman, tmp_path, how):
    refs = [bare(images.ref("busybox:oci")), bare(images.ref("busybox:latest"))]
    expected = {}
    for ref in refs:
        podman.pull(ref)
        expected[ref] = podman.json("image", "inspect", ref)[0]
    out = tmp_path / "podman.tar"
    args = {"docker-archive": ["-o", str(out), refs[0]],
            "multi-image": ["-m", "-o", str(out), *refs],
            "oci-archive": ["--format", "oci-archive", "-o", str(out), refs[0]]}[how]
    podman.run("save", *args)
    saved = refs if how == "multi-image" else refs[:1]

    proc = pod(podkit_env, "load", "-i", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == [f"Loaded image: {r}" for r in saved]
    for ref in saved:
        image = ok(podkit_env, "image", ref)["image"]
        # podman rewrites the config when it converts to OCI, so its id is the archive's.
        want_id = (archive_config_digest(out) if how == "oci-archive"
                   else expected[ref]["Id"])
        assert image["id"] == want_id
        assert [la["diff_id"] for la in image["layers"]] == expected[ref]["RootFS"]["Layers"]
    run = pod(podkit_env, "run", "--rm", saved[0], "cat", layers.HELLO_PATH)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode() == layers.HELLO_TEXT


def test_podkit_export_imports_into_podman_as_the_same_files(images, podkit_env, podman,
                                                            tmp_path):
    pull(podkit_env, images.ref("busybox:oci"))
    c = ok(podkit_env, "create", "--name", "exp", "--image", images.ref("busybox:oci"))
    rootfs = Path(c["container"]["rootfs"])
    (rootfs / "etc/motd").unlink()
    (rootfs / "added").write_text("from podkit\n")
    mine = tmp_path / "podkit-export.tar"
    ok(podkit_env, "export", "-o", str(mine), "exp")

    imported = podman.run("import", str(mine), "fromkit").stdout.strip().splitlines()[-1]
    assert imported.startswith("sha256:")  # what `pod import` prints too
    podman.run("create", "--name", "back", "--network", "none", "localhost/fromkit", "true")
    theirs = tmp_path / "podman-export.tar"
    podman.run("export", "-o", str(theirs), "back")
    assert imported.removeprefix("sha256:") == \
        podman.json("image", "inspect", "localhost/fromkit")[0]["Id"]
    assert tar_listing(theirs) == tar_listing(mine)
    assert "etc/motd" not in tar_listing(theirs)


def test_podman_export_imports_into_podkit_as_the_same_files(images, podkit_env, podman,
                                                            tmp_path):
    podman.pull(bare(images.ref("busybox:oci")))
    podman.run("create", "--name", "src", "--network", "none", bare(images.ref("busybox:oci")),
               "true")
    theirs = tmp_path / "podman-export.tar"
    podman.run("export", "-o", str(theirs), "src")

    proc = pod(podkit_env, "import", str(theirs), "frompodman", "--change", "CMD [\"sh\"]")
    assert proc.returncode == 0, proc.stderr.decode()
    image_id = proc.stdout.decode().strip().removeprefix("sha256:")
    image = ok(podkit_env, "image", "localhost/frompodman:latest")["image"]
    assert image["id"] == image_id and image["config"]["config"]["Cmd"] == ["sh"]
    c = ok(podkit_env, "create", "--name", "dst", "--image", "frompodman")
    assert tree_listing(Path(c["container"]["rootfs"])) == tar_listing(theirs)
    run = pod(podkit_env, "run", "--rm", "frompodman", "cat", layers.HELLO_PATH)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode() == layers.HELLO_TEXT


def test_pipeline_loads_one_image_of_a_podman_multi_image_archive(images, podkit_env,
                                                                  podman, tmp_path):
    refs = [bare(images.ref("busybox:latest")), bare(images.ref("busybox:oci"))]
    for ref in refs:
        podman.pull(ref)
    out = tmp_path / "m.tar"
    podman.run("save", "-m", "-o", str(out), *refs)
    for index, ref in enumerate(refs):
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c",
             f"pod-image-pull docker-archive:{shlex.quote(str(out))}:@{index}"
             " | pod-storage import"], capture_output=True, env=podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        image = jsonio.loads(proc.stdout)["image"]
        assert image["name"] == ref
        assert image["id"] == podman.json("image", "inspect", ref)[0]["Id"]
