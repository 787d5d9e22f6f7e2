"""Look at an image without pulling it: ``inspect`` (like ``skopeo inspect``) and ``tags``.

Inspect reads the manifest (choosing the platform from a list, as a pull does) and the
config, verifying both; no layer is read and nothing is stored. Its document is
one flat object like skopeo's (``schemas/inspect.json``)::

    {"changed": false,
        "reference": "docker://127.0.0.1:5000/busybox:latest", "transport": "docker",
        "name": "127.0.0.1:5000/busybox:latest", "digest": "sha256:…", "index_digest": null,
        "media_type": "application/vnd.docker.distribution.manifest.v2+json",
        "created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
        "layers": ["sha256:…"], "env": ["PATH=…"], "labels": null, "repo_tags": ["latest"],
        …}

``digest`` is the platform manifest's, ``index_digest`` the list's it was chosen from
(skopeo's ``Digest`` is the latter for a list). ``tags`` lists what a source holds:
``{"changed": false, "repository": ..., "tags": [...], ...}`` (``schemas/tags.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podkit_common.errors import (
    AuthenticationFailed,
    NotFound,
    RemoteError,
    UsageError,
    VerificationFailed,
)
from podkit_common.records import record
from podkit_image_pull._digest import DigestHasher, parse_digest
from podkit_image_pull._manifest import (
    ACCEPT_ALL,
    MAX_CONFIG_BYTES,
    Descriptor,
    Platform,
    host_platform,
    image_platform,
    parse_json_object,
    parse_manifest,
    parse_platform,
)
from podkit_image_pull._source import ImageSource, RegistrySource, choose_manifest, with_source

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._reference import ImageReference

RAW_WHAT = ("manifest", "config")


@record
class ResolvedImage:
    """An image's verified manifest (and the list it came from) and config."""

    top_manifest: bytes
    top_digest: str
    index_digest: str | None
    manifest: dict[str, Any]
    digest: str
    media_type: str
    config_descriptor: Descriptor
    layers: list[Descriptor]
    config_bytes: bytes
    config: dict[str, Any]
    platform: Platform


def inspect(reference: str, *, tls_verify: bool | None = None, platform: str | None = None,
            client: httpx.Client | None = None, repo_tags: bool = True,
            **registry_options: Any) -> dict[str, Any]:
    """Describe ``reference`` from its manifest and config; no layer is downloaded.

    ``repo_tags=False`` skips listing the repository's tags (one request fewer). A
    registry is reached as a pull reaches it; ``tls_verify`` and ``registry_options``
    (``credentials``, ``authfile``, ``cert_dir``, ``registries_conf[_dir]``) are pull's.
    """
    want = parse_platform(platform) if platform is not None else host_platform()

    def run(ref: ImageReference, source: ImageSource) -> dict[str, Any]:
        image = resolve_image(source, want)
        tags = _repo_tags(source) if repo_tags else []
        return _describe(image, {**ref.as_dict(), **source.describe()}, tags)

    return with_source(reference, run, tls_verify=tls_verify, client=client,
                       **registry_options)


def inspect_raw(reference: str, what: str = "manifest", *, tls_verify: bool | None = None,
                platform: str | None = None, client: httpx.Client | None = None,
                **registry_options: Any) -> bytes:
    """The verified bytes of the manifest ``reference`` names (a list stays a list), or
    with ``what="config"`` those of the (platform's) image config."""
    if what not in RAW_WHAT:
        raise UsageError(f"inspect_raw: what must be one of {', '.join(RAW_WHAT)}")
    want = parse_platform(platform) if platform is not None else host_platform()

    def run(ref: ImageReference, source: ImageSource) -> bytes:
        if what == "manifest":
            body, _, _ = source.get_manifest(source.reference, ACCEPT_ALL)
            return body
        return resolve_image(source, want).config_bytes

    return with_source(reference, run, tls_verify=tls_verify, client=client,
                       **registry_options)


def list_tags(reference: str, *, tls_verify: bool | None = None,
              client: httpx.Client | None = None, page_size: int | None = None,
              **registry_options: Any) -> dict[str, Any]:
    """The tags of a registry repository (the reference's tag is ignored), or the image
    names an archive or layout holds (RepoTags, ref names). ``page_size`` asks a
    registry for pages of that many tags."""
    if page_size is not None and page_size < 1:
        raise UsageError("the page size must be at least 1")

    def run(ref: ImageReference, source: ImageSource) -> dict[str, Any]:
        if isinstance(source, RegistrySource):
            tags, repository = source.tags(page_size), f"{ref.registry}/{ref.repository}"
        else:
            tags, repository = source.tags(), None
        return {"changed": False, "reference": ref.reference, "transport": ref.transport,
                "repository": repository, "path": getattr(ref, "path", None), "tags": tags}

    return with_source(reference, run, tls_verify=tls_verify, client=client,
                       **registry_options)


def resolve_image(source: ImageSource, want: Platform) -> ResolvedImage:
    """Fetch and verify the manifest ``source`` was opened on (choosing ``want`` from a
    list) and its config; read nothing else."""
    chosen = choose_manifest(source, want)
    doc = chosen.doc
    config_desc, layers = parse_manifest(doc)
    config_bytes = read_config(source, config_desc)
    config = parse_json_object(config_bytes, f"image config {config_desc.digest}")
    return ResolvedImage(chosen.top, chosen.top_digest, chosen.index_digest, doc,
                         chosen.digest, chosen.media_type, config_desc, layers, config_bytes,
                         config, image_platform(config, chosen.entry_platform))


def read_config(source: ImageSource, desc: Descriptor) -> bytes:
    """The config blob, read into memory and checked against its size and digest."""
    what = f"config {desc.digest} from {source.description}"
    if desc.size > MAX_CONFIG_BYTES:
        raise RemoteError(f"{what}: {desc.size} bytes is more than the {MAX_CONFIG_BYTES} "
                          "a config may have")
    hasher = DigestHasher(parse_digest(desc.digest, error=VerificationFailed).algorithm)
    parts: list[bytes] = []
    with source.open_blob(desc.digest) as blob:
        for chunk in blob.chunks:
            hasher.update(chunk)
            if hasher.size > desc.size:
                raise VerificationFailed(f"{what}: more than the {desc.size} bytes declared")
            parts.append(chunk)
    if hasher.size != desc.size:
        raise VerificationFailed(f"{what}: got {hasher.size} bytes, the manifest declares "
                                 f"{desc.size}")
    if hasher.digest != desc.digest:
        raise VerificationFailed(f"{what}: the content has digest {hasher.digest}")
    return b"".join(parts)


def _describe(image: ResolvedImage, naming: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    config = image.config
    container = config.get("config") if isinstance(config.get("config"), dict) else {}
    return {
        "changed": False,
        **naming,
        "digest": image.digest,
        "index_digest": image.index_digest,
        "media_type": image.media_type,
        "id": image.config_descriptor.digest.split(":", 1)[1],
        "config_digest": image.config_descriptor.digest,
        "created": _string(config.get("created")),
        "docker_version": _string(config.get("docker_version")),
        "author": _string(config.get("author")),
        "architecture": image.platform.architecture,
        "os": image.platform.os,
        "variant": image.platform.variant,
        "labels": _labels(container.get("Labels")),
        "env": _strings(container.get("Env")),
        "layers": [layer.digest for layer in image.layers],
        "layers_data": [{"digest": layer.digest, "size": layer.size,
                         "media_type": layer.media_type} for layer in image.layers],
        "repo_tags": tags,
    }


def _repo_tags(source: ImageSource) -> list[str]:
    # Like skopeo: a registry may refuse to list its tags; the image is still inspected.
    try:
        return source.tags()
    except (AuthenticationFailed, NotFound):
        return []


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _labels(value: Any) -> dict[str, str] | None:
    if isinstance(value, dict) and value:
        return {str(k): str(v) for k, v in value.items()}
    return None
