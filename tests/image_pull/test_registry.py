"""The registry client over httpx.MockTransport: token flow, TLS fallback, error mapping."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from podkit_common.errors import (
    AuthenticationFailed,
    NotFound,
    RemoteError,
    UsageError,
    VerificationFailed,
)
from podkit_image_pull import RegistryClient, parse_challenge
from podkit_image_pull._manifest import ACCEPT_ALL, DOCKER_V2S2
from podkit_image_pull._retry import RetryPolicy
from tests.image_pull.fakes import HOST, REALM, FakeRegistry, dump

MANIFEST = dump({"schemaVersion": 2, "mediaType": DOCKER_V2S2, "config": {}, "layers": []})
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
BLOB = b"layer bytes" * 100
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def fake() -> FakeRegistry:
    reg = FakeRegistry()
    reg.manifests["app:v1"] = (MANIFEST, DOCKER_V2S2)
    reg.manifests[f"app@{MANIFEST_DIGEST}"] = (MANIFEST, DOCKER_V2S2)
    reg.blobs[BLOB_DIGEST] = BLOB
    return reg


def client_for(fake: FakeRegistry, **kw) -> RegistryClient:
    kw.setdefault("retry", RetryPolicy(delay=0))  # retried as by default, without the waits
    return RegistryClient(HOST, client=fake.client(), **kw)


def read_blob(reg: RegistryClient, digest: str = BLOB_DIGEST) -> bytes:
    with reg.open_blob("app", digest) as blob:
        return b"".join(blob.chunks)


# --- the happy paths --------------------------------------------------------------------

def test_manifest_digest_is_computed_from_the_raw_bytes(fake):
    body, content_type, digest = client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)
    assert body == MANIFEST
    assert content_type == DOCKER_V2S2
    assert digest == MANIFEST_DIGEST
    accept = fake.requests[-1].headers["Accept"]
    assert "application/vnd.oci.image.index.v1+json" in accept and DOCKER_V2S2 in accept


def test_anonymous_registry_gets_no_authorization_header(fake):
    reg = client_for(fake)
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    assert read_blob(reg) == BLOB
    assert all("Authorization" not in r.headers for r in fake.requests)
    assert fake.requests[0].url.path == "/v2/"


def test_bearer_token_is_fetched_once_and_reused_for_the_repository(fake):
    fake.token = "t0k3n"
    reg = client_for(fake)
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    assert read_blob(reg) == BLOB
    assert fake.tokens_issued == 1
    token_request = next(r for r in fake.requests if r.url.host == "auth.test")
    assert token_request.url.params["service"] == HOST
    assert token_request.url.params.get_list("scope") == ["repository:app:pull"]
    registry_requests = [r for r in fake.requests if r.url.host == HOST][1:]
    assert all(r.headers["Authorization"] == "Bearer t0k3n" for r in registry_requests)


def test_expired_token_is_refetched_on_401(fake):
    fake.token = "first"
    reg = client_for(fake)
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    fake.token = "second"  # the registry now refuses the old token
    assert read_blob(reg) == BLOB
    assert fake.tokens_issued == 2


def test_token_needed_although_ping_said_200(fake):
    fake.override = lambda r: httpx.Response(200) if r.url.path == "/v2/" else None
    fake.token = "late"
    assert read_blob(client_for(fake)) == BLOB
    assert fake.tokens_issued == 1


def test_insecure_falls_back_from_https_to_http(fake):
    def refuse_https(request):
        if request.url.scheme == "https" and request.url.host == HOST:
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
        return None

    fake.override = refuse_https
    reg = client_for(fake, tls_verify=False)
    assert reg.get_manifest("app", "v1", ACCEPT_ALL)[2] == MANIFEST_DIGEST
    assert [r.url.scheme for r in fake.requests] == ["https", "http", "http"]


def test_secure_never_falls_back_to_http(fake):
    def refuse_https(request):
        raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")

    fake.override = refuse_https
    with pytest.raises(RemoteError) as info:
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)
    assert "--tls-verify=false" in info.value.hint
    assert {r.url.scheme for r in fake.requests} == {"https"}


def test_blob_redirect_is_followed_without_leaking_the_token(fake):
    fake.token = "secret"

    def redirect(request):
        if request.url.host == HOST and "/blobs/" in request.url.path and \
                request.headers.get("Authorization") == "Bearer secret":
            return httpx.Response(307, headers={"Location": "https://cdn.test/b"})
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=BLOB)
        return None

    fake.override = redirect
    assert read_blob(client_for(fake)) == BLOB
    cdn = [r for r in fake.requests if r.url.host == "cdn.test"]
    assert cdn and "Authorization" not in cdn[0].headers


# --- verification -----------------------------------------------------------------------

def test_manifest_fetched_by_digest_must_have_that_digest(fake):
    other = MANIFEST + b" "
    fake.manifests[f"app@{MANIFEST_DIGEST}"] = (other, DOCKER_V2S2)
    fake.override = None
    with pytest.raises(VerificationFailed, match="digest"):
        client_for(fake).get_manifest("app", MANIFEST_DIGEST, ACCEPT_ALL)


@pytest.mark.parametrize("header", ["sha256:" + "0" * 64, "sha256:garbage"])
def test_docker_content_digest_header_must_match(fake, header):
    def lying(request):
        if "/manifests/" in request.url.path:
            return httpx.Response(200, content=MANIFEST, headers={
                "Content-Type": DOCKER_V2S2, "Docker-Content-Digest": header})
        return None

    fake.override = lying
    with pytest.raises(VerificationFailed):
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)


def test_oversized_manifest_is_refused(fake):
    fake.manifests["app:huge"] = (b" " * (4 * 1024 * 1024 + 1), DOCKER_V2S2)
    with pytest.raises(RemoteError, match="larger than"):
        client_for(fake).get_manifest("app", "huge", ACCEPT_ALL)


@pytest.mark.parametrize("repo, ref", [("App", "v1"), ("app/../x", "v1"), ("app", "v 1"),
                                       ("app", "sha256:abc"), ("app", "../v1")])
def test_bad_arguments_fail_before_any_request(fake, repo, ref):
    with pytest.raises(UsageError):
        client_for(fake).get_manifest(repo, ref, ACCEPT_ALL)
    assert fake.requests == []


# --- error mapping ----------------------------------------------------------------------

@pytest.mark.parametrize("status, error", [
    (401, AuthenticationFailed), (403, AuthenticationFailed), (404, NotFound),
    (429, RemoteError), (500, RemoteError), (502, RemoteError),
])
def test_http_status_maps_to_the_error_tree(fake, status, error):
    def answer(request):
        if "/manifests/" in request.url.path:
            return httpx.Response(status, json={"errors": [
                {"code": "SOME_CODE", "message": "the registry says no"}]})
        return None

    fake.override = answer
    with pytest.raises(error) as info:
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)
    assert type(info.value) is error
    assert "the registry says no" in info.value.message
    if error is RemoteError:
        assert str(status) in info.value.message


def test_unknown_manifest_and_blob_are_not_found(fake):
    reg = client_for(fake)
    with pytest.raises(NotFound, match="MANIFEST_UNKNOWN"):
        reg.get_manifest("app", "nope", ACCEPT_ALL)
    with pytest.raises(NotFound, match="BLOB_UNKNOWN"):
        read_blob(reg, "sha256:" + "1" * 64)


def test_refused_token_is_an_authentication_failure(fake):
    fake.token = "x"
    fake.override = lambda r: httpx.Response(401) if r.url.host == "auth.test" else None
    with pytest.raises(AuthenticationFailed, match="token"):
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)


def test_token_server_without_token_is_an_authentication_failure(fake):
    fake.token = "x"
    fake.override = lambda r: (httpx.Response(200, json={"nothing": 1})
                               if r.url.host == "auth.test" else None)
    with pytest.raises(AuthenticationFailed, match="no token"):
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)


@pytest.mark.parametrize("exc, words", [
    (httpx.ConnectError("[Errno 111] Connection refused"), "cannot connect"),
    (httpx.ConnectTimeout("timed out"), "timed out"),
    (httpx.ReadTimeout("timed out"), "timed out"),
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"), "not trusted"),
])
def test_transport_failures_are_remote_errors_with_a_hint(fake, exc, words):
    def fail(request):
        raise exc

    fake.override = fail
    with pytest.raises(RemoteError) as info:
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)
    assert type(info.value) is RemoteError
    assert words in info.value.message
    assert info.value.hint


def test_connection_lost_mid_blob_is_a_remote_error(fake):
    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            yield b"partial"
            raise httpx.ReadError("connection reset")

    fake.override = lambda r: (httpx.Response(200, stream=Broken())
                               if "/blobs/" in r.url.path else None)
    with pytest.raises(RemoteError, match="connection reset"):
        read_blob(client_for(fake))


def test_a_server_that_is_not_a_registry(fake):
    fake.override = lambda r: httpx.Response(404, text="<html>")
    with pytest.raises(RemoteError, match="HTTP 404"):
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)


# --- WWW-Authenticate -------------------------------------------------------------------

def test_challenge_parsing():
    c = parse_challenge(f'Bearer realm="{REALM}",service="reg.test",'
                        'scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": REALM, "service": "reg.test",
                        "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"').params == {"realm": "Registry Realm"}
    assert parse_challenge('Bearer realm=https://x/t, error="insufficient_scope"').params == \
        {"realm": "https://x/t", "error": "insufficient_scope"}
    assert parse_challenge("") is None
    assert parse_challenge(None) is None



def _basic_only(request):
    if request.url.host == HOST and request.headers.get("Authorization") != "Basic dTpw":
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    return None


def test_basic_challenge_uses_the_credentials(fake):
    fake.override = _basic_only
    reg = client_for(fake, credentials=("u", "p"))
    assert reg.get_manifest("app", "v1", ACCEPT_ALL)[2] == MANIFEST_DIGEST


def test_basic_challenge_without_credentials_fails_without_retrying(fake):
    fake.override = _basic_only
    with pytest.raises(AuthenticationFailed) as info:
        client_for(fake).get_manifest("app", "v1", ACCEPT_ALL)
    assert "anonymous" in info.value.hint
    assert [r.url.path for r in fake.requests] == ["/v2/", "/v2/app/manifests/v1"]


def test_token_server_gets_the_credentials(fake):
    fake.token = "t"
    client_for(fake, credentials=("u", "p")).get_manifest("app", "v1", ACCEPT_ALL)
    token_request = next(r for r in fake.requests if r.url.host == "auth.test")
    assert token_request.headers["Authorization"] == "Basic dTpw"
