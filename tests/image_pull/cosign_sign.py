"""Make cosign-format ("sigstore") signatures for tests, independently of podkit's code.

Debian's skopeo has sigstore signing disabled and there is no cosign package, so this
does what ``cosign sign --key`` does, from its documented format:

* the payload is the simple-signing JSON with ``critical.type`` "cosign container image
  signature", naming the image's docker reference and manifest digest;
* the signature is ECDSA P-256 / SHA-256 (or RSA PKCS#1 v1.5 / Ed25519) over the payload
  bytes, ASN.1 DER, base64 in the layer annotation ``dev.cosignproject.cosign/signature``;
* it is stored as a layer (mediaType ``application/vnd.dev.cosign.simplesigning.v1+json``)
  of the OCI manifest tagged ``sha256-<hex>.sig`` in the image's repository; signing again
  appends a layer, like cosign.

Only ``cryptography``, ``httpx`` and the test bed's push helpers are used.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.testbed.push import push_blob, push_manifest

PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass
class SigningKey:
    """A private key and its PEM public half (what a policy's keyPath names)."""

    private: Any
    public_pem: bytes

    @classmethod
    def generate(cls, kind: str = "ecdsa") -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if kind == "ecdsa":
            private = ec.generate_private_key(ec.SECP256R1())
        elif kind == "rsa":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ed25519":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(private, pem)

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(data)


def payload(docker_reference: str, manifest_digest: str,
            sig_type: str = "cosign container image signature") -> bytes:
    """The JSON cosign signs (its "simple signing" payload)."""
    return json.dumps({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": sig_type,
        },
        "optional": None,
    }).encode()


def signature_tag(manifest_digest: str) -> str:
    return manifest_digest.replace(":", "-", 1) + ".sig"


def attach(registry_url: str, repository: str, manifest_digest: str, payload_bytes: bytes,
           annotations: dict[str, str], *, media_type: str = PAYLOAD_MEDIA_TYPE) -> str:
    """Append one layer to the ``sha256-<hex>.sig`` manifest; return that manifest's digest."""
    base = f"http://{registry_url}"
    tag = signature_tag(manifest_digest)
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        layers: list[dict[str, Any]] = []
        resp = client.get(f"{base}/v2/{repository}/manifests/{tag}",
                          headers={"Accept": OCI_MANIFEST})
        if resp.status_code == 200:
            layers = resp.json()["layers"]
        layer_digest = "sha256:" + hashlib.sha256(payload_bytes).hexdigest()
        push_blob(client, base, repository, layer_digest, payload_bytes)
        layers.append({"mediaType": media_type, "size": len(payload_bytes),
                       "digest": layer_digest, "annotations": annotations})
        config = b"{}"
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        push_blob(client, base, repository, config_digest, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers}).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        return push_manifest(client, base, repository, tag, manifest, OCI_MANIFEST, digest)


def sign(registry_url: str, repository: str, manifest_digest: str, key: SigningKey, *,
         identity: str | None = None, signed_digest: str | None = None,
         payload_bytes: bytes | None = None, uploaded_payload: bytes | None = None) -> str:
    """Sign ``repository@manifest_digest`` like ``cosign sign --key``.

    ``identity`` (default ``registry_url/repository``, cosign's tagless form) and
    ``signed_digest`` change what the payload claims; ``payload_bytes`` replaces the
    payload; ``uploaded_payload`` is stored instead of what was signed (a tampered
    payload).
    """
    data = payload_bytes if payload_bytes is not None else payload(
        identity or f"{registry_url}/{repository}", signed_digest or manifest_digest)
    signature = base64.b64encode(key.sign(data)).decode()
    stored = uploaded_payload if uploaded_payload is not None else data
    return attach(registry_url, repository, manifest_digest, stored,
                  {SIGNATURE_ANNOTATION: signature})
