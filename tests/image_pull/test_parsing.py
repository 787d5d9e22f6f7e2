"""Digests, image references and platforms: parsed as containers/image parses them."""

from __future__ import annotations

import pytest

from podkit_common.errors import NotFound, NotImplementedYet, UsageError, VerificationFailed
from podkit_image_pull import (
    DigestHasher,
    Platform,
    digest_of,
    parse_digest,
    parse_platform,
    parse_reference,
    select_platform,
)
from podkit_image_pull._manifest import (
    DOCKER_LIST,
    DOCKER_V2S1_SIGNED,
    DOCKER_V2S2,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    check_supported,
    diff_ids_of,
    media_type_of,
    parse_manifest,
)

HEX64 = "a" * 64
SHA = f"sha256:{HEX64}"
SHA512 = "sha512:" + "b" * 128


# --- digests ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [SHA, SHA512, "sha256:" + "0123456789abcdef" * 4])
def test_valid_digests_parse(text):
    d = parse_digest(text)
    assert str(d) == text
    assert d.algorithm == text.split(":")[0]


@pytest.mark.parametrize("text", [
    "", "sha256", "sha256:", "sha256:abc", "sha256:" + "A" * 64, "sha256:" + "a" * 63,
    "sha256:" + "a" * 65, "SHA256:" + HEX64, "md5:" + "a" * 32, "sha512:" + "a" * 64,
    "sha256:" + "g" * 64, f" {SHA}", f"{SHA}\n", "sha256:../../../etc/passwd",
    "sha256:" + HEX64 + "/x", "sha384:" + "a" * 96,
])
def test_malformed_digests_are_refused(text):
    with pytest.raises(UsageError, match="invalid digest"):
        parse_digest(text)


def test_a_bad_digest_from_a_registry_is_a_verification_failure():
    with pytest.raises(VerificationFailed):
        parse_digest("sha256:nope", error=VerificationFailed)
    with pytest.raises(VerificationFailed, match="expected a string"):
        parse_digest(12, error=VerificationFailed)


def test_streaming_hash_matches_one_shot():
    hasher = DigestHasher("sha256")
    for part in (b"hello ", b"", b"world"):
        hasher.update(part)
    assert hasher.digest == digest_of(b"hello world")
    assert hasher.size == 11
    assert digest_of(b"", "sha512").startswith("sha512:cf83e135")


# --- references -------------------------------------------------------------------------

@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
    ("index.docker.io/user/app:v1", "docker.io", "user/app", "v1", None),
    ("docker://busybox", "docker.io", "library/busybox", "latest", None),
    ("docker:latest", "docker.io", "library/docker", "latest", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", None),
    ("127.0.0.1:5000/busybox", "127.0.0.1:5000", "busybox", "latest", None),
    ("docker://127.0.0.1:5000/busybox:latest", "127.0.0.1:5000", "busybox", "latest", None),
    ("quay.io/org/app", "quay.io", "org/app", "latest", None),
    ("[::1]:5000/app:v2", "[::1]:5000", "app", "v2", None),
    ("reg.example/a.b/c_d/e__f/g-h/i--j:T_a.g-1", "reg.example", "a.b/c_d/e__f/g-h/i--j",
     "T_a.g-1", None),
    (f"127.0.0.1:5000/busybox@{SHA}", "127.0.0.1:5000", "busybox", None, SHA),
    (f"busybox@{SHA512}", "docker.io", "library/busybox", None, SHA512),
    # Like podman's libimage: tag and digest together pull by digest; the tag is dropped.
    (f"127.0.0.1:5000/busybox:latest@{SHA}", "127.0.0.1:5000", "busybox", None, SHA),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),
])
def test_references_normalise_like_containers_image(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert (ref.transport, ref.registry, ref.repository, ref.tag, ref.digest) == \
        ("docker", registry, repository, tag, digest)


def test_canonical_name_and_reference():
    ref = parse_reference("busybox")
    assert ref.name == "docker.io/library/busybox:latest"
    assert ref.reference == "docker://docker.io/library/busybox:latest"
    assert ref.short_name
    by_digest = parse_reference(f"docker://127.0.0.1:5000/x/y@{SHA}")
    assert by_digest.name == f"127.0.0.1:5000/x/y@{SHA}"
    assert by_digest.remote_ref == SHA
    assert not by_digest.short_name
    assert parse_reference("127.0.0.1:5000/x:t").as_dict() == {
        "reference": "docker://127.0.0.1:5000/x:t", "transport": "docker",
        "name": "127.0.0.1:5000/x:t", "registry": "127.0.0.1:5000", "repository": "x",
        "tag": "t"}


@pytest.mark.parametrize("text", [
    "", "docker://", "Busybox", "127.0.0.1:5000/BusyBox", "127.0.0.1:5000/", "a//b",
    "127.0.0.1:5000/busybox:", "busybox:-tag", "busybox:" + "t" * 129, "busybox:ta/g",
    "busybox:tag with space", "busy..box", "busy_-box", "-busybox", "busybox-", "a/b/",
    "busybox@sha256:abc", "busybox@sha256:" + "A" * 64, "busybox@md5:" + "a" * 32,
    "busybox@", "bad_host:5000x/app", "reg.example:port/app", HEX64,
    "reg.example/" + "a" * 250,
])
def test_malformed_references_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_reference(text)


@pytest.mark.parametrize("text", ["containers-storage:busybox", "dir:/tmp/x",
                                  "docker-daemon:busybox:latest"])
def test_other_transports_are_not_built_yet(text):
    with pytest.raises(NotImplementedYet):
        parse_reference(text)


# --- platforms and manifests ------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
    ("linux/aarch64", Platform("linux", "arm64")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/v6", Platform("linux", "arm", "v6")),
])
def test_platforms_parse_with_aliases(text, expected):
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux/amd64/v8/x", ""])
def test_malformed_platforms_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_platform(text)


def _entry(n: int, **plat: str) -> Descriptor:
    return Descriptor(OCI_MANIFEST, "sha256:" + f"{n:064x}", 10, plat)


ENTRIES = [
    _entry(1, os="linux", architecture="amd64"),
    _entry(2, os="linux", architecture="arm64", variant="v8"),
    _entry(3, os="linux", architecture="arm", variant="v6"),
    _entry(4, os="unknown", architecture="unknown"),
]


@pytest.mark.parametrize("want, expected", [
    ("linux/amd64", 1), ("linux/arm64", 2), ("linux/arm64/v8", 2), ("linux/arm/v7", 3),
    ("linux/arm/v6", 3),
])
def test_platform_selection_picks_the_compatible_child(want, expected):
    assert select_platform(ENTRIES, parse_platform(want)).digest.endswith(f"{expected:x}")


def test_arm64_without_variant_in_the_index_is_v8():
    entries = [_entry(7, os="linux", architecture="arm64")]
    assert select_platform(entries, parse_platform("linux/arm64/v8")) is entries[0]


@pytest.mark.parametrize("want", ["linux/s390x", "windows/amd64", "linux/arm/v5"])
def test_no_matching_child_is_not_found_and_lists_what_exists(want):
    with pytest.raises(NotFound) as info:
        select_platform(ENTRIES, parse_platform(want))
    assert "linux/arm64/v8" in info.value.hint


@pytest.mark.parametrize("doc, content_type, expected", [
    ({"mediaType": DOCKER_V2S2}, "text/plain", DOCKER_V2S2),
    ({"schemaVersion": 2, "layers": [], "config": {}}, "", OCI_MANIFEST),
    ({"schemaVersion": 2, "manifests": []}, "application/json", OCI_INDEX),
    ({"schemaVersion": 2, "manifests": []}, DOCKER_LIST, DOCKER_LIST),
    ({"schemaVersion": 1, "signatures": []}, "application/json", DOCKER_V2S1_SIGNED),
])
def test_media_type_comes_from_the_document_first(doc, content_type, expected):
    assert media_type_of(doc, content_type) == expected


def test_schema1_is_refused_with_a_clear_message():
    with pytest.raises(NotImplementedYet, match="schema 1"):
        check_supported(DOCKER_V2S1_SIGNED)


@pytest.mark.parametrize("doc", [
    {"schemaVersion": 2, "config": {"digest": SHA, "size": 1, "mediaType": "x"}},
    {"schemaVersion": 2, "config": {"digest": "sha256:zz", "size": 1, "mediaType": "x"},
     "layers": []},
    {"schemaVersion": 2, "config": {"digest": SHA, "size": -1, "mediaType": "x"}, "layers": []},
    {"schemaVersion": 2, "config": {"digest": SHA, "size": 1, "mediaType": "x"},
     "layers": [{"digest": "sha256:../../x", "size": 1, "mediaType": "x"}]},
    {"schemaVersion": 3, "config": {}, "layers": []},
])
def test_malformed_manifests_fail_verification(doc):
    with pytest.raises(VerificationFailed):
        parse_manifest(doc)


@pytest.mark.parametrize("config", [
    {}, {"rootfs": {"type": "layers"}}, {"rootfs": {"type": "x", "diff_ids": []}},
    {"rootfs": {"type": "layers", "diff_ids": ["sha256:short"]}},
])
def test_malformed_configs_fail_verification(config):
    with pytest.raises(VerificationFailed):
        diff_ids_of(config)
