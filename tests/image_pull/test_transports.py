"""oci:, oci-archive: and docker-archive: pulls, from layouts and archives skopeo made.

Every pull runs the pod-image-pull executable through a real shell and is checked like a
registry pull: stored blobs hash to their names, the document validates, the image is
the one the registry pull gives, and pod-storage can import it. Hostile archives (paths
out of the archive, bad digests, wrong bytes) fail with their exit code and store nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import tarfile
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from tests.testbed.images import platform_string
from tests.testbed.shell import sh
from tests.testbed.skopeo import Skopeo, isolated_env, make_archives, needs_skopeo

pytestmark = [pytest.mark.registry, needs_skopeo]

SCHEMA = "urn:podkit:image-pull:image"
LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


@pytest.fixture(scope="module")
def archives(images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("archives")
    return make_archives(Skopeo(folder / "skopeo"), images, folder)


@pytest.fixture(scope="module")
def from_registry(images, tmp_path_factory):
    """The image document of a registry pull of busybox:oci (the images are the same)."""
    return pull(images.ref("busybox:oci"), root=tmp_path_factory.mktemp("registry-pull"),
                tls_verify=False)["image"]


@pytest.fixture
def env(podkit_env, tmp_path):
    """PODKIT_ROOT and PODKIT_RUNROOT in tmp_path, no host containers configuration."""
    return isolated_env(podkit_env, tmp_path / "config")


def pull_cli(env: dict[str, str], ref: str, *args: str):
    return sh(shlex.join(["pod-image-pull", *args, ref]), env=env)


def pulled(env: dict[str, str], ref: str, *args: str) -> dict:
    result = pull_cli(env, ref, *args)
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    return doc


def error_of(result, code: int) -> dict:
    assert result.returncode == code, result.stderr.decode()
    assert result.stdout == b""
    lines = [ln for ln in result.stderr.decode().splitlines() if ln.startswith('{"error"')]
    assert len(lines) == 1, result.stderr.decode()
    return json.loads(lines[0])["error"]


def stored(env: dict[str, str]) -> list[str]:
    """Names of the stored blobs, each checked to hash to its name; no temp file left."""
    root = Path(env["PODKIT_ROOT"])
    folder = root / "blobs" / "sha256"
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    for name in names:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == name
    tmp = root / "blobs" / "tmp"
    assert not tmp.is_dir() or list(tmp.iterdir()) == []
    return names


# --- pulls ------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["oci", "oci-archive", "docker-archive"])
def test_pull_gives_the_registry_image(archives, from_registry, env, transport):
    ref = archives.refs()[transport]
    doc = pulled(env, ref)
    image = doc["image"]
    assert doc["changed"] is True
    assert image["transport"] == transport
    assert image["reference"] == ref.replace(":busybox:", ":docker.io/library/busybox:")
    assert image["path"] == ref.split(":")[1]
    assert image["id"] == from_registry["id"]
    assert image["config"] == from_registry["config"]
    assert [la["diff_id"] for la in image["layers"]] == \
        [la["diff_id"] for la in from_registry["layers"]]
    names = stored(env)
    assert {image["digest"][7:], image["id"]} <= set(names)
    assert {la["digest"][7:] for la in image["layers"]} <= set(names)
    if transport == "docker-archive":
        # Layers as the archive stores them: uncompressed, so digest == diff_id.
        assert image["name"] == "docker.io/library/busybox:tag"
        assert image["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert [(la["digest"], la["media_type"]) for la in image["layers"]] == \
            [(la["diff_id"], LAYER_TAR) for la in image["layers"]]
    else:
        # The same manifest bytes the registry serves.
        assert image["name"] == "localhost/tag:latest"
        assert image["digest"] == from_registry["digest"]
        assert image["layers"] == [{**la, "path": la["path"].replace(
            from_registry["root"], image["root"])} for la in from_registry["layers"]]


@pytest.mark.root
@pytest.mark.parametrize("transport", ["oci", "oci-archive", "docker-archive"])
def test_pod_storage_imports_the_result(archives, env, tmp_path, transport):
    ref = archives.refs()[transport]
    doc_file = tmp_path / "pulled.json"
    result = sh(f"pod-image-pull {shlex.quote(ref)} | tee {doc_file} | pod-storage import",
                env=env)
    assert result.returncode == 0, result.stderr.decode()
    imported = json.loads(result.stdout)["image"]
    assert imported["id"] == json.loads(doc_file.read_bytes())["image"]["id"]
    assert imported["top_layer"] == imported["layers"][-1]["chain_id"]
    assert all(Path(layer["diff_path"]).is_dir() for layer in imported["layers"])
    assert any(Path(layer["diff_path"], "bin", "busybox").is_file()
               for layer in imported["layers"])


def test_second_pull_changes_nothing(archives, env):
    ref = archives.refs()["docker-archive"]
    first = pulled(env, ref)
    second = pulled(env, ref)
    assert (first["changed"], second["changed"]) == (True, False)
    assert second["image"] == first["image"]


def test_docker_archive_by_index_and_short_name(archives, env):
    by_index = pulled(env, f"docker-archive:{archives.docker_archive}:@0")["image"]
    by_name = pulled(env, f"docker-archive:{archives.docker_archive}:busybox:tag")["image"]
    alone = pulled(env, f"docker-archive:{archives.docker_archive}")["image"]
    assert by_index["id"] == by_name["id"] == alone["id"]
    assert by_index["reference"].endswith(":@0")
    assert by_name["reference"].endswith(":docker.io/library/busybox:tag")


def test_docker_archive_of_a_docker_v2s2_image_keeps_its_config(archives, images, env):
    image = pulled(env, f"docker-archive:{archives.docker_archive_v2s2}")["image"]
    built = images["busybox:latest"].image
    assert image["config_digest"] == built.config_digest
    assert [la["diff_id"] for la in image["layers"]] == [la.diff_id for la in built.layers]


def test_layout_with_a_multi_platform_index(archives, images, env):
    pushed = images["busybox:multiarch"]
    native = pulled(env, f"oci:{archives.layout}:multi")["image"]
    assert native["index_digest"] == pushed.digest
    assert native["digest"] == pushed.image.native.manifest_digest
    other = pushed.image.children[1]
    chosen = pulled(env, f"oci:{archives.layout}:multi", "--platform",
                    platform_string(other.platform))["image"]
    assert chosen["digest"] == other.manifest_digest
    assert chosen["platform"] == other.platform
    assert {pushed.digest[7:], other.manifest_digest[7:]} <= set(stored(env))


def test_layout_of_several_images_needs_a_ref(archives, env):
    error = error_of(pull_cli(env, f"oci:{archives.layout}"), 2)
    assert "name one" in error["message"]
    assert all(name in error["hint"] for name in ("tag", "latest", "multi"))
    missing = error_of(pull_cli(env, f"oci:{archives.layout}:nope"), 4)
    assert "nope" in missing["message"]
    assert stored(env) == []


@pytest.mark.parametrize("ref", ["oci:{tmp}/none", "oci-archive:{tmp}/none.tar",
                                 "docker-archive:{tmp}/none.tar", "oci:{tmp}"])
def test_missing_layout_or_archive_is_not_found(env, tmp_path, ref):
    error_of(pull_cli(env, ref.format(tmp=tmp_path)), 4)


def test_compressed_archive_is_refused_with_a_hint(archives, env, tmp_path):
    gz = tmp_path / "docker.tar.gz"
    assert sh(f"gzip -c {archives.docker_archive} > {gz}").returncode == 0
    error = error_of(pull_cli(env, f"docker-archive:{gz}"), 13)
    assert "gzip" in error["message"] and "gzip -dk" in error["hint"]


# --- hostile layouts and archives ---------------------------------------------------------

def read_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar]


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def edited_docker_archive(src: Path, dest: Path, edit) -> Path:
    """``src`` with manifest.json replaced by ``edit(manifest)``."""
    members = read_members(src)
    out = []
    for info, data in members:
        if info.name == "manifest.json":
            data = json.dumps(edit(json.loads(data))).encode()
        out.append((info, data))
    return write_tar(dest, out)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "a/../../../etc/shadow"])
@pytest.mark.parametrize("field", ["Layers", "Config"])
def test_docker_archive_paths_out_of_the_archive_are_refused(archives, env, tmp_path,
                                                             bad, field):
    def edit(manifest):
        if field == "Layers":
            manifest[0]["Layers"][0] = bad
        else:
            manifest[0]["Config"] = bad
        return manifest

    hostile = edited_docker_archive(archives.docker_archive, tmp_path / "hostile.tar", edit)
    error = error_of(pull_cli(env, f"docker-archive:{hostile}"), 9)
    assert error["type"] == "UnsafeContent" and bad in error["message"]
    assert stored(env) == []


def test_docker_archive_symlink_out_of_the_archive_is_refused(archives, env, tmp_path):
    members = read_members(archives.docker_archive)
    link = next(info for info, _ in members if info.issym())
    link.linkname = "../../../../etc/passwd"
    hostile = write_tar(tmp_path / "hostile.tar", members)
    hostile = edited_docker_archive(hostile, tmp_path / "hostile2.tar", lambda m: [
        {**m[0], "Layers": [link.name, *m[0]["Layers"][1:]]}])
    error = error_of(pull_cli(env, f"docker-archive:{hostile}"), 9)
    assert "outside the archive" in error["message"]
    assert stored(env) == []


def test_docker_archive_config_with_other_bytes_is_refused(archives, env, tmp_path):
    members = read_members(archives.docker_archive)
    out = []
    for info, data in members:
        if info.name.endswith(".json") and len(info.name) == 69:  # <config hex>.json
            data = data.replace(b'"amd64"', b'"arm64"')
        out.append((info, data))
    hostile = write_tar(tmp_path / "hostile.tar", out)
    error = error_of(pull_cli(env, f"docker-archive:{hostile}"), 6)
    assert "config" in error["message"]
    assert stored(env) == []


def test_docker_archive_layer_not_matching_its_diff_id_is_refused(archives, env,
                                                                  tmp_path):
    manifest = json.loads(dict((i.name, d) for i, d in read_members(
        archives.docker_archive))["manifest.json"])
    layer = manifest[0]["Layers"][-1]
    out = []
    for info, data in read_members(archives.docker_archive):
        if info.name == layer:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        out.append((info, data))
    hostile = write_tar(tmp_path / "hostile.tar", out)
    error = error_of(pull_cli(env, f"docker-archive:{hostile}"), 6)
    assert "diff_id" in error["message"]
    assert stored(env) == []


def copy_layout(src: Path, dest: Path) -> Path:
    sh(f"cp -a {src} {dest}")
    return dest


@pytest.mark.parametrize("bad", ["sha256:../../../../etc/passwd", "../../etc/passwd",
                                 "sha256:" + "0" * 63 + "/", "md5:" + "0" * 32])
def test_layout_digest_that_is_not_a_digest_is_refused(archives, env, tmp_path, bad):
    layout = copy_layout(archives.layout, tmp_path / "layout")
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = bad
    (layout / "index.json").write_text(json.dumps(index))
    error = error_of(pull_cli(env, f"oci:{layout}:tag"), 6)
    assert "invalid digest" in error["message"]
    assert stored(env) == []


def test_layout_blob_with_other_bytes_is_refused(archives, images, env, tmp_path):
    layout = copy_layout(archives.layout, tmp_path / "layout")
    built = images["busybox:oci"].image
    bad = built.layers[-1].digest
    blob = layout / "blobs" / "sha256" / bad[7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    error = error_of(pull_cli(env, f"oci:{layout}:tag"), 6)
    assert bad in error["message"]
    names = stored(env)
    assert bad[7:] not in names and built.manifest_digest[7:] not in names


def test_layout_manifest_with_other_bytes_is_refused(archives, images, env, tmp_path):
    layout = copy_layout(archives.layout, tmp_path / "layout")
    manifest = layout / "blobs" / "sha256" / images["busybox:oci"].digest[7:]
    manifest.chmod(0o644)
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion"', b'"schemaversion"'))
    error_of(pull_cli(env, f"oci:{layout}:tag"), 6)
    assert stored(env) == []


def test_fifo_in_a_layout_does_not_hang_the_pull(archives, images, env, tmp_path):
    layout = copy_layout(archives.layout, tmp_path / "layout")
    config = layout / "blobs" / "sha256" / images["busybox:oci"].image.config_digest[7:]
    config.unlink()
    os.mkfifo(config)
    error = error_of(pull_cli(env, f"oci:{layout}:tag"), 6)
    assert "not a regular file" in error["message"]


def test_archive_member_names_never_reach_the_host(archives, env, tmp_path):
    sentinel = tmp_path / "escaped"
    extra = [file_member(f"../../../../../..{sentinel}", b"x"),
             file_member(str(sentinel), b"x"),
             file_member("blobs/../../escaped", b"x")]
    hostile = write_tar(tmp_path / "oci.tar", [*read_members(archives.oci_archive), *extra])
    doc = pulled(env, f"oci-archive:{hostile}:tag")
    assert doc["changed"] is True
    assert not sentinel.exists() and not (tmp_path.parent / "escaped").exists()


def test_truncated_archive_is_a_verification_failure(archives, env, tmp_path):
    data = archives.docker_archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:len(data) // 2])
    error = error_of(pull_cli(env, f"docker-archive:{cut}"), 6)
    assert "tar" in error["message"] or "truncated" in error["message"]
    assert stored(env) == []
