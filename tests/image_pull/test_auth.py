"""Where credentials come from and where they go: auth files, helpers, tokens, TLS trust.

No registry here (see test_auth_registry.py): files in tmp dirs with HOME and
XDG_RUNTIME_DIR pointed at them, a fake docker-credential helper on a tmp PATH, and
httpx.MockTransport registries for what goes over the wire.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import pytest

from podkit_common.errors import AuthenticationFailed, RemoteError, UsageError
from podkit_image_pull import RegistryClient
from podkit_image_pull._auth import (
    AuthFile,
    Credentials,
    auth_file_paths,
    auth_keys,
    find_in_auth_file,
    lookup_credentials,
    normalize_auth_key,
    parse_credentials,
    run_credential_helper,
)
from podkit_image_pull._certs import cert_dir_for, tls_context
from podkit_image_pull._manifest import ACCEPT_ALL
from podkit_image_pull._registry import Challenge
from podkit_image_pull._request_auth import RegistryAuth, parse_token_answer
from tests.image_pull.authbed import auth_json, helper_log, write_credential_helper

REG = "reg.test:5000"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- which files, in which order ----------------------------------------------------------

def test_auth_file_order_follows_containers_auth_json(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {"HOME": "/h", "XDG_RUNTIME_DIR": str(runtime)}
    assert auth_file_paths(env=env) == [
        AuthFile(runtime / "containers/auth.json"),
        AuthFile(Path("/h/.config/containers/auth.json")),
        AuthFile(Path("/h/.docker/config.json")),
        AuthFile(Path("/h/.dockercfg"), legacy=True)]


@pytest.mark.parametrize(("env", "first", "docker"), [
    ({"XDG_CONFIG_HOME": "/cfg"}, None, "/h/.docker/config.json"),
    ({"DOCKER_CONFIG": "/dc"}, None, "/dc/config.json"),
    ({"XDG_RUNTIME_DIR": "/no/such/dir"}, "skipped", "/h/.docker/config.json"),
    ({}, f"/run/containers/{os.getuid()}/auth.json", "/h/.docker/config.json"),
])
def test_auth_file_variables(env, first, docker):
    paths = [str(f.path) for f in auth_file_paths(env={"HOME": "/h", **env})]
    if first == "skipped":  # a runtime dir that does not exist is skipped, as in c/image
        assert not any("/no/such/dir" in p for p in paths)
    elif first is not None:
        assert paths[0] == first
    if "XDG_CONFIG_HOME" in env:
        assert "/cfg/containers/auth.json" in paths
    assert docker in paths


@pytest.mark.parametrize("given", ["authfile", "REGISTRY_AUTH_FILE"])
def test_an_explicit_auth_file_replaces_the_list(given):
    env = {"HOME": "/h", "REGISTRY_AUTH_FILE": "/env/auth.json"}
    if given == "authfile":
        assert auth_file_paths("/opt/auth.json", env=env) == [AuthFile(Path("/opt/auth.json"))]
    else:
        assert auth_file_paths(env=env) == [AuthFile(Path("/env/auth.json"))]


def test_auth_keys_go_from_most_to_least_specific():
    assert auth_keys("quay.io", "ns/team/app") == [
        "quay.io/ns/team/app", "quay.io/ns/team", "quay.io/ns", "quay.io"]
    assert auth_keys("localhost:5000", "") == ["localhost:5000"]


@pytest.mark.parametrize(("key", "legacy", "host"), [
    ("https://reg.test:5000/v1/", False, "reg.test:5000"),
    ("http://reg.test", False, "reg.test"),
    ("reg.test/ns", False, "reg.test/ns"),
    ("reg.test/ns", True, "reg.test"),
    ("https://index.docker.io/v1/", False, "index.docker.io"),
    ("docker.io", False, "index.docker.io"),
])
def test_auth_keys_normalise_like_containers_image(key, legacy, host):
    assert normalize_auth_key(key, legacy=legacy) == host


# --- what one file says ----------------------------------------------------------------------

CASES = [
    # (auths, registry, repository, expected user or None)
    ({REG: ("host", "p")}, REG, "app", "host"),
    ({REG: ("host", "p"), f"{REG}/ns": ("ns", "p")}, REG, "ns/app", "ns"),
    ({f"{REG}/ns": ("ns", "p"), f"{REG}/ns/app": ("app", "p")}, REG, "ns/app", "app"),
    ({f"{REG}/ns": ("ns", "p")}, REG, "other/app", None),
    ({f"https://{REG}/v1/": ("url", "p")}, REG, "app", "url"),
    ({"https://index.docker.io/v1/": ("hub", "p")}, "docker.io", "library/busybox", "hub"),
    ({"other.test": ("x", "p")}, REG, "app", None),
    ({f"{REG}:1": ("port", "p")}, REG, "app", None),
]


@pytest.mark.parametrize(("auths", "registry", "repository", "user"), CASES)
def test_matching_in_an_auth_file(tmp_path, auths, registry, repository, user):
    path = tmp_path / "auth.json"
    path.write_text(auth_json(auths))
    found = find_in_auth_file(AuthFile(path), registry, repository)
    assert (found.username if found else None) == user
    if found:
        assert found.password == "p" and str(path) in found.origin


def test_the_most_specific_key_decides_even_when_empty(tmp_path):
    # As containers/image: an exact namespace entry without credentials does not fall
    # back to the registry-wide one.
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {f"{REG}/ns": {}, REG: {"auth": b64("u:p")}}}))
    assert find_in_auth_file(AuthFile(path), REG, "ns/app") is None
    assert find_in_auth_file(AuthFile(path), REG, "other/app").username == "u"


def test_legacy_dockercfg_and_identity_tokens(tmp_path):
    legacy = tmp_path / ".dockercfg"
    legacy.write_text(json.dumps({f"https://{REG}/v1/": {"auth": b64("old:p"),
                                                         "email": "x@y"}}))
    assert find_in_auth_file(AuthFile(legacy, legacy=True), REG).username == "old"
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {REG: {"auth": b64("u:"), "identitytoken": "rt"}}}))
    found = find_in_auth_file(AuthFile(path), REG, "app")
    assert found.identity_token == "rt" and found.username == "u"
    assert "rt" not in repr(found)


@pytest.mark.parametrize("content", ["{not json", "[1]", '{"auths": []}',
                                     json.dumps({"auths": {REG: {"auth": "%%%"}}})])
def test_a_broken_auth_file_is_a_clear_error_that_leaks_nothing(tmp_path, content):
    path = tmp_path / "auth.json"
    path.write_text(content)
    with pytest.raises(AuthenticationFailed) as info:
        find_in_auth_file(AuthFile(path), REG, "app")
    assert str(path) in info.value.message and "%%%" not in info.value.message


def test_missing_or_empty_files_hold_nothing(tmp_path):
    assert find_in_auth_file(AuthFile(tmp_path / "none.json"), REG) is None
    (tmp_path / "empty.json").write_text("")
    assert find_in_auth_file(AuthFile(tmp_path / "empty.json"), REG) is None


# --- the whole lookup --------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    runtime = tmp_path / "run"
    (runtime / "containers").mkdir(parents=True)
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".config/containers").mkdir(parents=True)
    return {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime),
            "PATH": str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", "")}


def test_first_file_with_credentials_wins(home):
    h = Path(home["HOME"])
    (h / ".docker/config.json").write_text(auth_json({REG: ("docker", "p")}))
    assert lookup_credentials(REG, "app", env=home).username == "docker"
    (h / ".config/containers/auth.json").write_text(auth_json({REG: ("config", "p")}))
    assert lookup_credentials(REG, "app", env=home).username == "config"
    (h / "run/containers/auth.json").write_text(auth_json({"other.test": ("x", "p")}))
    assert lookup_credentials(REG, "app", env=home).username == "config"
    (h / "run/containers/auth.json").write_text(auth_json({REG: ("runtime", "p")}))
    assert lookup_credentials(REG, "app", env=home).username == "runtime"


def test_an_explicit_auth_file_is_the_only_one_read(home, tmp_path):
    (Path(home["HOME"]) / ".docker/config.json").write_text(auth_json({REG: ("docker", "p")}))
    given = tmp_path / "given.json"
    given.write_text(auth_json({"other.test": ("x", "p")}))
    assert lookup_credentials(REG, "app", authfile=given, env=home) is None
    assert lookup_credentials(REG, "app", env={**home, "REGISTRY_AUTH_FILE": str(given)}) is None


def test_nothing_configured_means_anonymous(home):
    assert lookup_credentials(REG, "app", env=home) is None


# --- credential helpers ------------------------------------------------------------------------

def test_cred_helpers_entry_runs_the_helper_with_the_server_on_stdin(home):
    bin_dir = Path(home["HOME"]) / "bin"
    write_credential_helper(bin_dir, "test", {REG: ("helped", "pw")})
    (Path(home["HOME"]) / ".docker/config.json").write_text(json.dumps(
        {"auths": {REG: {"auth": b64("inline:p")}}, "credHelpers": {REG: "test"}}))
    found = lookup_credentials(REG, "app", env=home)
    assert (found.username, found.password, found.origin) == ("helped", "pw",
                                                              "docker-credential-test")
    assert helper_log(bin_dir, "test") == [REG]


def test_creds_store_serves_registries_with_empty_entries(home):
    bin_dir = Path(home["HOME"]) / "bin"
    write_credential_helper(bin_dir, "store", {REG: ("stored", "pw")})
    (Path(home["HOME"]) / ".docker/config.json").write_text(json.dumps(
        {"auths": {REG: {}}, "credsStore": "store"}))
    assert lookup_credentials(REG, "app", env=home).username == "stored"
    assert lookup_credentials("nothing.test", "app", env=home) is None  # "not found": none


def test_registries_conf_helpers_are_consulted_in_order(home):
    bin_dir = Path(home["HOME"]) / "bin"
    write_credential_helper(bin_dir, "first", {})
    write_credential_helper(bin_dir, "second", {REG: ("second", "pw")})
    found = lookup_credentials(REG, "app", helpers=["first", "containers-auth.json", "second"],
                               env=home)
    assert found.username == "second"
    assert helper_log(bin_dir, "first") == [REG]


def test_a_token_from_a_helper_is_an_identity_token(home):
    write_credential_helper(Path(home["HOME"]) / "bin", "tok", {REG: ("<token>", "refresh")})
    found = run_credential_helper("tok", REG, env=home)
    assert found == Credentials(identity_token="refresh", origin="docker-credential-tok")


@pytest.mark.parametrize(("server", "timeout", "said"), [
    ("fail.test", 30, "the keychain is locked"),
    ("slow.test", 0.5, "did not answer within 0.5s"),
])
def test_a_failing_helper_is_a_clear_error(home, server, timeout, said):
    write_credential_helper(Path(home["HOME"]) / "bin", "test", {})
    with pytest.raises(AuthenticationFailed) as info:
        run_credential_helper("test", server, env=home, timeout=timeout)
    assert said in info.value.message and "docker-credential-test" in info.value.message


def test_a_missing_helper_is_named_and_other_sources_are_still_tried(home):
    (Path(home["HOME"]) / ".docker/config.json").write_text(json.dumps(
        {"auths": {}, "credHelpers": {REG: "absent"}}))
    with pytest.raises(AuthenticationFailed) as info:
        lookup_credentials(REG, "app", env=home)
    assert "docker-credential-absent not found on PATH" in info.value.message
    assert "install docker-credential-absent" in info.value.hint


@pytest.mark.parametrize("name", ["../../bin/sh", "a/b", "", "-x"])
def test_helper_names_cannot_be_paths(name):
    with pytest.raises(AuthenticationFailed, match="invalid credential helper name"):
        run_credential_helper(name, REG)


@pytest.mark.parametrize(("text", "user", "password"), [
    ("u:p", "u", "p"), ("u:p:with:colons", "u", "p:with:colons"), ("u:", "u", "")])
def test_creds_option(text, user, password):
    found = parse_credentials(text)
    assert (found.username, found.password, found.origin) == (user, password, "--creds")


@pytest.mark.parametrize("text", ["", ":p", "user"])
def test_creds_option_needs_a_user_and_a_password(text):
    with pytest.raises(UsageError):
        parse_credentials(text)


# --- what goes over the wire -------------------------------------------------------------------

class Wire:
    """A registry (reg.test) and a token server (auth.test) behind MockTransport."""

    def __init__(self, scheme: str = "bearer", realm: str = "https://auth.test/token",
                 expires_in: int = 300) -> None:
        self.scheme, self.realm, self.expires_in = scheme, realm, expires_in
        self.requests: list[httpx.Request] = []
        self.issued = 0
        self.reject_next = 0
        self.refused = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "auth.test":
            self.issued += 1
            return httpx.Response(200, json={"token": f"t{self.issued}",
                                             "expires_in": self.expires_in})
        if request.url.host != "reg.test":
            return httpx.Response(200, content=b"blob")
        auth = request.headers.get("Authorization", "")
        ok = auth.startswith("Bearer t") if self.scheme == "bearer" else auth == "Basic " + b64(
            "u:p")
        if ok and self.reject_next:
            self.reject_next -= 1
            ok = False
        if not ok:
            self.refused += 1
            header = (f'Bearer realm="{self.realm}",service="reg.test"' if self.scheme == "bearer"
                      else 'Basic realm="r"')
            return httpx.Response(401, headers={"WWW-Authenticate": header})
        if request.url.path == "/v2/":
            return httpx.Response(200)
        if "/blobs/" in request.url.path:
            return httpx.Response(307, headers={"Location": "https://cdn.test/data"})
        return httpx.Response(200, content=b"{}", headers={"Content-Type": "application/json"})

    def client(self, **kw) -> RegistryClient:
        return RegistryClient("reg.test", client=httpx.Client(
            transport=httpx.MockTransport(self.handle)), **kw)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


def test_a_token_is_reused_per_scope_and_sent_only_to_the_registry():
    wire = Wire()
    reg = wire.client(credentials=("u", "p"))
    for _ in range(3):
        reg.get_manifest("app", "v1", ACCEPT_ALL)
    reg.get_manifest("other", "v1", ACCEPT_ALL)
    assert wire.issued == 2  # one per repository scope
    token_requests = wire.to("auth.test")
    assert [r.url.params.get_list("scope") for r in token_requests] == [
        ["repository:app:pull"], ["repository:other:pull"]]
    assert all(r.headers["Authorization"] == "Basic " + b64("u:p") for r in token_requests)
    assert token_requests[0].url.params["account"] == "u"
    assert all(r.headers.get("Authorization", "").startswith("Bearer ")
               for r in wire.to("reg.test")[1:])


def test_a_refused_token_is_renewed_once():
    wire = Wire()
    reg = wire.client()
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    wire.reject_next = 1
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    assert wire.issued == 2
    wire.reject_next = 2
    with pytest.raises(AuthenticationFailed):
        reg.get_manifest("app", "v1", ACCEPT_ALL)


def test_an_expired_token_is_renewed_before_use():
    wire = Wire(expires_in=120)
    now = [1000.0]
    reg = wire.client()
    reg._auth.clock = lambda: now[0]
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    now[0] += 119
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    assert wire.issued == 1
    now[0] += 2
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    assert wire.issued == 2
    assert wire.refused == 1  # only the ping's challenge: renewed before any refusal
    assert [r.headers.get("Authorization") for r in wire.to("reg.test")][-1] == "Bearer t2"


@pytest.mark.parametrize(("answer", "now", "expires"), [
    ({"token": "a", "expires_in": 300}, 1000.0, 1300.0),
    ({"token": "a", "expires_in": 5}, 1000.0, 1060.0),  # at least 60 s, as c/image
    ({"access_token": "a"}, 1000.0, 1060.0),
    ({"token": "a", "expires_in": 600, "issued_at": "1970-01-01T00:10:00Z"}, 1000.0, 1200.0),
    ({"token": "a", "expires_in": 600, "issued_at": "1970-01-01T00:10:00.123456789+00:00"},
     1000.0, 1200.123456),
    ({"token": "a", "expires_in": True, "issued_at": "garbage"}, 1000.0, 1060.0),
])
def test_token_lifetimes(answer, now, expires):
    token = parse_token_answer(json.dumps(answer).encode(), "t", now=now)
    assert token.token == "a" and token.expires_at == pytest.approx(expires)


def test_identity_tokens_use_the_oauth2_refresh_grant():
    wire = Wire()
    reg = wire.client(credentials=Credentials(identity_token="refresh-me", origin="test"))
    reg.get_manifest("app", "v1", ACCEPT_ALL)
    (token_request,) = wire.to("auth.test")
    assert token_request.method == "POST"
    form = dict(x.split("=", 1) for x in token_request.content.decode().split("&"))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "refresh-me"
    assert form["service"] == "reg.test" and form["client_id"] == "containers%2Fimage"
    assert "Authorization" not in token_request.headers


def test_credentials_never_go_to_a_plain_http_realm_of_a_verified_registry():
    wire = Wire(realm="http://auth.test/token")
    with pytest.raises(AuthenticationFailed, match="plain HTTP"):
        wire.client(credentials=("u", "p")).get_manifest("app", "v1", ACCEPT_ALL)
    assert wire.to("auth.test") == []
    # Anonymous tokens may come from it; an insecure registry may send credentials.
    Wire(realm="http://auth.test/token").client().get_manifest("app", "v1", ACCEPT_ALL)
    insecure = Wire(realm="http://auth.test/token")
    insecure.client(credentials=("u", "p"), tls_verify=False).get_manifest("app", "v1",
                                                                          ACCEPT_ALL)
    assert insecure.to("auth.test")[0].headers["Authorization"] == "Basic " + b64("u:p")


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_no_authorization_follows_a_redirect_to_another_host(scheme):
    wire = Wire(scheme=scheme)
    reg = wire.client(credentials=("u", "p"))
    with reg.open_blob("app", "sha256:" + "a" * 64) as blob:
        assert b"".join(blob.chunks) == b"blob"
    (cdn,) = wire.to("cdn.test")
    assert "Authorization" not in cdn.headers
    assert wire.to("reg.test")[-1].headers["Authorization"]


def test_basic_credentials_are_sent_after_the_challenge_and_not_retried_when_wrong():
    wire = Wire(scheme="basic")
    wire.client(credentials=("u", "p")).get_manifest("app", "v1", ACCEPT_ALL)
    assert "Authorization" not in wire.requests[0].headers  # the ping is anonymous
    wrong = Wire(scheme="basic")
    with pytest.raises(AuthenticationFailed) as info:
        wrong.client(credentials=("u", "bad")).get_manifest("app", "v1", ACCEPT_ALL)
    assert len(wrong.requests) == 2 and "credentials=" in info.value.hint


def test_credentials_are_looked_up_only_when_a_registry_asks():
    calls = []

    def lookup() -> Credentials:
        calls.append(1)
        return Credentials("u", "p", origin="lookup")

    anonymous = RegistryClient("reg.test", credentials=lookup, client=httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"{}"))))
    anonymous.get_manifest("app", "v1", ACCEPT_ALL)
    assert calls == []
    Wire(scheme="basic").client(credentials=lookup).get_manifest("app", "v1", ACCEPT_ALL)
    assert calls == [1]


def test_registry_auth_hints_name_the_source():
    assert "anonymous" in RegistryAuth("r").hint()
    auth = RegistryAuth("r", Credentials("u", "p", origin="/x/auth.json (r)"))
    assert "/x/auth.json (r)" in auth.hint()


def test_challenge_renewal_rules():
    auth = RegistryAuth("r", ("u", "p"))
    basic, bearer = Challenge("basic", {}), Challenge("bearer", {"realm": "https://a/t"})
    assert auth.renew(None, basic, "s") and not auth.renew(basic, basic, "s")
    assert auth.renew(bearer, bearer, "s") and not auth.renew(None, None, "s")
    assert not RegistryAuth("r").renew(None, basic, "s")


# --- TLS trust: --cert-dir and certs.d -----------------------------------------------------------

def test_cert_dir_lookup_order(tmp_path, monkeypatch):
    import podkit_image_pull._certs as certs

    system = tmp_path / "etc"
    monkeypatch.setattr(certs, "SYSTEM_CERT_DIRS", (str(system / "containers"),
                                                     str(system / "docker")))
    env = {"HOME": str(tmp_path / "home")}
    assert cert_dir_for("r:5000", env=env) is None
    (system / "docker/r:5000").mkdir(parents=True)
    assert cert_dir_for("r:5000", env=env) == system / "docker/r:5000"
    (system / "containers/r:5000").mkdir(parents=True)
    assert cert_dir_for("r:5000", env=env) == system / "containers/r:5000"
    user = tmp_path / "home/.config/containers/certs.d/r:5000"
    user.mkdir(parents=True)
    assert cert_dir_for("r:5000", env=env) == user
    assert cert_dir_for("r:5000", cert_dir="/given", env=env) == Path("/given")


def test_cert_dir_problems_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        tls_context("r", cert_dir=tmp_path / "missing")
    (tmp_path / "client.cert").write_text("x")
    with pytest.raises(UsageError, match=r"has no key client\.key"):
        tls_context("r", cert_dir=tmp_path)
    (tmp_path / "client.cert").unlink()
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(UsageError, match=r"ca\.crt"):
        tls_context("r", cert_dir=tmp_path)


def test_an_empty_cert_dir_changes_nothing(tmp_path):
    assert tls_context("r", cert_dir=tmp_path) is True
    assert tls_context("r", cert_dir=tmp_path, tls_verify=False) is False


def test_transport_errors_of_the_token_server_are_remote_errors():
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            raise httpx.ConnectError("refused")
        return httpx.Response(401, headers={
            "WWW-Authenticate": 'Bearer realm="https://auth.test/token"'})

    reg = RegistryClient("reg.test", client=httpx.Client(transport=httpx.MockTransport(handle)))
    with pytest.raises(RemoteError, match=r"get a token for reg\.test"):
        reg.get_manifest("app", "v1", ACCEPT_ALL)
