"""podkit_image_pull: pull container images from registries, verifying every byte.

The library takes and returns plain JSON-able data, never exits and never touches
stdin/stdout; ``pod-image-pull`` (``cli.py``) is the thin command line on top of it::

    from podkit_image_pull import pull
    doc = pull("docker://127.0.0.1:5000/busybox:latest", root="/var/lib/podkit",
               tls_verify=False)
    doc["image"]["layers"][0]["path"]   # a verified blob under <root>/blobs/sha256/

Modules: ``_reference`` (image names), ``_digest`` (digests and hashing), ``_manifest``
(manifests, indexes, platforms), ``_registry`` (the distribution API client, httpx),
``_blobs`` (the content-addressed store), ``_pull`` (the whole pull), ``_source`` (where
an image comes from: a registry, ``_layout`` for oci:/oci-archive:, ``_archive`` for
docker-archive:), ``_inspect`` (inspect and tags, nothing stored), ``_policy`` (the
trust policy, policy.json), ``_trust`` (enforcing it on a pull; with ``_identity``,
``_signatures``, ``_signature_check``, ``_gpg``, ``_registries_d``), ``_auth``
(credentials: auth files, helpers), ``_request_auth`` (Basic auth, bearer tokens),
``_certs`` (--cert-dir, certs.d), ``_regconf`` (registries.conf files), ``_resolve``
(short names, mirrors, blocking). Names load lazily, so importing the package (e.g. for
``--version``) does not import httpx.

Errors are podkit_common.errors classes: UsageError for a malformed reference or
platform, VerificationFailed for content that does not match its digest, RemoteError /
AuthenticationFailed / NotFound for what the registry answered.
"""

from __future__ import annotations

from podkit_common.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start

__version__ = "0.1.0"

__all__ = [
    "BlobStore",
    "BlobStream",
    "Challenge",
    "Credentials",
    "Digest",
    "DigestHasher",
    "ImageReference",
    "ImageSource",
    "Platform",
    "Policy",
    "RegistriesConf",
    "RegistryClient",
    "RetryPolicy",
    "__version__",
    "archive_images",
    "digest_of",
    "host_platform",
    "inspect",
    "inspect_raw",
    "list_tags",
    "load_policy",
    "load_registries_conf",
    "lookup_credentials",
    "parse_challenge",
    "parse_digest",
    "parse_platform",
    "parse_policy",
    "parse_reference",
    "pull",
    "select_platform",
]

_HOMES = {
    "BlobStore": "_blobs",
    "BlobStream": "_source",
    "Challenge": "_registry",
    "Credentials": "_auth",
    "RegistriesConf": "_regconf",
    "load_registries_conf": "_regconf",
    "lookup_credentials": "_auth",
    "Digest": "_digest",
    "DigestHasher": "_digest",
    "archive_images": "_archive_list",
    "ImageReference": "_reference",
    "ImageSource": "_source",
    "Platform": "_manifest",
    "Policy": "_policy",
    "RegistryClient": "_registry",
    "RetryPolicy": "_retry",
    "digest_of": "_digest",
    "host_platform": "_manifest",
    "inspect": "_inspect",
    "inspect_raw": "_inspect",
    "list_tags": "_inspect",
    "load_policy": "_policy",
    "parse_challenge": "_registry",
    "parse_digest": "_digest",
    "parse_platform": "_manifest",
    "parse_policy": "_policy",
    "parse_reference": "_reference",
    "pull": "_pull",
    "select_platform": "_manifest",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)


if TYPE_CHECKING:
    from podkit_image_pull._archive_list import archive_images
    from podkit_image_pull._auth import Credentials, lookup_credentials
    from podkit_image_pull._blobs import BlobStore
    from podkit_image_pull._digest import Digest, DigestHasher, digest_of, parse_digest
    from podkit_image_pull._inspect import inspect, inspect_raw, list_tags
    from podkit_image_pull._manifest import (
        Platform,
        host_platform,
        parse_platform,
        select_platform,
    )
    from podkit_image_pull._policy import Policy, load_policy, parse_policy
    from podkit_image_pull._pull import pull
    from podkit_image_pull._reference import ImageReference, parse_reference
    from podkit_image_pull._regconf import RegistriesConf, load_registries_conf
    from podkit_image_pull._registry import (
        Challenge,
        RegistryClient,
        parse_challenge,
    )
    from podkit_image_pull._retry import RetryPolicy
    from podkit_image_pull._source import BlobStream, ImageSource
