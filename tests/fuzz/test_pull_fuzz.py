"""The puller against random manifests, indexes and registry answers, served by the
in-memory registry of tests/image_pull/fakes.py (no socket is ever opened: a real
transport raises).

Whatever the registry says, the pull either succeeds with a document whose every
blob verifies, or fails with a podkit error a user can read; in both cases every blob
stored is named by its own sha256 and the store still checks clean."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podkit_common.errors import PodkitError
from podkit_common.roots import resolve_roots
from podkit_image_pull import pull
from podkit_image_pull._retry import RetryPolicy
from podkit_storage._check import check_store
from tests.fuzz.strategies import FUZZ, examples, json_values, mutated
from tests.image_pull.fakes import HOST, FakeRegistry, dump
from tests.testbed.images import build_image, build_index

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPES = [OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json",
               "application/vnd.docker.distribution.manifest.list.v2+json",
               "application/vnd.docker.distribution.manifest.v1+prettyjws",
               "application/json", "text/html", "", "application/vnd.oci.image.layer.v1.tar"]


def _tiny_layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return out.getvalue()


@pytest.fixture(scope="module")
def image():
    return build_image([_tiny_layer()], fmt="oci")


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch):
    def refuse(self, request):
        raise AssertionError(f"the fuzzed pull tried a real connection: {request.url}")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


RETRY = RetryPolicy(attempts=2, delay=0, sleep=lambda _s: None, stall_timeout=5,
                    connect_timeout=5)


def _pull_and_check(fake: FakeRegistry, root: Path, ref: str = "fuzz:1") -> str:
    """Pull; assert the invariants; return the outcome's name."""
    if root.exists():
        shutil.rmtree(root)  # each example starts from an empty store
    try:
        doc = pull(f"docker://{HOST}/{ref}", root=root, client=fake.client(), retry=RETRY,
                   max_workers=2)
        outcome = "ok"
    except PodkitError as exc:
        assert type(exc) is not PodkitError, f"unclassified: {exc.message}"
        assert exc.message
        outcome = type(exc).__name__
        doc = None
    blobs = root / "blobs" / "sha256"
    for blob in (blobs.iterdir() if blobs.is_dir() else []):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, \
            f"unverified blob stored: {blob.name}"
    if doc is not None:
        for layer in doc["image"]["layers"]:
            assert _sha(Path(layer["path"]).read_bytes()) == layer["digest"]
    report = check_store(resolve_roots(str(root), str(root.parent / "runroot")))
    assert report["clean"], report
    return outcome


def _serve(fake: FakeRegistry, manifest: dict | bytes, media_type: str,
           ref: str = "fuzz:1") -> None:
    body = manifest if isinstance(manifest, bytes) else dump(manifest)
    fake.manifests[ref] = (body, media_type)
    fake.manifests[f"fuzz@{_sha(body)}"] = (body, media_type)


def test_random_manifests_never_store_an_unverified_blob(image, tmp_path):
    manifest = json.loads(image.manifest)
    other = _sha(b"other")
    safe = [image.config_digest, image.layers[0].digest, other, "sha256:" + "0" * 64,
            "sha512:" + "0" * 128, "sha256:../../etc", len(image.config), 0, -1, 2**62,
            *MEDIA_TYPES]
    outcomes: dict[str, int] = {}
    root = tmp_path / "root"

    @settings(FUZZ, max_examples=examples(35))
    @given(doc=mutated(manifest, safe), media_type=st.sampled_from(MEDIA_TYPES[:1] * 3 +
                                                                   MEDIA_TYPES),
           blob_for_other=st.sampled_from([b"other", b"not other", image.config]))
    def check(doc, media_type, blob_for_other):
        fake = FakeRegistry()
        fake.blobs.update(image.blobs)
        fake.blobs[other] = blob_for_other
        _serve(fake, doc, media_type)
        outcome = _pull_and_check(fake, root)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    check()
    assert len(outcomes) > 1, outcomes


def test_random_configs_with_matching_digests(image, tmp_path):
    """A config that verifies (the manifest names its real digest) but says anything."""
    config = json.loads(image.config)
    manifest = json.loads(image.manifest)
    root = tmp_path / "root"

    @settings(FUZZ, max_examples=examples(20))
    @given(cfg=st.one_of(mutated(config, ["amd64", "linux", "sha256:" + "0" * 64]),
                         json_values))
    def check(cfg):
        body = json.dumps(cfg).encode()
        fake = FakeRegistry()
        fake.blobs.update(image.blobs)
        fake.blobs[_sha(body)] = body
        doc = json.loads(json.dumps(manifest))
        doc["config"] = {**doc["config"], "digest": _sha(body), "size": len(body)}
        _serve(fake, doc, OCI_MANIFEST)
        _pull_and_check(fake, root)

    check()


def test_random_indexes(image, tmp_path):
    index = build_index([image], fmt="oci")
    index_doc = json.loads(index.manifest)
    root = tmp_path / "root"

    @settings(FUZZ, max_examples=examples(20))
    @given(doc=mutated(index_doc, [image.manifest_digest, "amd64", "arm64", "linux", "v8",
                                   OCI_MANIFEST, "application/vnd.oci.image.index.v1+json"]))
    def check(doc):
        fake = FakeRegistry()
        fake.add_image("fuzz:child", image)
        _serve(fake, doc, index.manifest_media_type)
        _pull_and_check(fake, root)

    check()


STATUSES = [200, 201, 202, 204, 206, 301, 302, 307, 400, 401, 403, 404, 405, 416, 429, 500,
            502, 503]


def answers():
    headers = st.dictionaries(
        st.sampled_from(["Content-Type", "Docker-Content-Digest", "Content-Length", "Location",
                         "WWW-Authenticate", "Retry-After", "Content-Range", "Link"]),
        st.one_of(st.sampled_from(["", "0", "-1", "99999999999", "sha256:" + "0" * 64,
                                   "https://reg.test/v2/fuzz/blobs/x", "/v2/", "//auth.test/x",
                                   'Bearer realm="https://auth.test/token",service="reg.test"',
                                   'Bearer realm="//auth.test"', "Basic", "bytes 0-1/2",
                                   "bytes */*", *MEDIA_TYPES]),
                  st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                          max_size=30)),
        max_size=4)
    body = st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                     st.just(b'{"errors": [{"code": "DENIED"}]}'), st.just(b'{"token": 5}'))
    return st.tuples(st.sampled_from(STATUSES), headers, body)


def test_random_registry_answers(image, tmp_path):
    """One kind of request (the ping, the manifest, the config, the layer, the token)
    gets an arbitrary answer: any status, headers, body; sometimes only the first time."""
    root = tmp_path / "root"

    @settings(FUZZ, max_examples=examples(40))
    @given(kind=st.sampled_from(["/v2/", "manifests", image.config_digest,
                                 image.layers[0].digest, "auth.test"]),
           answer=answers(), once=st.booleans(), token=st.booleans())
    def check(kind, answer, once, token):
        status, headers, body = answer
        fake = FakeRegistry(token="t0k" if token else None)
        fake.add_image("fuzz:1", image)
        served = []

        def override(request: httpx.Request):
            url = str(request.url)
            hit = (request.url.path == "/v2/" if kind == "/v2/" else
                   request.url.host == "auth.test" if kind == "auth.test" else kind in url)
            if hit and not (once and served):
                served.append(url)
                try:
                    return httpx.Response(status, headers=headers, content=body)
                except (ValueError, TypeError, UnicodeError):
                    return httpx.Response(status, content=body)
            return None

        fake.override = override
        _pull_and_check(fake, root)

    check()
