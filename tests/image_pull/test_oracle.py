"""skopeo as the oracle: it must pick the same manifest and the same blobs as we do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from podkit_image_pull import pull
from tests.testbed.skopeo import Skopeo

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo (the oracle)"),
]


def skopeo_copy(ref: str, dest: Path, *platform: str) -> None:
    arch_args: list[str] = []
    if platform:
        os_name, arch, *variant = platform
        arch_args = ["--override-os", os_name, "--override-arch", arch]
        if variant:
            arch_args += ["--override-variant", variant[0]]
    # Isolated: never the host's /etc/containers or /var/lib/containers.
    Skopeo(dest.parent / "skopeo-work").run(*arch_args, "copy", "--src-tls-verify=false", ref,
                                           f"dir:{dest}")


@pytest.mark.parametrize("name, platform", [
    ("busybox:latest", ()), ("busybox:oci", ()), ("busybox:multiarch", ()),
    ("busybox:multiarch-docker", ()), ("busybox:multiarch", ("linux", "arm64", "v8")),
    ("busybox:zstd", ()),
])
def test_same_manifest_and_blobs_as_skopeo(images, tmp_path, name, platform):
    oracle = tmp_path / "skopeo"
    skopeo_copy(images.ref(name), oracle, *platform)
    doc = pull(images.ref(name), root=tmp_path / "root", tls_verify=False,
               platform="/".join(platform) or None)
    image = doc["image"]
    assert Path(image["manifest_path"]).read_bytes() == (oracle / "manifest.json").read_bytes()
    theirs = {p.name for p in oracle.iterdir() if len(p.name) == 64}
    ours = {image["config_digest"][7:], *(la["digest"][7:] for la in image["layers"])}
    assert ours == theirs
