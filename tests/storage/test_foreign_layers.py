"""Foreign and non-distributable layer media types unpack like their distributable twins.

pod-image-pull keeps a layer's media type as the manifest gives it, so pod-storage must
know the compression of ``...rootfs.foreign.diff.tar[.gzip]`` and
``...layer.nondistributable.v1.tar[+gzip|+zstd]`` (the whole pull | import pipeline is
in tests/image_pull/test_foreign.py).
"""

from __future__ import annotations

import io

import pytest

from podkit_storage._extract import UnpackOptions, apply_layer
from podkit_storage._images import compression_of
from tests.testbed import layers as L
from tests.testbed.images import sha256_digest

FOREIGN = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
}


@pytest.mark.parametrize(("media_type", "compression"), FOREIGN.items())
def test_compression_of_a_foreign_type(media_type, compression):
    assert compression_of(media_type) == compression


@pytest.mark.parametrize(("media_type", "compression"), FOREIGN.items())
def test_a_foreign_layer_unpacks(tmp_path, media_type, compression):
    tar = L.platform_marker_tar(media_type)
    blob = L.compress(tar, compression)
    stats = apply_layer(io.BytesIO(blob), tmp_path, compression=compression_of(media_type),
                        expected_diff_id=sha256_digest(tar),
                        options=UnpackOptions(same_owner=False))
    assert stats.diff_id == sha256_digest(tar)
    assert (tmp_path / L.PLATFORM_MARKER.lstrip("/")).read_text() == media_type + "\n"
