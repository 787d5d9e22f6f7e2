"""An in-memory registry behind httpx.MockTransport, for tests of the HTTP seam.

It serves what ``tests.testbed.images`` builds, so the bytes are real images; tests
switch on a bearer-token requirement, corrupt chosen blobs, or replace answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.testbed.images import BuiltImage, BuiltIndex

HOST = "reg.test"
REALM = "https://auth.test/token"


@dataclass
class FakeRegistry:
    """Manifests by tag or digest, blobs by digest; ``requests`` logs every request."""

    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: Require "Bearer <token>" (anonymous tokens from REALM) when set.
    token: str | None = None
    #: Digests whose blob content is served corrupted (same length, one byte flipped).
    tamper: set[str] = field(default_factory=set)
    #: Called first with each request; a response it returns is served instead.
    override: Callable[[httpx.Request], httpx.Response | None] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    tokens_issued: int = 0

    def add_image(self, repo_tag: str, image: BuiltImage | BuiltIndex) -> None:
        """Serve ``image`` (and, for an index, its children) under ``repo:tag``."""
        self.manifests[repo_tag] = (image.manifest, image.manifest_media_type)
        repo = repo_tag.split(":", 1)[0]
        self.manifests[f"{repo}@{image.manifest_digest}"] = (image.manifest,
                                                             image.manifest_media_type)
        for child in getattr(image, "children", []):
            self.add_image(f"{repo}:child-{child.manifest_digest[7:19]}", child)
        self.blobs.update(image.blobs)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        url = request.url
        if url.host == "auth.test":
            self.tokens_issued += 1
            return httpx.Response(200, json={"token": self.token})
        if url.host != HOST:
            return httpx.Response(404)
        if self.token is not None and \
                request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, headers={"WWW-Authenticate": (
                f'Bearer realm="{REALM}",service="{HOST}"')}, json=_errors("UNAUTHORIZED"))
        path = url.path
        if path == "/v2/":
            return httpx.Response(200, json={})
        repo, kind, ref = _split(path)
        if kind == "manifests":
            key = f"{repo}@{ref}" if ":" in ref else f"{repo}:{ref}"
            if key not in self.manifests:
                return httpx.Response(404, json=_errors("MANIFEST_UNKNOWN", "manifest unknown"))
            body, media_type = self.manifests[key]
            return httpx.Response(200, content=body, headers={
                "Content-Type": media_type,
                "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})
        if kind == "blobs":
            if ref not in self.blobs:
                return httpx.Response(404, json=_errors("BLOB_UNKNOWN", "blob unknown"))
            data = self.blobs[ref]
            if ref in self.tamper:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            return httpx.Response(200, content=data)
        return httpx.Response(404)


def _split(path: str) -> tuple[str, str, str]:
    body = path.removeprefix("/v2/")
    for kind in ("manifests", "blobs"):
        marker = f"/{kind}/"
        if marker in body:
            repo, ref = body.rsplit(marker, 1)
            return repo, kind, ref
    return body, "", ""


def _errors(code: str, message: str = "") -> dict:
    return {"errors": [{"code": code, "message": message or code.lower(), "detail": None}]}


def dump(doc: dict) -> bytes:
    """Serialise a manifest as registries store it (bytes are what gets hashed)."""
    return json.dumps(doc, indent=3).encode()
