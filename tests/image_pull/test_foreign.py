"""Foreign (non-distributable) layers: fetched from their descriptor's URLs, as podman does.

The images come from ``foreignbed``: busybox's base layer plus a marker layer declared
foreign, whose URL points at a web server on 127.0.0.1 started by the test. The registry
is a docker-registry of this module's own, configured to accept manifests with such
URLs (distribution refuses any by default: ``validation.manifests.urls.allow``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podkit_common.errors import RemoteError, VerificationFailed
from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from podkit_image_pull._foreign import MAX_URLS, usable_urls
from podkit_image_pull._manifest import parse_manifest
from podkit_image_pull._retry import RetryPolicy
from tests.image_pull.fakes import HOST, FakeRegistry
from tests.image_pull.faults import Fault, FaultProxy
from tests.image_pull.foreignbed import (
    FOREIGN_GZIP,
    FOREIGN_TYPES,
    BlobHost,
    foreign_image,
    foreign_layer,
    push_without_foreign,
)
from tests.image_pull.test_faults import FAST, env, error_of, run  # noqa: F401 (fixture)
from tests.testbed.layers import PLATFORM_MARKER
from tests.testbed.probes import PROBES
from tests.testbed.registry import LocalRegistry, RegistryError, free_port

pytestmark = pytest.mark.registry

SCHEMA = "urn:podkit:image-pull:image"
NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#: Manifests may name layer URLs on this machine; distribution allows none by default.
ALLOW_LOCAL_URLS = {"validation": {"manifests": {"urls": {"allow": [r"^http://127\.0\.0\.1:"]}}}}


@pytest.fixture(scope="module")
def foreign_registry() -> Iterator[LocalRegistry]:
    if not PROBES["registry"]().ok:
        pytest.skip(f"needs registry: {PROBES['registry']().reason}")
    reg = LocalRegistry(extra_config=ALLOW_LOCAL_URLS)
    try:
        reg.start()
    except RegistryError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def host() -> Iterator[BlobHost]:
    with BlobHost() as h:
        yield h


def lib_pull(ref: str, root: Path, **kw) -> dict:
    """The library pull, with an accept-anything policy and no registries.conf."""
    conf = root.parent / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    (conf / "registries.conf").write_text("")
    (conf / "registries.conf.d").mkdir(exist_ok=True)
    return pull(ref, root=root, tls_verify=False, signature_policy=conf / "policy.json",
                registries_conf=conf / "registries.conf",
                registries_conf_dir=conf / "registries.conf.d", **kw)


def stored(root: Path) -> set[str]:
    folder = root / "blobs" / "sha256"
    return {"sha256:" + p.name for p in folder.iterdir()} if folder.is_dir() else set()


def leftovers(root: Path) -> list[Path]:
    tmp = root / "blobs" / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def assert_pulled(doc: dict, image, root: Path) -> None:
    """The document describes ``image`` as given and every stored blob verifies."""
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    layers = doc["image"]["layers"]
    assert [(la["digest"], la["media_type"], la["diff_id"]) for la in layers] == \
        [(la.digest, la.media_type, la.diff_id) for la in image.layers]
    assert Path(layers[-1]["path"]).read_bytes() == foreign_layer(image).data
    for digest in stored(root):
        assert hashlib.sha256((root / "blobs/sha256" / digest[7:]).read_bytes()).hexdigest() \
            == digest[7:]
    assert image.manifest_digest in stored(root) and leftovers(root) == []


# --- from the URL -------------------------------------------------------------------------

@pytest.mark.parametrize("media_type", list(FOREIGN_TYPES))
def test_a_foreign_layer_comes_from_its_url(foreign_registry, host, tmp_path, media_type):
    image = foreign_image(media_type, [host.url("/layer")], marker=f"url {media_type}")
    host.serve("/layer", foreign_layer(image).data)
    repo = f"foreign/url-{list(FOREIGN_TYPES).index(media_type)}"
    push_without_foreign(foreign_registry.url, repo, "v1", image)

    doc = lib_pull(f"docker://{foreign_registry.url}/{repo}:v1", tmp_path / "root")
    assert_pulled(doc, image, tmp_path / "root")
    [seen] = host.requests("/layer")
    assert seen.status == 200
    assert not {"authorization", "cookie"} & {k.lower() for k in seen.headers}


@pytest.mark.root
@pytest.mark.parametrize("media_type", list(FOREIGN_TYPES))
def test_pod_storage_imports_what_was_pulled(foreign_registry, host, env, media_type):  # noqa: F811
    """pod-image-pull | pod-storage import: the foreign layer unpacks like any layer."""
    image = foreign_image(media_type, [host.url("/layer")], marker=f"import {media_type}")
    host.serve("/layer", foreign_layer(image).data)
    repo = f"foreign/import-{list(FOREIGN_TYPES).index(media_type)}"
    push_without_foreign(foreign_registry.url, repo, "v1", image)

    pulled = run(env, *FAST, f"docker://{foreign_registry.url}/{repo}:v1")
    assert pulled.returncode == 0, pulled.stderr.decode()[-2000:]
    imported = subprocess.run(["pod-storage", "import"], input=pulled.stdout, env=env,
                              capture_output=True, timeout=120)
    assert imported.returncode == 0, imported.stderr.decode()[-2000:]
    top = json.loads(imported.stdout)["image"]["layers"][-1]
    assert top["media_type"] == media_type
    marker = Path(top["diff_path"]) / PLATFORM_MARKER.lstrip("/")
    assert marker.read_text() == f"import {media_type}\n"


# --- wrong bytes ----------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["flipped", "longer", "shorter"])
def test_wrong_bytes_from_the_url_are_exit_6_and_store_nothing(foreign_registry, host, env,  # noqa: F811
                                                               fault):
    image = foreign_image(FOREIGN_GZIP, [host.url("/layer")], marker=f"wrong {fault}")
    data = foreign_layer(image).data
    host.serve("/layer", {"flipped": bytes([data[0] ^ 0xFF]) + data[1:],
                          "longer": data + b"\0" * 1024, "shorter": data[:-10]}[fault])
    repo = f"foreign/wrong-{fault}"
    # The registry holds the right bytes: a URL serving wrong ones still fails the pull.
    push_without_foreign(foreign_registry.url, repo, "v1", image, with_foreign=True)

    result = run(env, *FAST, f"docker://{foreign_registry.url}/{repo}:v1")
    assert result.returncode == VerificationFailed.exit_code == 6, result.stderr.decode()
    error = error_of(result)
    assert error["type"] == "VerificationFailed" and foreign_layer(image).digest in error["message"]
    assert len(host.requests("/layer")) == 1  # wrong content is not retried
    root = Path(env["PODKIT_ROOT"])
    assert foreign_layer(image).digest not in stored(root)
    assert image.manifest_digest not in stored(root)
    assert leftovers(root) == []


# --- falling back to the registry -----------------------------------------------------------

@pytest.mark.parametrize("dead", ["refused", "404", "500"])
def test_a_dead_url_falls_back_to_the_registry(foreign_registry, host, tmp_path, dead):
    url = f"http://127.0.0.1:{free_port()}/layer" if dead == "refused" else host.url("/layer")
    if dead == "500":
        host.status["/layer"] = 500
    image = foreign_image(FOREIGN_GZIP, [url], marker=f"dead {dead}")
    repo = f"foreign/dead-{dead}"
    push_without_foreign(foreign_registry.url, repo, "v1", image, with_foreign=True)

    lines: list[str] = []
    doc = lib_pull(f"docker://{foreign_registry.url}/{repo}:v1", tmp_path / "root",
                   retry=RetryPolicy(delay=0, report=lines.append))
    assert_pulled(doc, image, tmp_path / "root")
    assert len(host.requests("/layer")) == (0 if dead == "refused" else 1)
    assert any(url in line and "trying the next source" in line for line in lines), lines


def test_a_dead_url_and_no_copy_in_the_registry_is_a_remote_error(foreign_registry, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/layer"
    image = foreign_image(FOREIGN_GZIP, [url], marker="dead, no copy")
    push_without_foreign(foreign_registry.url, "foreign/nowhere", "v1", image)

    with pytest.raises(RemoteError) as caught:
        lib_pull(f"docker://{foreign_registry.url}/foreign/nowhere:v1", tmp_path / "root",
                 retry=RetryPolicy(delay=0))
    assert caught.value.exit_code == 7
    assert url in caught.value.message and "no copy" in caught.value.message
    assert image.manifest_digest not in stored(tmp_path / "root")


# --- which URLs are used ----------------------------------------------------------------------

def test_non_http_urls_are_skipped(foreign_registry, host, tmp_path):
    wrong = tmp_path / "wrong-bytes"
    wrong.write_bytes(b"not the layer")
    urls = [f"file://{wrong}", f"ftp://127.0.0.1:{free_port()}/layer", "not a url at all",
            host.url("/layer")]
    image = foreign_image(NONDIST_ZSTD, urls, marker="schemes")
    host.serve("/layer", foreign_layer(image).data)
    # Distribution checks the URLs of some layer types only; this one it does not.
    push_without_foreign(foreign_registry.url, "foreign/schemes", "v1", image)

    doc = lib_pull(f"docker://{foreign_registry.url}/foreign/schemes:v1", tmp_path / "root")
    assert_pulled(doc, image, tmp_path / "root")
    assert len(host.requests("/layer")) == 1


def test_only_non_http_urls_means_the_registry(foreign_registry, tmp_path):
    wrong = tmp_path / "wrong-bytes"
    wrong.write_bytes(b"not the layer")
    image = foreign_image(NONDIST_ZSTD, [f"file://{wrong}", "ftp://127.0.0.1:1/layer"],
                          marker="only other schemes")
    push_without_foreign(foreign_registry.url, "foreign/other", "v1", image, with_foreign=True)

    doc = lib_pull(f"docker://{foreign_registry.url}/foreign/other:v1", tmp_path / "root")
    assert_pulled(doc, image, tmp_path / "root")


# --- resuming ------------------------------------------------------------------------------

def test_a_cut_off_url_download_resumes_with_a_range(foreign_registry, host, tmp_path):
    with FaultProxy(host.url("").removeprefix("http://")) as proxy:
        image = foreign_image("application/vnd.oci.image.layer.nondistributable.v1.tar",
                              [f"http://{proxy.url}/layer"], marker="resume")
        size = foreign_layer(image).size
        host.serve("/layer", foreign_layer(image).data)
        proxy.add(Fault("drop", match="/layer", after=size // 2))
        push_without_foreign(foreign_registry.url, "foreign/resume", "v1", image)
        doc = lib_pull(f"docker://{foreign_registry.url}/foreign/resume:v1",
                       tmp_path / "root", retry=RetryPolicy(delay=0))
        ranges = [r.range for r in proxy.requests("/layer")]
    assert_pulled(doc, image, tmp_path / "root")
    assert ranges == [None, f"bytes={size // 2}-"]
    assert [s.status for s in host.requests("/layer")] == [200, 206]


# --- credentials --------------------------------------------------------------------------

def test_no_credential_of_the_registry_reaches_a_url(tmp_path):
    """Not the token, not a cookie, not along a redirect, even on the registry's own host."""
    image = foreign_image(FOREIGN_GZIP, [f"https://{HOST}/cdn/first"], marker="credentials")
    fake = FakeRegistry(token="registry-token")
    fake.add_image("foreign:v1", image)
    del fake.blobs[foreign_layer(image).digest]

    def cdn(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/cdn/first":
            return httpx.Response(302, headers={"Location": "/cdn/second"})
        if request.url.path == "/cdn/second":
            return httpx.Response(200, content=foreign_layer(image).data)
        return None

    fake.override = cdn
    client = fake.client()
    client.cookies.set("session", "registry-cookie", domain=HOST)
    doc = lib_pull(f"docker://{HOST}/foreign:v1", tmp_path / "root", client=client,
                   credentials=("user", "password"))
    assert_pulled(doc, image, tmp_path / "root")
    to_cdn = [r for r in fake.requests if r.url.path.startswith("/cdn/")]
    to_registry = [r for r in fake.requests if r.url.path.startswith("/v2/foreign/")]
    assert [r.url.path for r in to_cdn] == ["/cdn/first", "/cdn/second"]
    for request in to_cdn:
        assert "authorization" not in request.headers and "cookie" not in request.headers
    # What was withheld was there to send:
    assert all(r.headers.get("authorization") == "Bearer registry-token" for r in to_registry)
    assert any("registry-cookie" in r.headers.get("cookie", "") for r in to_registry)


# --- the manifest side ---------------------------------------------------------------------

def test_descriptor_urls_are_read_and_checked():
    image = foreign_image(FOREIGN_GZIP, ["http://127.0.0.1:1/a", "ftp://x/b"], marker="parse")
    _, layers = parse_manifest(json.loads(image.manifest))
    assert layers[0].urls == () and layers[1].urls == ("http://127.0.0.1:1/a", "ftp://x/b")
    doc = json.loads(image.manifest)
    for bad in ("http://x/a", ["http://x/a", 3], {"u": 1}):
        doc["layers"][1]["urls"] = bad
        with pytest.raises(VerificationFailed, match="urls"):
            parse_manifest(doc)


def test_only_http_and_https_urls_are_used():
    urls = ["file:///etc/passwd", "ftp://h/x", "HTTP://h/a", "https://h/b", "http:///no-host",
            "not a url", "gopher://h/", "http://[::1"]
    assert usable_urls(urls) == ["HTTP://h/a", "https://h/b"]
    assert len(usable_urls([f"http://h/{i}" for i in range(40)])) == MAX_URLS
