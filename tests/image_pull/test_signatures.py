"""Signature requirements with real signatures made by independent tools.

GPG ("simple signing"): keys from ``gpg --gen-key``, signatures from ``skopeo copy
--sign-by``, ``skopeo standalone-sign`` and ``gpg --sign``, stored in a lookaside read as
file:// or served by ``python -m http.server`` on 127.0.0.1, or served by a fake
registry's signature extension. Sigstore: cosign-format attachments pushed to the real
registry by tests/image_pull/cosign_sign.py. Every requirement accepts and rejects; after
every rejection nothing is stored.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from podkit_common.errors import NotImplementedYet, VerificationFailed
from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from tests.image_pull.fakes import HOST, FakeRegistry
from tests.image_pull.signing import (
    GpgHome,
    LookasideServer,
    lookaside_path,
    simple_signing_payload,
    skopeo_sign_copy,
    skopeo_standalone_sign,
)
from tests.testbed.images import busybox_image
from tests.testbed.push import push

try:
    import cryptography  # noqa: F401

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the package is a declared dependency
    HAVE_CRYPTOGRAPHY = False

needs_cryptography = pytest.mark.skipif(not HAVE_CRYPTOGRAPHY,
                                        reason="the cryptography package is not installed")
ACCEPT = [{"type": "insecureAcceptAnything"}]
SCHEMA = "urn:podkit:image-pull:image"


def nothing_stored(root: Path) -> bool:
    blobs = root / "blobs" / "sha256"
    return not blobs.exists() or not any(blobs.iterdir())


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


def registries_d(directory: Path, lookaside: str | None, *,
                 attachments: bool | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["default-docker:"]
    if lookaside:
        lines.append(f"  lookaside: {lookaside}")
    if attachments is not None:
        lines.append(f"  use-sigstore-attachments: {'true' if attachments else 'false'}")
    (directory / "default.yaml").write_text("\n".join(lines) + "\n")
    return directory


def manifest_of(registry_url: str, repository: str, reference: str) -> tuple[bytes, str]:
    resp = httpx.get(f"http://{registry_url}/v2/{repository}/manifests/{reference}",
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                        "application/vnd.oci.image.manifest.v1+json"},
                     trust_env=False, timeout=30)
    resp.raise_for_status()
    return resp.content, resp.headers["Docker-Content-Digest"]


# --- GPG fixtures ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpg(tmp_path_factory) -> GpgHome:
    home = GpgHome(tmp_path_factory.mktemp("gpg") / "home")
    try:
        home.generate("trusted")
        home.generate("other")
        home.generate("withsub", subkey=True)
        yield home
    finally:
        home.close()


@dataclass
class SignedImage:
    """sig-gpg:v1 in the registry, signed by skopeo with the "trusted" key."""

    registry: str
    repository: str
    digest: str
    manifest: bytes
    lookaside: Path
    registries_d: Path
    keys: dict[str, Path]

    @property
    def ref(self) -> str:
        return f"docker://{self.registry}/{self.repository}:v1"

    def signed_by(self, tmp_path: Path, key: str = "trusted", **extra) -> Path:
        req = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(self.keys[key]), **extra}
        return write_json(tmp_path / "policy.json", {
            "default": [{"type": "reject"}],
            "transports": {"docker": {self.registry: [req]}}})


@pytest.fixture(scope="module")
def signed(registry, images, gpg, tmp_path_factory) -> SignedImage:
    work = tmp_path_factory.mktemp("signed")
    lookaside = work / "lookaside"
    regd = work / "registries.d"
    regd.mkdir()
    (regd / "default.yaml").write_text(
        f"default-docker:\n  lookaside: file://{lookaside}\n"
        f"  lookaside-staging: file://{lookaside}\n")
    skopeo_sign_copy(gpg, "trusted", images.ref("busybox:latest"),
                     f"docker://{registry.url}/sig-gpg:v1", registries_d=regd, work=work)
    manifest, digest = manifest_of(registry.url, "sig-gpg", "v1")
    keys = {name: gpg.export(name, work / f"{name}.asc") for name in gpg.keys}
    keys["trusted-binary"] = gpg.export("trusted", work / "trusted.gpg", armor=False)
    return SignedImage(registry.url, "sig-gpg", digest, manifest, lookaside, regd, keys)


def unsigned_copy(registry_url: str, repository: str) -> tuple[bytes, str]:
    """busybox:latest pushed again as ``repository:v1`` (no signature anywhere)."""
    push(registry_url, repository, "v1", busybox_image(1, fmt="docker"))
    return manifest_of(registry_url, repository, "v1")


# --- signedBy: accepted ----------------------------------------------------------------

@pytest.mark.registry
def test_signed_by_accepts_a_skopeo_signature(signed, gpg, tmp_path):
    root = tmp_path / "root"
    doc = pull(signed.ref, root=root, tls_verify=False,
               signature_policy=signed.signed_by(tmp_path), registries_d=signed.registries_d)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    trust = doc["image"]["trust"]
    assert trust["scope"] == f'transports.docker["{signed.registry}"]'
    (accepted,) = trust["requirements"]
    assert accepted["type"] == "signedBy"
    assert accepted["key"] == gpg.keys["trusted"]
    assert accepted["identity"] == f"{signed.registry}/sig-gpg:v1"
    assert accepted["signature"] == \
        f"file://{lookaside_path(signed.lookaside, 'sig-gpg', signed.digest)}"
    assert doc["image"]["digest"] == signed.digest
    assert (root / "blobs" / "sha256" / signed.digest[7:]).is_file()


@pytest.mark.registry
def test_signed_by_reads_a_lookaside_over_http(signed, tmp_path):
    server = LookasideServer(signed.lookaside)
    try:
        regd = registries_d(tmp_path / "registries.d", server.url + "/")
        doc = pull(signed.ref, root=tmp_path / "root", tls_verify=False,
                   signature_policy=signed.signed_by(tmp_path), registries_d=regd)
    finally:
        server.close()
    assert doc["image"]["trust"]["requirements"][0]["signature"].startswith(server.url)


@pytest.mark.registry
def test_signed_by_with_key_data_of_a_binary_key(signed, tmp_path):
    key = base64.b64encode(signed.keys["trusted-binary"].read_bytes()).decode()
    policy = write_json(tmp_path / "policy.json", {"default": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyData": key}]})
    doc = pull(signed.ref, root=tmp_path / "root", tls_verify=False,
               signature_policy=policy, registries_d=signed.registries_d)
    assert doc["image"]["trust"]["requirements"][0]["type"] == "signedBy"


@pytest.mark.registry
def test_signed_by_one_of_several_keys(signed, tmp_path):
    policy = write_json(tmp_path / "policy.json", {"default": [
        {"type": "signedBy", "keyType": "GPGKeys",
         "keyPaths": [str(signed.keys["other"]), str(signed.keys["trusted"])]}]})
    pull(signed.ref, root=tmp_path / "root", tls_verify=False, signature_policy=policy,
         registries_d=signed.registries_d)


@pytest.mark.registry
def test_pull_by_digest_accepts_the_tag_signature(signed, tmp_path):
    ref = f"docker://{signed.registry}/sig-gpg@{signed.digest}"
    doc = pull(ref, root=tmp_path / "root", tls_verify=False,
               signature_policy=signed.signed_by(tmp_path), registries_d=signed.registries_d)
    assert doc["image"]["trust"]["requirements"][0]["identity"].endswith("sig-gpg:v1")


@pytest.mark.registry
def test_a_signing_subkey_counts_as_its_primary_key(signed, gpg, tmp_path):
    manifest, digest = unsigned_copy(signed.registry, "sig-subkey")
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-subkey", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(skopeo_standalone_sign(
        gpg, "withsub", manifest, f"{signed.registry}/sig-subkey:v1", tmp_path))
    doc = pull(f"docker://{signed.registry}/sig-subkey:v1", root=tmp_path / "root",
               tls_verify=False, signature_policy=signed.signed_by(tmp_path, "withsub"),
               registries_d=registries_d(tmp_path / "regd", f"file://{lookaside}"))
    assert doc["image"]["trust"]["requirements"][0]["key"] == gpg.keys["withsub"]


# --- signedBy: rejected ----------------------------------------------------------------

@pytest.mark.registry
def test_signed_by_another_key_is_rejected(signed, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(signed.ref, root=root, tls_verify=False,
             signature_policy=signed.signed_by(tmp_path, "other"),
             registries_d=signed.registries_d)
    message = info.value.message
    assert f'transports.docker["{signed.registry}"], requirement 1 of 1 (signedBy GPGKeys ' \
           f"keyPath {signed.keys['other']})" in message
    assert "which is not among the policy's keys" in message
    assert nothing_stored(root)


@pytest.mark.registry
def test_an_unsigned_image_is_rejected(signed, tmp_path):
    unsigned_copy(signed.registry, "sig-none")
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{signed.registry}/sig-none:v1", root=root, tls_verify=False,
             signature_policy=signed.signed_by(tmp_path), registries_d=signed.registries_d)
    assert "a signature was required, but there is no simple-signing signature" \
        in info.value.message
    assert f"lookaside file://{signed.lookaside}/sig-none@sha256=" in info.value.message
    assert nothing_stored(root)


IDENTITY_CASES = [
    (None, False),
    ({"type": "matchExact"}, False),
    ({"type": "matchRepository"}, False),
    ({"type": "exactRepository", "dockerRepository": "{registry}/elsewhere"}, True),
    ({"type": "exactReference", "dockerReference": "{registry}/elsewhere:v1"}, True),
    ({"type": "exactReference", "dockerReference": "{registry}/elsewhere:v2"}, False),
    ({"type": "remapIdentity", "prefix": "{registry}/sig-identity",
      "signedPrefix": "{registry}/elsewhere"}, True),
]


@pytest.mark.registry
@pytest.mark.parametrize(("rule", "accepted"), IDENTITY_CASES)
def test_signed_identity_decides_about_a_foreign_identity(signed, gpg, tmp_path, rule,
                                                          accepted):
    """The image is signed (by the trusted key) as {registry}/elsewhere:v1."""
    manifest, digest = unsigned_copy(signed.registry, "sig-identity")
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-identity", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(skopeo_standalone_sign(
        gpg, "trusted", manifest, f"{signed.registry}/elsewhere:v1", tmp_path))
    extra = {}
    if rule is not None:
        extra["signedIdentity"] = json.loads(
            json.dumps(rule).replace("{registry}", signed.registry))
    root = tmp_path / "root"
    kwargs = {"root": root, "tls_verify": False,
              "signature_policy": signed.signed_by(tmp_path, **extra),
              "registries_d": registries_d(tmp_path / "regd", f"file://{lookaside}")}
    ref = f"docker://{signed.registry}/sig-identity:v1"
    if accepted:
        doc = pull(ref, **kwargs)
        assert doc["image"]["trust"]["requirements"][0]["identity"] == \
            f"{signed.registry}/elsewhere:v1"
        return
    with pytest.raises(VerificationFailed) as info:
        pull(ref, **kwargs)
    assert f"its identity '{signed.registry}/elsewhere:v1' is not accepted by " \
           f"signedIdentity" in info.value.message
    assert nothing_stored(root)


@pytest.mark.registry
def test_a_tampered_payload_is_rejected(signed, gpg, tmp_path):
    _, digest = unsigned_copy(signed.registry, "sig-tamper")
    identity = f"{signed.registry}/sig-tamper:v1"
    blob = gpg.sign("trusted", simple_signing_payload(identity, digest), compress=False)
    assert identity.encode() in blob
    tampered = blob.replace(identity.encode(), identity[:-1].encode() + b"2")
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-tamper", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(tampered)
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{signed.registry}/sig-tamper:v1", root=root, tls_verify=False,
             signature_policy=signed.signed_by(tmp_path),
             registries_d=registries_d(tmp_path / "regd", f"file://{lookaside}"))
    assert "BAD signature" in info.value.message
    assert nothing_stored(root)


@pytest.mark.registry
def test_a_signature_for_another_digest_is_rejected(signed, images, gpg, tmp_path):
    _, digest = unsigned_copy(signed.registry, "sig-digest")
    other = images["busybox:oci"].image.manifest
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-digest", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(skopeo_standalone_sign(
        gpg, "trusted", other, f"{signed.registry}/sig-digest:v1", tmp_path))
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{signed.registry}/sig-digest:v1", root=root, tls_verify=False,
             signature_policy=signed.signed_by(tmp_path),
             registries_d=registries_d(tmp_path / "regd", f"file://{lookaside}"))
    assert f"it signs manifest {images['busybox:oci'].digest}, not {digest}" \
        in info.value.message
    assert nothing_stored(root)


@pytest.mark.registry
def test_one_good_signature_among_bad_ones_is_enough(signed, gpg, tmp_path):
    _, digest = unsigned_copy(signed.registry, "sig-many")
    identity = f"{signed.registry}/sig-many:v1"
    lookaside = tmp_path / "lookaside"
    first = lookaside_path(lookaside, "sig-many", digest, 1)
    first.parent.mkdir(parents=True)
    first.write_bytes(gpg.sign("other", simple_signing_payload(identity, digest)))
    lookaside_path(lookaside, "sig-many", digest, 2).write_bytes(b"\x89garbage")
    policy = signed.signed_by(tmp_path)
    regd = registries_d(tmp_path / "regd", f"file://{lookaside}")
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{identity}", root=root, tls_verify=False, signature_policy=policy,
             registries_d=regd)
    assert "none of the 2 signatures was accepted" in info.value.message
    assert "signature-1: signed by key" in info.value.message
    assert nothing_stored(root)
    lookaside_path(lookaside, "sig-many", digest, 3).write_bytes(
        gpg.sign("trusted", simple_signing_payload(identity, digest)))
    doc = pull(f"docker://{identity}", root=root, tls_verify=False, signature_policy=policy,
               registries_d=regd)
    assert doc["image"]["trust"]["requirements"][0]["signature"].endswith("signature-3")


@pytest.mark.registry
def test_a_multiarch_pull_checks_the_platform_manifest(signed, images, gpg, tmp_path):
    """podman verifies the instance it copies, not the index it came from."""
    pushed = images["busybox:multiarch"]
    native = pushed.image.native
    identity = f"{signed.registry}/busybox:multiarch"
    lookaside = tmp_path / "lookaside"
    index_sig = lookaside_path(lookaside, "busybox", pushed.digest)
    index_sig.parent.mkdir(parents=True)
    index_sig.write_bytes(gpg.sign("trusted", simple_signing_payload(identity, pushed.digest)))
    kwargs = {"tls_verify": False, "signature_policy": signed.signed_by(tmp_path),
              "registries_d": registries_d(tmp_path / "regd", f"file://{lookaside}")}
    with pytest.raises(VerificationFailed) as info:
        pull(pushed.ref, root=tmp_path / "a", **kwargs)
    assert f"manifest {native.manifest_digest}" in info.value.message
    assert nothing_stored(tmp_path / "a")
    instance_sig = lookaside_path(lookaside, "busybox", native.manifest_digest)
    instance_sig.parent.mkdir(parents=True)
    instance_sig.write_bytes(gpg.sign("trusted", simple_signing_payload(
        identity, native.manifest_digest)))
    doc = pull(pushed.ref, root=tmp_path / "b", **kwargs)
    assert doc["image"]["index_digest"] == pushed.digest


@pytest.mark.registry
def test_gpg_homes_are_removed_and_cli_glue(signed, tmp_path, podkit_env, monkeypatch):
    # A short scratch directory (gpg needs room for its socket names under it).
    scratch = Path(tempfile.mkdtemp(prefix="pk-", dir="/tmp"))
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        pull(signed.ref, root=tmp_path / "root", tls_verify=False,
             signature_policy=signed.signed_by(tmp_path), registries_d=signed.registries_d)
        with pytest.raises(VerificationFailed):
            pull(signed.ref, root=tmp_path / "root2", tls_verify=False,
                 signature_policy=signed.signed_by(tmp_path, "other"),
                 registries_d=signed.registries_d)
        assert list(scratch.iterdir()) == []
    finally:
        monkeypatch.undo()
        shutil.rmtree(scratch, ignore_errors=True)
    argv = ["pod-image-pull", "--tls-verify=false", "--registries-d", str(signed.registries_d),
            signed.ref, "--signature-policy"]
    good = subprocess.run([*argv, str(signed.signed_by(tmp_path))], capture_output=True,
                          env=podkit_env, timeout=120, check=False)
    assert good.returncode == 0, good.stderr.decode()
    assert json.loads(good.stdout)["image"]["trust"]["requirements"][0]["type"] == "signedBy"
    bad = subprocess.run([*argv, str(signed.signed_by(tmp_path, "other"))],
                         capture_output=True, env=podkit_env, timeout=120, check=False)
    assert bad.returncode == 6 and bad.stdout == b""
    assert json.loads(bad.stderr.splitlines()[-1])["error"]["type"] == "VerificationFailed"


# --- the registry signature extension (X-Registry-Supports-Signatures) -----------------

def extension_registry(gpg: GpgHome, key: str, tamper: bool = False) -> tuple[FakeRegistry, str]:
    image = busybox_image(1, fmt="docker")
    fake = FakeRegistry()
    fake.add_image("app:v1", image)
    blob = gpg.sign(key, simple_signing_payload(f"{HOST}/app:v1", image.manifest_digest),
                    compress=not tamper)
    if tamper:
        blob = blob.replace(b"app:v1", b"app:v2")
    listing = {"signatures": [
        {"schemaVersion": 2, "type": "atomic", "name": f"{image.manifest_digest}@x",
         "content": base64.b64encode(blob).decode()}]}

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/v2/":
            return httpx.Response(200, json={}, headers={"X-Registry-Supports-Signatures": "1"})
        if request.url.path == f"/extensions/v2/app/signatures/{image.manifest_digest}":
            return httpx.Response(200, json=listing)
        return None

    fake.override = answer
    return fake, image.manifest_digest


@pytest.mark.parametrize(("key", "tamper", "error"), [
    ("trusted", False, None),
    ("other", False, "not among the policy's keys"),
    ("trusted", True, "BAD signature"),
])
def test_the_registry_signature_extension(signed, gpg, tmp_path, key, tamper, error):
    fake, _ = extension_registry(gpg, key, tamper)
    policy = write_json(tmp_path / "policy.json", {"default": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(signed.keys["trusted"])}]})
    # A lookaside nobody listens on: consulting it would fail the pull.
    regd = registries_d(tmp_path / "regd", "http://127.0.0.1:9/never")
    root = tmp_path / "root"
    kwargs = {"root": root, "client": fake.client(), "signature_policy": policy,
              "registries_d": regd}
    if error is None:
        doc = pull(f"{HOST}/app:v1", **kwargs)
        assert doc["image"]["trust"]["requirements"][0]["signature"] == \
            "registry signature extension, entry 1"
        return
    with pytest.raises(VerificationFailed) as info:
        pull(f"{HOST}/app:v1", **kwargs)
    assert error in info.value.message
    assert nothing_stored(root)
    assert not any(r.url.host == "127.0.0.1" for r in fake.requests)


# --- sigstoreSigned --------------------------------------------------------------------

def sigstore_policy(tmp_path: Path, keys: list[bytes], identity: dict | None = None,
                    *, as_data: bool = False) -> Path:
    req: dict = {"type": "sigstoreSigned"}
    if as_data:
        req["keyDatas" if len(keys) > 1 else "keyData"] = (
            [base64.b64encode(k).decode() for k in keys] if len(keys) > 1
            else base64.b64encode(keys[0]).decode())
    else:
        paths = []
        for number, key in enumerate(keys):
            path = tmp_path / f"cosign-{number}.pub"
            path.write_bytes(key)
            paths.append(str(path))
        req["keyPaths" if len(paths) > 1 else "keyPath"] = paths if len(paths) > 1 else paths[0]
    if identity is not None:
        req["signedIdentity"] = identity
    return write_json(tmp_path / "policy.json", {"default": [req]})


@pytest.fixture(scope="module")
def cosign_keys():
    if not HAVE_CRYPTOGRAPHY:
        pytest.skip("the cryptography package is not installed")
    from tests.image_pull.cosign_sign import SigningKey

    return {kind: SigningKey.generate(kind) for kind in ("ecdsa", "rsa", "ed25519")} | {
        "other": SigningKey.generate("ecdsa")}


@pytest.fixture
def attachments_on(tmp_path) -> Path:
    # A lookaside too: sigstore pulls must not need one (and never read it).
    return registries_d(tmp_path / "regd", "http://127.0.0.1:9/never", attachments=True)


MATCH_REPOSITORY = {"type": "matchRepository"}


@needs_cryptography
@pytest.mark.registry
@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_sigstore_signed_accepts_a_cosign_signature(registry, cosign_keys, tmp_path,
                                                    attachments_on, kind):
    from tests.image_pull import cosign_sign

    repo = f"sig-cosign-{kind}"
    _, digest = unsigned_copy(registry.url, repo)
    cosign_sign.sign(registry.url, repo, digest, cosign_keys[kind])
    doc = pull(f"docker://{registry.url}/{repo}:v1", root=tmp_path / "root", tls_verify=False,
               signature_policy=sigstore_policy(tmp_path, [cosign_keys[kind].public_pem],
                                                MATCH_REPOSITORY),
               registries_d=attachments_on)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    (accepted,) = doc["image"]["trust"]["requirements"]
    assert accepted == {"type": "sigstoreSigned", "key": "public key 1 of the requirement",
                        "identity": f"{registry.url}/{repo}",
                        "signature": f"{registry.url}/{repo}:"
                                     f"{cosign_sign.signature_tag(digest)} layer 1"}


@needs_cryptography
@pytest.mark.registry
def test_sigstore_key_datas_and_a_tagged_identity(registry, cosign_keys, tmp_path,
                                                  attachments_on):
    from tests.image_pull import cosign_sign

    _, digest = unsigned_copy(registry.url, "sig-cosign-tagged")
    cosign_sign.sign(registry.url, "sig-cosign-tagged", digest, cosign_keys["ecdsa"],
                     identity=f"{registry.url}/sig-cosign-tagged:v1")
    policy = sigstore_policy(tmp_path, [cosign_keys["other"].public_pem,
                                        cosign_keys["ecdsa"].public_pem], as_data=True)
    doc = pull(f"docker://{registry.url}/sig-cosign-tagged:v1", root=tmp_path / "root",
               tls_verify=False, signature_policy=policy, registries_d=attachments_on)
    assert doc["image"]["trust"]["requirements"][0]["key"] == "public key 2 of the requirement"


SIGSTORE_REJECTIONS = {
    "wrong key": ({"key": "other"}, MATCH_REPOSITORY, "cryptographic verification failed"),
    "tampered payload": ({"tamper": True}, MATCH_REPOSITORY, "cryptographic verification "
                                                             "failed"),
    "tagless identity, default rule": ({}, None, "is not accepted by signedIdentity "
                                                 "matchRepoDigestOrExact"),
    "another repository": ({"identity": "{registry}/elsewhere"}, MATCH_REPOSITORY,
                           "is not accepted by signedIdentity matchRepository"),
    "another digest": ({"other_digest": True}, MATCH_REPOSITORY, "it signs manifest"),
    "unsigned": ({"unsigned": True}, MATCH_REPOSITORY, "there is no sigstore signature"),
    "attachments off": ({"attachments": False}, MATCH_REPOSITORY,
                        "use-sigstore-attachments is not enabled"),
    "not a signature layer": ({"media_type": "application/vnd.example.attestation+json"},
                              MATCH_REPOSITORY, "not a sigstore signature (application/vnd"),
    "no annotation": ({"annotation": False}, MATCH_REPOSITORY, "missing the "
                                                               "dev.cosignproject.cosign/"),
    "simple-signing type": ({"sig_type": "atomic container signature"}, MATCH_REPOSITORY,
                            "unrecognized signature type"),
}


@needs_cryptography
@pytest.mark.registry
@pytest.mark.parametrize("case", list(SIGSTORE_REJECTIONS))
def test_sigstore_signed_rejections_store_nothing(registry, images, cosign_keys, tmp_path,
                                                  case):
    from tests.image_pull import cosign_sign

    how, identity_rule, message = SIGSTORE_REJECTIONS[case]
    repo = "sig-cosign-" + case.replace(" ", "-").replace(",", "")
    _, digest = unsigned_copy(registry.url, repo)
    key = cosign_keys["ecdsa"]
    signer = cosign_keys[how.get("key", "ecdsa")]
    claimed = images["busybox:oci"].digest if how.get("other_digest") else digest
    identity = how.get("identity", f"{registry.url}/{repo}").replace("{registry}", registry.url)
    data = cosign_sign.payload(identity, claimed, how.get("sig_type",
                                                          "cosign container image signature"))
    if not how.get("unsigned"):
        annotations = {}
        if how.get("annotation", True):
            annotations[cosign_sign.SIGNATURE_ANNOTATION] = \
                base64.b64encode(signer.sign(data)).decode()
        stored = data.replace(b"sig-cosign", b"sig-cosigN") if how.get("tamper") else data
        cosign_sign.attach(registry.url, repo, digest, stored, annotations,
                           media_type=how.get("media_type", cosign_sign.PAYLOAD_MEDIA_TYPE))
    regd = registries_d(tmp_path / "regd", None, attachments=how.get("attachments", True))
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{registry.url}/{repo}:v1", root=root, tls_verify=False,
             signature_policy=sigstore_policy(tmp_path, [key.public_pem], identity_rule),
             registries_d=regd)
    assert "requirement 1 of 1 (sigstoreSigned" in info.value.message
    assert message in info.value.message
    assert nothing_stored(root)


@needs_cryptography
@pytest.mark.registry
def test_keyless_sigstore_is_not_implemented(registry, cosign_keys, tmp_path, attachments_on):
    from tests.image_pull import cosign_sign

    _, digest = unsigned_copy(registry.url, "sig-cosign-keyless")
    cosign_sign.sign(registry.url, "sig-cosign-keyless", digest, cosign_keys["ecdsa"])
    policy = write_json(tmp_path / "policy.json", {"default": [
        {"type": "sigstoreSigned", "fulcio": {"caPath": "/ca.pem", "oidcIssuer": "https://x",
                                              "subjectEmail": "a@b"},
         "rekorPublicKeyPath": "/rekor.pub"}]})
    root = tmp_path / "root"
    with pytest.raises(NotImplementedYet) as info:
        pull(f"docker://{registry.url}/sig-cosign-keyless:v1", root=root, tls_verify=False,
             signature_policy=policy, registries_d=attachments_on)
    assert "keyless" in info.value.message
    assert nothing_stored(root)


@needs_cryptography
@pytest.mark.registry
def test_signed_by_and_sigstore_signed_together(signed, registry, cosign_keys, gpg, tmp_path,
                                                attachments_on):
    """Both requirements of one scope must accept: GPG lookaside and a cosign attachment."""
    from tests.image_pull import cosign_sign

    manifest, digest = unsigned_copy(registry.url, "sig-both")
    cosign_sign.sign(registry.url, "sig-both", digest, cosign_keys["ecdsa"])
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-both", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(skopeo_standalone_sign(gpg, "trusted", manifest,
                                              f"{registry.url}/sig-both:v1", tmp_path))
    pem = tmp_path / "cosign.pub"
    pem.write_bytes(cosign_keys["ecdsa"].public_pem)
    policy = write_json(tmp_path / "policy.json", {"default": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(signed.keys["trusted"])},
        {"type": "sigstoreSigned", "keyPath": str(pem), "signedIdentity": MATCH_REPOSITORY}]})
    regd = registries_d(tmp_path / "regd2", f"file://{lookaside}", attachments=True)
    doc = pull(f"docker://{registry.url}/sig-both:v1", root=tmp_path / "root",
               tls_verify=False, signature_policy=policy, registries_d=regd)
    assert [r["type"] for r in doc["image"]["trust"]["requirements"]] == \
        ["signedBy", "sigstoreSigned"]
    target.unlink()
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{registry.url}/sig-both:v1", root=tmp_path / "root2",
             tls_verify=False, signature_policy=policy, registries_d=regd)
    assert "requirement 1 of 2 (signedBy" in info.value.message
    assert nothing_stored(tmp_path / "root2")


@pytest.mark.registry
def test_a_mirror_serves_the_signature_the_policy_judges_the_name(signed, gpg, tmp_path):
    """As in containers/image: the policy and the signed identity are about the name
    asked for; the signature is looked up where the image came from (the mirror)."""
    _, digest = unsigned_copy(signed.registry, "sig-mirror")
    logical = "localhost:1/team/app"  # nothing listens there: only the mirror answers
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-mirror", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(gpg.sign("trusted", simple_signing_payload(f"{logical}:v1", digest)))
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{logical}"\ninsecure = true\n'
                    f'[[registry.mirror]]\nlocation = "{signed.registry}/sig-mirror"\n'
                    "insecure = true\n")
    (tmp_path / "conf.d").mkdir()
    policy = write_json(tmp_path / "policy.json", {
        "default": [{"type": "reject"}],
        "transports": {"docker": {logical: [
            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(signed.keys["trusted"])}]}}})
    kwargs = {"registries_conf": conf, "registries_conf_dir": tmp_path / "conf.d",
              "signature_policy": policy,
              "registries_d": registries_d(tmp_path / "regd", f"file://{lookaside}")}
    doc = pull(f"docker://{logical}:v1", root=tmp_path / "root", **kwargs)
    assert doc["image"]["name"] == f"{logical}:v1"
    assert doc["image"]["trust"]["requirements"][0]["identity"] == f"{logical}:v1"
    target.write_bytes(gpg.sign("trusted", simple_signing_payload(
        f"{signed.registry}/sig-mirror:v1", digest)))
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{logical}:v1", root=tmp_path / "root2", **kwargs)
    assert "is not accepted by signedIdentity" in info.value.message
    assert nothing_stored(tmp_path / "root2")


@pytest.mark.registry
def test_the_newer_lookaside_format_is_read(signed, tmp_path):
    """containers/image writes ``\\0simple-signing\\n`` + the OpenPGP message nowadays."""
    original = lookaside_path(signed.lookaside, "sig-gpg", signed.digest).read_bytes()
    lookaside = tmp_path / "lookaside"
    target = lookaside_path(lookaside, "sig-gpg", signed.digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\x00simple-signing\n" + original)
    pull(signed.ref, root=tmp_path / "root", tls_verify=False,
         signature_policy=signed.signed_by(tmp_path),
         registries_d=registries_d(tmp_path / "regd", f"file://{lookaside}"))


GOOD_PAYLOAD = {"critical": {"type": "atomic container signature",
                             "image": {"docker-manifest-digest": "sha256:" + "a" * 64},
                             "identity": {"docker-reference": "example.com/a:1"}},
                "optional": {"creator": "x", "timestamp": 1700000000}}


def _variant(path: str, value: object) -> bytes:
    doc = json.loads(json.dumps(GOOD_PAYLOAD))
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("payload", "message"), [
    (_variant("extra", 1), "exactly the fields"),
    (_variant("critical.extra", 1), "exactly the fields"),
    (_variant("critical.image.extra", 1), "exactly the fields"),
    (_variant("critical.identity", KeyError), "exactly the fields"),
    (_variant("critical.type", "cosign container image signature"), "unrecognized signature"),
    (_variant("optional", None), "'optional' must be an object"),
    (_variant("optional.timestamp", 1.5), "not an integer"),
    (_variant("critical.image.docker-manifest-digest", 5), "must be strings"),
    (b'{"critical": {}, "critical": {}, "optional": {}}', "duplicate key"),
    (b"\xff", "not JSON"),
])
def test_signed_payloads_are_read_strictly(payload, message):
    from podkit_image_pull._gpg import SignatureRejected
    from podkit_image_pull._signature_check import SIMPLE_SIGNING_TYPE, parse_payload

    assert parse_payload(json.dumps(GOOD_PAYLOAD).encode(), SIMPLE_SIGNING_TYPE) == \
        ("example.com/a:1", "sha256:" + "a" * 64)
    with pytest.raises(SignatureRejected) as info:
        parse_payload(payload, SIMPLE_SIGNING_TYPE)
    assert message in str(info.value)
