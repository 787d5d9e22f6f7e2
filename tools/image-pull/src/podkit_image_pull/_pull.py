"""Pull one image from a registry into the blob store and describe it as a JSON document.

Order of work, so a pull killed at any point leaves only verified blobs behind and the
manifest (the blob that names all others) is stored only once everything it names is:

    resolve the reference            (no network; a malformed reference fails here)
    fetch the manifest or index      (select the platform child, fetch it by digest)
    fetch the config, check it       (len(layers) == len(rootfs.diff_ids))
    fetch the layers in parallel     (blobs already present are skipped)
    store the manifest, then the index

A pull that fails for want of space gives back every blob it wrote (a full disk is no
place to keep a download for later); one that fails otherwise keeps its verified blobs
and partial download for the next pull to resume.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from podkit_common.errors import RemoteError, ResourceExhausted, VerificationFailed
from podkit_common.progress import NULL, Progress
from podkit_common.records import replace
from podkit_image_pull._blobs import BlobStore
from podkit_image_pull._manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    Platform,
    check_image_config,
    diff_ids_of,
    host_platform,
    image_platform,
    parse_json_object,
    parse_manifest,
    parse_platform,
)
from podkit_image_pull._reference import ImageReference, parse_reference
from podkit_image_pull._retry import RetryPolicy
from podkit_image_pull._source import (
    BlobStream,
    RegistrySource,
    choose_manifest,
    open_local_source,
)
from podkit_image_pull._trust import TrustCheck, load_trust

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._auth import CredentialsLike
    from podkit_image_pull._registry import RegistryClient
    from podkit_image_pull._source import ImageSource

#: How many blobs download at once (containers/image's default too).
PARALLEL_BLOBS = 6


class _Cancelled(Exception):
    """Another download of the same pull failed; this one stops and cleans up."""


def pull(reference: str, *, root: str | os.PathLike[str], tls_verify: bool | None = None,
         platform: str | None = None, client: httpx.Client | None = None,
         progress: Progress | None = None, max_workers: int = PARALLEL_BLOBS,
         retry: RetryPolicy | None = None, signature_policy: str | os.PathLike[str] | None = None,
         registries_d: str | os.PathLike[str] | None = None,
         credentials: CredentialsLike | str = None, authfile: str | os.PathLike[str] | None = None,
         cert_dir: str | os.PathLike[str] | None = None,
         registries_conf: str | os.PathLike[str] | None = None,
         registries_conf_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Pull ``reference`` into ``<root>/blobs`` and return ``{"changed", "image"}``.

    ``platform`` is ``os/arch[/variant]`` (default: this machine) and picks the child of a
    manifest list or OCI index. ``client`` replaces the httpx client (tests pass one
    with a MockTransport). The reference and platform are checked before any request.
    ``max_workers`` blobs download at once; ``retry`` (default ``RetryPolicy()``) says how
    failed requests are retried and when a stalled connection times out; an interrupted
    blob download resumes where it stopped, in this pull or the next one.
    ``signature_policy`` is podman's ``--signature-policy`` (default: podman's policy.json)
    and ``registries_d`` the registries.d directory; a rejected image stores nothing.
    ``tls_verify`` None follows registries.conf; ``credentials`` ("USER:PASS" or a pair),
    ``authfile``, ``cert_dir``, ``registries_conf[_dir]`` are podman's ``--creds``,
    ``--authfile``, ``--cert-dir``, ``--registries-conf[-dir]`` (see _auth, _resolve).
    See ``schemas/image.json`` for the document.
    """
    from podkit_image_pull._resolve import pull_from_registries

    retry = (retry or RetryPolicy()).reporting_to((progress or NULL).message)
    ref = parse_reference(reference)
    want = parse_platform(platform) if platform is not None else host_platform()
    store = BlobStore(os.path.abspath(root))
    store.cleanup_temp()
    trust = load_trust(signature_policy, registries_d, tls_verify=tls_verify is not False,
                       client=client)
    if ref.transport != "docker":
        with closing(open_local_source(ref)) as local:
            return _Pull(ref, store, local, want, progress or NULL, max_workers, retry,
                         trust=trust).run()

    def from_registry(ref: ImageReference, registry: RegistryClient, repository: str) -> Any:
        source = RegistrySource(registry, repository, ref.remote_ref)
        return _Pull(ref, store, source, want, progress or NULL, max_workers, retry,
                     trust=trust).run()

    # registries.conf: short names, aliases, mirrors, blocked and insecure registries.
    return pull_from_registries(
        reference, ref, from_registry, tls_verify=tls_verify, credentials=credentials,
        authfile=authfile, cert_dir=cert_dir, registries_conf=registries_conf,
        registries_conf_dir=registries_conf_dir, client_options={"client": client, "retry": retry},
        note=(progress or NULL).message)


class _Pull:
    """The state of one pull; ``run`` does it."""

    def __init__(self, ref: ImageReference, store: BlobStore, source: ImageSource,
                 want: Platform, progress: Progress, max_workers: int,
                 retry: RetryPolicy | None = None, *, trust: TrustCheck | None = None) -> None:
        self.trust = trust
        self.retry = retry
        self.ref = ref
        self.store = store
        self.source = source
        self.want = want
        self.progress = progress
        self.max_workers = max(1, max_workers)
        self.cancel = threading.Event()
        #: The digests this pull stored (not those it found present).
        self.written: list[str] = []
        if retry is not None:  # a blob waiting to retry stops once another failed the pull
            self.retry = replace(retry, sleep=self._wait_unless_cancelled)

    def _wait_unless_cancelled(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise _Cancelled("cancelled while waiting to retry")

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except ResourceExhausted:
            self._give_back()
            raise

    def _give_back(self) -> None:
        """Remove the blobs this pull stored: the disk filled, the pull gave up."""
        for digest in reversed(self.written):   # the manifest first: it names the others
            self.store.discard(digest)

    def _put(self, digest: str, body: bytes) -> bool:
        written = self.store.put_bytes(digest, body)
        if written:
            self.written.append(digest)
        return written

    def _run(self) -> dict[str, Any]:
        ref = self.ref
        chosen = choose_manifest(self.source, self.want)
        body, digest, media_type, doc = chosen.body, chosen.digest, chosen.media_type, chosen.doc
        index = (chosen.top, chosen.top_digest) if chosen.index_digest is not None else None

        # The trust policy: the manifest digest is known, nothing is stored yet.
        trust = self.trust.check(ref, digest, body, self.source) if self.trust else None
        config_desc, layers = parse_manifest(doc)
        check_image_config(config_desc)
        changed = False
        config, written = self._config(config_desc)
        changed |= written
        diff_ids = diff_ids_of(config)
        if len(diff_ids) != len(layers):
            raise VerificationFailed(
                f"image {ref.name}: the manifest lists {len(layers)} layers but the config "
                f"has {len(diff_ids)} diff_ids", hint="the image is broken; push it again")
        found_platform = self._platform(config, chosen.entry_platform)

        changed |= self._layers(layers)
        # Metadata last: a stored manifest promises that everything it names is stored.
        changed |= self._put(digest, body)
        if index is not None:
            changed |= self._put(index[1], index[0])
        # A blob found present may have been given back since by a concurrent pull that
        # ran out of space: fetch what went missing, once, so the promise holds.
        gone = [d for d in (config_desc, *layers) if not self.store.has(d.digest)]
        if gone:
            changed |= self._layers(gone)
            changed |= self._put(digest, body)
        from podkit_common.events import record

        record(self.store.root, "image", "pull", id=config_desc.digest.split(":", 1)[1],
               name=ref.name)
        return {"changed": changed, "image": {
            **ref.as_dict(),
            **self.source.describe(),
            **({"trust": trust} if trust is not None else {}),
            "digest": digest,
            "index_digest": index[1] if index is not None else None,
            "media_type": media_type,
            "id": config_desc.digest.split(":", 1)[1],
            "config_digest": config_desc.digest,
            "root": str(self.store.root),
            "platform": found_platform.as_dict(),
            "manifest_path": str(self.store.path(digest)),
            "config_path": str(self.store.path(config_desc.digest)),
            "config": config,
            "layers": [{"digest": layer.digest, "size": layer.size,
                        "media_type": layer.media_type, "diff_id": diff_id,
                        "path": str(self.store.path(layer.digest))}
                       for layer, diff_id in zip(layers, diff_ids, strict=True)],
        }}

    def _config(self, desc: Descriptor) -> tuple[dict[str, Any], bool]:
        if desc.size > MAX_CONFIG_BYTES:
            raise RemoteError(f"config {desc.digest}: {desc.size} bytes is more than the "
                              f"{MAX_CONFIG_BYTES} a config may have")
        written = self._fetch(desc)
        path = self.store.path(desc.digest)
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        return parse_json_object(data, f"image config {desc.digest}"), written

    def _platform(self, config: dict[str, Any], entry: Platform | None) -> Platform:
        found = image_platform(config, entry)
        if (found.os, found.architecture) != (self.want.os, self.want.architecture):
            self.progress.message(f"warning: image platform {found} does not match the "
                                  f"expected platform {self.want}")
        return found

    def _layers(self, layers: list[Descriptor]) -> bool:
        unique = list({layer.digest: layer for layer in layers}.values())
        if not unique:
            return False
        changed = False
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(unique)),
                                thread_name_prefix="pull-blob") as pool:
            futures = [pool.submit(self._fetch, layer) for layer in unique]
            try:
                for future in as_completed(futures):
                    changed |= future.result()
            except BaseException:
                # Stop the other downloads at their next chunk; each removes its temp file.
                self.cancel.set()
                for future in futures:
                    future.cancel()
                raise
        return changed

    def _fetch(self, desc: Descriptor) -> bool:
        task: list[Any] = []  # one progress task for all attempts, made by the first
        try:
            written = self.store.ensure_resumable(
                desc.digest, desc.size, lambda offset: self._download(desc, offset, task),
                retry=self.retry)
        finally:
            for t in task:
                t.finish()
        if written:
            self.written.append(desc.digest)
        else:
            self.progress.message(f"blob {_short(desc.digest)} already present, skipped")
        return written

    @contextmanager
    def _download(self, desc: Descriptor, offset: int, task: list[Any]) -> Iterator[BlobStream]:
        if not task:
            task.append(self.progress.task(f"blob {_short(desc.digest)}", total=desc.size))
        # Only a registry serves ranges (and a foreign layer's URLs, see _foreign); from
        # any other source the store starts over.
        if isinstance(self.source, RegistrySource):
            opened = self.source.open_blob(desc.digest, offset=offset, urls=desc.urls,
                                           size=desc.size)
        else:
            opened = self.source.open_blob(desc.digest)
        with opened as blob:
            start = getattr(blob, "start", 0)
            task[0].seek(start)
            yield BlobStream(blob.size, self._counted(blob.chunks, task[0]), start)

    def _counted(self, chunks: Iterator[bytes], task: Any) -> Iterator[bytes]:
        for chunk in chunks:
            if self.cancel.is_set():
                raise _Cancelled(f"blob {task.name}: cancelled")
            task.advance(len(chunk))
            yield chunk


def _short(digest: str) -> str:
    algorithm, hexpart = digest.split(":", 1)
    return f"{algorithm}:{hexpart[:12]}"

