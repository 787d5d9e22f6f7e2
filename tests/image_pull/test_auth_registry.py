"""Pulls from real registries that want credentials, on 127.0.0.1 over TLS.

    basic    Debian's docker-registry, ``auth: htpasswd`` (bcrypt, ``htpasswd -B``), TLS
             with a test CA (openssl, 127.0.0.1 as an IP SAN)
    token    the same registry in ``auth: token`` mode, trusting a test token issuer
             (authbed.TokenIssuer: HTTPS, ES256 JWTs signed with ``cryptography``)
    mtls     TLS that requires a client certificate (--cert-dir *.cert/*.key)

Credentials come from every place podman looks; HOME and XDG_RUNTIME_DIR point into
tmp dirs, so nothing of the real user is read or written.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podkit_common.errors import AuthenticationFailed, RemoteError
from podkit_image_pull import RegistryClient, pull
from podkit_image_pull._manifest import ACCEPT_ALL
from tests.image_pull.authbed import (
    Pki,
    TokenIssuer,
    answers_with_client_cert,
    auth_json,
    helper_log,
    htpasswd_config,
    isolated_env,
    make_pki,
    push_client,
    started,
    tls_config,
    token_config,
    write_credential_helper,
    write_htpasswd,
)
from tests.testbed.env import venv_bin
from tests.testbed.push import push
from tests.testbed.registry import LocalRegistry
from tests.testbed.standard import STANDARD

pytestmark = pytest.mark.registry

USER, PASSWORD = "alice", "s3cret:with:colons"


@dataclass
class Served:
    """A running registry: its host:port, the PKI, and the digest of busybox:latest."""

    url: str
    pki: Pki
    digest: str
    registry: LocalRegistry
    issuer: TokenIssuer | None = None

    def ref(self, tag: str = "latest") -> str:
        return f"docker://{self.url}/busybox:{tag}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def basic(pki, tmp_path_factory) -> Iterator[Served]:
    htpasswd = write_htpasswd(tmp_path_factory.mktemp("htpasswd") / "htpasswd",
                              {USER: PASSWORD, "bob": "other"})
    reg = LocalRegistry(extra_config={**tls_config(pki), **htpasswd_config(htpasswd)})
    with started(reg), push_client(pki, auth=(USER, PASSWORD)) as client:
        digest = push(f"https://{reg.url}", "busybox", "latest", STANDARD["busybox:latest"](),
                      client=client)
        yield Served(reg.url, pki, digest, reg)


@pytest.fixture(scope="module")
def token(pki) -> Iterator[Served]:
    issuer = TokenIssuer(pki, {USER: PASSWORD}, pushers={"pusher"},
                         refresh_tokens={"refresh-123": USER}).start()
    try:
        reg = LocalRegistry(extra_config={**tls_config(pki), **token_config(issuer)})
        with started(reg):
            grant = issuer.mint("pusher", [{"type": "repository", "name": "busybox",
                                            "actions": ["pull", "push"]}])
            with push_client(pki, bearer=grant) as client:
                push(f"https://{reg.url}", "busybox", "zstd", STANDARD["busybox:zstd"](),
                     client=client)
                digest = push(f"https://{reg.url}", "busybox", "latest",
                              STANDARD["busybox:latest"](), client=client)
            yield Served(reg.url, pki, digest, reg, issuer)
    finally:
        issuer.stop()


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """os.environ made hermetic for credentials (HOME, XDG_RUNTIME_DIR in tmp_path)."""
    isolated = isolated_env(tmp_path, PATH=f"{tmp_path / 'bin'}:{venv_bin()}:/usr/bin:/bin")
    for key in ("REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "DOCKER_CONFIG",
                "CONTAINERS_REGISTRIES_CONF", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(key, raising=False)
    for key in ("HOME", "XDG_RUNTIME_DIR", "PATH"):
        monkeypatch.setenv(key, isolated[key])
    isolated["PODKIT_ROOT"] = str(tmp_path / "root")
    return isolated


def home(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stored(root: Path) -> list[str]:
    folder = root / "blobs" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- where the credentials come from: each source alone gets the image ---------------------

def _setup(source: str, env: dict[str, str], served: Served, tmp: Path) -> dict:
    """Put the right credentials in one place; return extra pull() arguments."""
    h, host = home(env), served.url
    good = auth_json({host: (USER, PASSWORD)})
    if source == "creds":
        return {"credentials": f"{USER}:{PASSWORD}"}
    if source == "authfile":
        return {"authfile": write(tmp / "given.json", good)}
    if source == "REGISTRY_AUTH_FILE":
        env["REGISTRY_AUTH_FILE"] = str(write(tmp / "env.json", good))
    elif source == "XDG_RUNTIME_DIR":
        write(Path(env["XDG_RUNTIME_DIR"]) / "containers/auth.json", good)
    elif source == "~/.config":
        write(h / ".config/containers/auth.json", good)
    elif source == "~/.docker":
        write(h / ".docker/config.json", good)
    elif source == "DOCKER_CONFIG":
        env["DOCKER_CONFIG"] = str(tmp / "dockerconf")
        write(tmp / "dockerconf/config.json", good)
    elif source == "~/.dockercfg":
        entry = {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
        write(h / ".dockercfg", json.dumps({f"https://{host}/v1/": entry}))
    elif source == "namespace key":
        write(h / ".docker/config.json", auth_json({f"{host}/busybox": (USER, PASSWORD),
                                                    host: ("bob", "wrong")}))
    elif source in ("credHelpers", "credsStore", "credential-helpers"):
        write_credential_helper(tmp / "bin", "test", {host: (USER, PASSWORD)})
        if source == "credHelpers":
            write(h / ".docker/config.json", json.dumps({"credHelpers": {host: "test"}}))
        elif source == "credsStore":
            write(h / ".docker/config.json", json.dumps({"auths": {host: {}},
                                                         "credsStore": "test"}))
        else:
            conf = write(tmp / "registries.conf",
                         'credential-helpers = ["containers-auth.json", "test"]\n')
            return {"registries_conf": conf, "registries_conf_dir": tmp / "empty.d"}
    else:
        raise AssertionError(source)
    return {}


SOURCES = ["creds", "authfile", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "~/.config",
           "~/.docker", "DOCKER_CONFIG", "~/.dockercfg", "namespace key", "credHelpers",
           "credsStore", "credential-helpers"]


@pytest.mark.parametrize("source", SOURCES)
def test_basic_auth_with_credentials_from(basic, env, tmp_path, monkeypatch, source):
    extra = _setup(source, env, basic, tmp_path)
    for key in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG"):
        if key in env:
            monkeypatch.setenv(key, env[key])
    cert_dir = basic.pki.cert_dir(tmp_path / "certs")
    doc = pull(basic.ref(), root=tmp_path / "root", cert_dir=cert_dir, **extra)
    assert doc["image"]["digest"] == basic.digest
    assert doc["image"]["name"] == f"{basic.url}/busybox:latest"
    if source in ("credHelpers", "credsStore", "credential-helpers"):
        assert helper_log(tmp_path / "bin", "test") == [basic.url]


@pytest.mark.parametrize("source", ["creds", "~/.docker", "credHelpers"])
def test_token_auth_with_credentials_from(token, env, tmp_path, source):
    extra = _setup(source, env, token, tmp_path)
    doc = pull(token.ref(), root=tmp_path / "root", cert_dir=token.pki.cert_dir(tmp_path / "c"),
               **extra)
    assert doc["image"]["digest"] == token.digest


# --- refusals: exit 8, nothing stored ----------------------------------------------------

def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod-image-pull", "--progress=none", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def error_of(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.stdout == ""
    return json.loads(result.stderr.strip().splitlines()[-1])["error"]


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["basic", "token"])
def test_cli_pulls_with_creds_and_refuses_wrong_or_missing_ones(request, env, tmp_path, kind):
    served: Served = request.getfixturevalue(kind)
    cert_dir = str(served.pki.cert_dir(tmp_path / "certs"))
    root = Path(env["PODKIT_ROOT"])
    wrong = run_cli(env, "--cert-dir", cert_dir, "--creds", f"{USER}:nope", served.ref())
    assert wrong.returncode == 8, wrong.stderr
    assert "check the user name and password" in error_of(wrong)["hint"]
    missing = run_cli(env, "--cert-dir", cert_dir, served.ref())
    assert missing.returncode == 8, missing.stderr
    assert "--creds" in error_of(missing)["hint"]
    assert stored(root) == []
    good = run_cli(env, "--cert-dir", cert_dir, "--creds", f"{USER}:{PASSWORD}", served.ref())
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["image"]["digest"] == served.digest


@pytest.mark.e2e
def test_cli_reads_the_auth_file_from_the_environment(basic, env, tmp_path):
    cert_dir = str(basic.pki.cert_dir(tmp_path / "certs"))
    env["REGISTRY_AUTH_FILE"] = str(write(tmp_path / "a.json",
                                          auth_json({basic.url: (USER, PASSWORD)})))
    result = run_cli(env, "--cert-dir", cert_dir, basic.ref())
    assert result.returncode == 0, result.stderr
    # --authfile wins over the variable, and only that file is read.
    write(home(env) / ".docker/config.json", auth_json({basic.url: (USER, PASSWORD)}))
    other = write(tmp_path / "other.json", auth_json({basic.url: ("bob", "wrong")}))
    refused = run_cli(env, "--cert-dir", cert_dir, "--authfile", str(other), basic.ref())
    assert refused.returncode == 8 and str(other) in error_of(refused)["hint"]


def test_wrong_credentials_in_a_file_name_the_file(basic, env, tmp_path):
    path = write(home(env) / ".docker/config.json", auth_json({basic.url: ("bob", "nope")}))
    with pytest.raises(AuthenticationFailed) as info:
        pull(basic.ref(), root=tmp_path / "root", cert_dir=basic.pki.cert_dir(tmp_path / "c"))
    assert str(path) in info.value.hint
    assert stored(tmp_path / "root") == []


def test_a_failing_credential_helper_is_reported(basic, env, tmp_path):
    write(home(env) / ".docker/config.json", json.dumps({"credHelpers": {basic.url: "gone"}}))
    with pytest.raises(AuthenticationFailed, match="docker-credential-gone not found"):
        pull(basic.ref(), root=tmp_path / "root", cert_dir=basic.pki.cert_dir(tmp_path / "c"))


# --- TLS trust -----------------------------------------------------------------------------

@pytest.mark.e2e
def test_untrusted_certificates_are_refused_with_a_hint(basic, env):
    result = run_cli(env, "--creds", f"{USER}:{PASSWORD}", basic.ref())
    assert result.returncode == 7
    error = error_of(result)
    assert "TLS certificate not trusted" in error["message"]
    assert "--cert-dir" in error["hint"] and f"certs.d/{basic.url}" in error["hint"]


def test_certs_d_under_home_is_found_by_host_and_port(basic, env, tmp_path):
    basic.pki.cert_dir(home(env) / ".config/containers/certs.d" / basic.url)
    doc = pull(basic.ref(), root=tmp_path / "root", credentials=(USER, PASSWORD))
    assert doc["image"]["digest"] == basic.digest


def test_tls_verify_false_still_sends_credentials_over_https(basic, env, tmp_path):
    doc = pull(basic.ref(), root=tmp_path / "root", tls_verify=False,
               credentials=(USER, PASSWORD))
    assert doc["image"]["digest"] == basic.digest


def test_client_certificates_from_the_cert_dir(pki, env, tmp_path):
    reg = LocalRegistry(extra_config=tls_config(pki, client_certs=True),
                        probe=answers_with_client_cert(pki))
    with started(reg):
        with push_client(pki, client_certs=True) as client:
            digest = push(f"https://{reg.url}", "busybox", "latest",
                          STANDARD["busybox:latest"](), client=client)
        with pytest.raises(RemoteError):
            pull(f"docker://{reg.url}/busybox:latest", root=tmp_path / "r1",
                 cert_dir=pki.cert_dir(tmp_path / "ca-only"))
        doc = pull(f"docker://{reg.url}/busybox:latest", root=tmp_path / "r2",
                   cert_dir=pki.cert_dir(tmp_path / "with-client", client=True))
    assert doc["image"]["digest"] == digest


# --- bearer tokens: reuse and renewal ---------------------------------------------------------

def test_one_token_serves_a_whole_pull(token, env, tmp_path):
    issuer = token.issuer
    before = issuer.token_requests()
    doc = pull(token.ref("zstd"), root=tmp_path / "root", credentials=(USER, PASSWORD),
               cert_dir=token.pki.cert_dir(tmp_path / "c"))
    assert len(doc["image"]["layers"]) == 3
    assert issuer.token_requests() - before == 1
    assert issuer.requests[-1].scopes == ["repository:busybox:pull"]
    assert issuer.requests[-1].account == USER


def test_a_token_the_registry_refuses_is_renewed(token, env, tmp_path, monkeypatch):
    issuer = token.issuer
    before = issuer.token_requests()
    monkeypatch.setattr(issuer, "expired_next", 1)  # already expired: the registry says 401
    doc = pull(token.ref(), root=tmp_path / "root", credentials=(USER, PASSWORD),
               cert_dir=token.pki.cert_dir(tmp_path / "c"))
    assert doc["image"]["digest"] == token.digest
    assert issuer.token_requests() - before == 2


def test_a_token_is_renewed_when_it_expires(token, env, tmp_path, monkeypatch):
    issuer = token.issuer
    # issued_at in the past: the token has about one second left by its own account.
    monkeypatch.setattr(issuer, "issued_at_shift", -(issuer.expires_in - 1.0))
    refusals = []
    with RegistryClient(token.url, credentials=(USER, PASSWORD),
                        cert_dir=token.pki.cert_dir(tmp_path / "c")) as client:
        client._client.event_hooks["response"].append(
            lambda r: refusals.append(r) if r.status_code == 401 else None)
        before = issuer.token_requests()
        client.get_manifest("busybox", "latest", ACCEPT_ALL)
        client.get_manifest("busybox", "latest", ACCEPT_ALL)
        assert issuer.token_requests() - before == 1
        time.sleep(1.2)
        client.get_manifest("busybox", "latest", ACCEPT_ALL)
        assert issuer.token_requests() - before == 2
    assert len(refusals) == 1  # the ping; never a request with a stale token


def test_identity_tokens_from_a_helper_use_the_refresh_grant(token, env, tmp_path):
    write_credential_helper(tmp_path / "bin", "test", {token.url: ("<token>", "refresh-123")})
    write(home(env) / ".docker/config.json", json.dumps({"credHelpers": {token.url: "test"}}))
    doc = pull(token.ref(), root=tmp_path / "root", cert_dir=token.pki.cert_dir(tmp_path / "c"))
    assert doc["image"]["digest"] == token.digest
    last = token.issuer.requests[-1]
    assert (last.method, last.account) == ("POST", USER)


def test_wrong_credentials_are_refused_by_the_token_server(token, env, tmp_path):
    with pytest.raises(AuthenticationFailed) as info:
        pull(token.ref(), root=tmp_path / "root", credentials=(USER, "nope"),
             cert_dir=token.pki.cert_dir(tmp_path / "c"))
    assert f"from {token.issuer.realm}" in info.value.message
    assert stored(tmp_path / "root") == []
