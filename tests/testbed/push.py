"""Push built images to a registry through the distribution HTTP API (plain HTTP)."""

from __future__ import annotations

from urllib.parse import urljoin

import httpx

from .images import BuiltImage, BuiltIndex


class PushError(RuntimeError):
    """The registry refused a blob or manifest, or reported a different digest."""


def _client() -> httpx.Client:
    # trust_env=False: a proxy from the environment must never see 127.0.0.1 traffic.
    return httpx.Client(timeout=30.0, trust_env=False)


def _check(resp: httpx.Response, expected: int, what: str) -> None:
    if resp.status_code != expected:
        raise PushError(
            f"{what}: {resp.request.method} {resp.request.url} -> {resp.status_code} "
            f"(expected {expected}): {resp.text[:500]}"
        )


def push_blob(client: httpx.Client, base: str, repository: str, digest: str, data: bytes) -> bool:
    """Upload one blob monolithically unless present; True if it was uploaded."""
    head = client.head(f"{base}/v2/{repository}/blobs/{digest}")
    if head.status_code == 200:
        return False
    start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    _check(start, 202, f"start upload of {digest}")
    location = urljoin(f"{base}/", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    put = client.put(
        f"{location}{sep}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _check(put, 201, f"upload of {digest}")
    return True


def push_manifest(
    client: httpx.Client, base: str, repository: str, reference: str, raw: bytes,
    media_type: str, digest: str,
) -> str:
    """PUT a manifest under a tag or digest and check the digest the registry reports."""
    resp = client.put(
        f"{base}/v2/{repository}/manifests/{reference}",
        content=raw,
        headers={"Content-Type": media_type},
    )
    _check(resp, 201, f"manifest {repository}:{reference}")
    reported = resp.headers.get("Docker-Content-Digest")
    if reported != digest:
        raise PushError(f"registry reports digest {reported} for {repository}:{reference}, "
                        f"we computed {digest}")
    return reported


def _push_image(client: httpx.Client, base: str, repository: str, ref: str, img: BuiltImage) -> str:
    for digest, data in img.blobs.items():
        push_blob(client, base, repository, digest, data)
    return push_manifest(client, base, repository, ref, img.manifest, img.manifest_media_type,
                         img.manifest_digest)


def push(
    registry_url: str, repository: str, tag: str, image: BuiltImage | BuiltIndex,
    *, client: httpx.Client | None = None,
) -> str:
    """Push image (or an index with its children, children first) as repository:tag.

    registry_url is "127.0.0.1:PORT" (plain HTTP) or a full http:// URL. Returns the
    manifest digest the registry reports, which is checked to equal ours.
    """
    base = registry_url if "://" in registry_url else f"http://{registry_url}"
    base = base.rstrip("/")
    own = client is None
    client = client or _client()
    try:
        if isinstance(image, BuiltIndex):
            for child in image.children:
                _push_image(client, base, repository, child.manifest_digest, child)
            return push_manifest(client, base, repository, tag, image.manifest,
                                 image.manifest_media_type, image.manifest_digest)
        return _push_image(client, base, repository, tag, image)
    finally:
        if own:
            client.close()
