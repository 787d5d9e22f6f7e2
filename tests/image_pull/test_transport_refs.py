"""Archive references and the tar index, without a registry or an archive from skopeo."""

from __future__ import annotations

import io
import tarfile

import pytest

from podkit_common.errors import NotFound, UnsafeContent, UsageError
from podkit_image_pull import parse_reference
from podkit_image_pull._tarindex import TarIndex

# --- references ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, transport, path, within, index", [
    ("oci:/tmp/layout", "oci", "/tmp/layout", None, None),
    ("oci:/tmp/layout:v1.0", "oci", "/tmp/layout", "v1.0", None),
    ("oci:/tmp/layout:example.com/app:v1", "oci", "/tmp/layout", "example.com/app:v1", None),
    ("oci-archive:/tmp/../tmp/x.tar:", "oci-archive", "/tmp/x.tar", None, None),
    ("docker-archive:/x.tar", "docker-archive", "/x.tar", None, None),
    ("docker-archive:/x.tar:busybox", "docker-archive", "/x.tar",
     "docker.io/library/busybox:latest", None),
    ("docker-archive:/x.tar:127.0.0.1:5000/app:v2", "docker-archive", "/x.tar",
     "127.0.0.1:5000/app:v2", None),
    ("docker-archive:/x.tar:@3", "docker-archive", "/x.tar", None, 3),
])
def test_archive_references(text, transport, path, within, index):
    ref = parse_reference(text)
    assert (ref.transport, ref.path, ref.within, ref.index) == (transport, path, within, index)
    assert ref.as_dict()["path"] == path
    assert parse_reference(ref.reference) == ref


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_reference("oci:layout:t").path == str(tmp_path / "layout")


@pytest.mark.parametrize("text", ["oci:", "oci::tag", "oci:/x:bad ref", "oci:/x:-lead",
                                  "docker-archive:/x.tar:@-1", "docker-archive:/x.tar:@x",
                                  "docker-archive:/x.tar:busybox@sha256:" + "a" * 64,
                                  "docker-archive:/x.tar:Bad/Name:t"])
def test_malformed_archive_references_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_reference(text)


def write_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes):
    return tarfile.TarInfo(name), data


# --- the tar index ------------------------------------------------------------------

def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_tar_index_follows_links_inside_the_archive_only(tmp_path):
    path = write_tar(tmp_path / "t.tar", [
        file_member("./data/blob", b"content"),
        link_member("a/link", "../data/blob"),
        link_member("hard", "data/blob", tarfile.LNKTYPE),
        link_member("chain", "a/link"),
        link_member("loop1", "loop2"), link_member("loop2", "loop1"),
        link_member("out", "../../../etc/passwd"),
        link_member("abs", "/etc/passwd"),
        file_member("../escaped", b"never reachable"),
    ])
    with TarIndex(str(path), "test archive") as tar:
        for name in ("data/blob", "a/link", "hard", "chain", "./data//blob"):
            assert tar.read(name, 100) == b"content"
            with tar.open(name, offset=3) as stream:
                assert (stream.start, stream.size, b"".join(stream.chunks)) == (3, 4, b"tent")
        for name in ("out", "abs"):
            with pytest.raises(UnsafeContent):
                tar.resolve(name)
        with pytest.raises(UnsafeContent, match="links"):
            tar.resolve("loop1")
        with pytest.raises(NotFound):
            tar.resolve("../escaped")
