"""Foreign (non-distributable) layers: blobs fetched from the URLs their descriptor lists.

Content that may not be redistributed (Windows base layers, licensed runtimes) is pushed
as a descriptor with ``urls`` and usually one of the media types

    application/vnd.docker.image.rootfs.foreign.diff.tar[.gzip]
    application/vnd.oci.image.layer.nondistributable.v1.tar[+gzip|+zstd]

whose blob the registry need not hold. Like containers/image (``getExternalBlob`` in
docker/docker_client.go), any descriptor with ``urls`` is fetched this way:

- the URLs are tried in order, before the registry; only ``http`` and ``https`` ones,
  others (``file:``, ``ftp:``, malformed) are skipped. Plain http is allowed, as in
  c/image: the blob store verifies the bytes against the descriptor's digest and size
  like any blob, so a URL host is never trusted with the content.
- nothing that authenticates to the registry goes to a URL host (CVE-2020-15157): no
  Authorization header, no cookie, no client certificate (the registry's certificate
  directory is not used), on every redirect too. https is checked with the URL host's
  own trust (certs.d for that host, else the system's), and not at all only where the
  registry's is not (``--tls-verify=false``), as c/image's shared HTTP client does.
- a URL answer is never read past the declared size: a Content-Length that disagrees
  with it is refused before reading (VerificationFailed), and the stream is cut there.

Two differences from c/image. When every usable URL fails, the registry's own blob
endpoint is asked (c/image fails the pull there); if the registry has no copy either,
the error names what the URLs answered. And a download cut off resumes with a Range
request to the URL, like a registry blob (c/image has no resume for external blobs); a
URL that ignores the range sends the whole blob and the store starts over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import httpx

from podkit_common.errors import NotFound, RemoteError, VerificationFailed
from podkit_image_pull._certs import tls_context
from podkit_image_pull._registry import _USER_AGENT, _is_loopback
from podkit_image_pull._resume import content_range_start, range_headers
from podkit_image_pull._retry import RETRYABLE_STATUS, RetryableError, parse_retry_after
from podkit_image_pull._source import BlobStream

if TYPE_CHECKING:
    from podkit_image_pull._registry import RegistryClient

#: A manifest listing more URLs than this for one blob gets only the first ones tried.
MAX_URLS = 16
MAX_REDIRECTS = 10
#: Stripped from every request to a URL host, whatever the httpx client would add.
_NEVER_SENT = ("Authorization", "Proxy-Authorization", "Cookie")


def usable_urls(urls: Sequence[str]) -> list[str]:
    """The http and https URLs of ``urls``, in order (at most :data:`MAX_URLS`)."""
    usable = []
    for url in urls:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            continue
        if parsed.scheme in ("http", "https") and parsed.host:
            usable.append(url)
    return usable[:MAX_URLS]


@contextmanager
def open_foreign_blob(registry: RegistryClient, repository: str, digest: str, size: int,
                      urls: Sequence[str], *, offset: int = 0) -> Iterator[BlobStream]:
    """Open ``digest`` (declared ``size`` bytes) from the first of ``urls`` that answers,
    else from the registry; from byte ``offset`` where the answer allows (``start``)."""
    report = registry.retry.report or (lambda line: None)
    failures: list[RemoteError] = []
    with ExitStack() as stack:
        for url in usable_urls(urls):
            try:
                stream = stack.enter_context(_open_url(registry, url, digest, size, offset))
            except RemoteError as exc:
                failures.append(exc)
                report(f"{exc.message}; trying the next source")
                continue
            yield stream
            return
        try:
            stream = stack.enter_context(registry.open_blob(repository, digest, offset=offset))
        except NotFound:
            if not failures:
                raise
            raise _all_failed(digest, failures) from None
        yield stream


def _all_failed(digest: str, failures: list[RemoteError]) -> RemoteError:
    kind = RetryableError if any(isinstance(f, RetryableError) for f in failures) \
        else RemoteError
    return kind(f"blob {digest}: none of the foreign layer's URLs served it and the "
                f"registry has no copy ({'; '.join(f.message for f in failures)})",
                hint="the layer's URLs must be reachable from here, or the blob pushed "
                     "to the registry")


@contextmanager
def _open_url(registry: RegistryClient, url: str, digest: str, size: int,
              offset: int) -> Iterator[BlobStream]:
    what = f"blob {digest} from {url}"
    with ExitStack() as stack:
        client = registry.given_client
        if client is None:
            client = stack.enter_context(_client_for(url, registry))
        resp = _get(client, url, {"Accept-Encoding": "identity", **range_headers(offset)},
                    what)
        stack.callback(resp.close)
        start = 0
        if resp.status_code == 206 and offset > 0:
            start = content_range_start(resp.headers.get("Content-Range"), offset, what)
        elif resp.status_code != 200:
            raise _status_error(resp, what)
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != size - start:
            raise VerificationFailed(f"{what}: the answer has {int(length)} bytes from byte "
                                     f"{start}, the manifest declares {size} in all")
        yield BlobStream(size - start, _capped(_chunks(resp, what), size - start, what), start)


def _client_for(url: str, registry: RegistryClient) -> httpx.Client:
    """A client for one URL host, sharing nothing with the registry's (certificates,
    cookies, connections)."""
    parsed = httpx.URL(url)
    host = parsed.netloc.decode("ascii")
    verify = tls_context(host, tls_verify=registry.tls_verify) \
        if parsed.scheme == "https" else True
    # Like Go's net/http (so podman), never send loopback traffic to a proxy.
    direct = {f"all://{host}": None} if _is_loopback(host) else None
    timeout = httpx.Timeout(registry.retry.stall_timeout,
                            connect=registry.retry.connect_timeout)
    return httpx.Client(verify=verify, timeout=timeout, mounts=direct,
                        headers={"User-Agent": _USER_AGENT})


def _get(client: httpx.Client, url: str, headers: dict[str, str],
         what: str) -> httpx.Response:
    """GET ``url``, following redirects here so that every hop is stripped of credentials."""
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, headers=headers)
        for name in _NEVER_SENT:
            request.headers.pop(name, None)
        try:
            resp = client.send(request, stream=True, follow_redirects=False)
        except httpx.TransportError as exc:
            raise _transport_error(exc, what) from None
        if not resp.is_redirect:
            return resp
        resp.close()
        target = resp.url.join(resp.headers["Location"])
        if target.scheme not in ("http", "https"):
            raise RemoteError(f"{what}: redirected to {str(target)!r}, which is not http(s)")
        url = str(target)
    raise RemoteError(f"{what}: more than {MAX_REDIRECTS} redirects")


def _status_error(resp: httpx.Response, what: str) -> RemoteError:
    status = resp.status_code
    if status in RETRYABLE_STATUS:
        return RetryableError(f"{what}: HTTP {status} {resp.reason_phrase}",
                              retry_after=parse_retry_after(resp.headers.get("Retry-After")))
    return RemoteError(f"{what}: HTTP {status} {resp.reason_phrase}")


def _transport_error(exc: httpx.TransportError, what: str) -> RemoteError:
    text = str(exc) or type(exc).__name__
    # A timeout or a connection dropped mid-answer: worth another attempt (resumed).
    broken = isinstance(exc, httpx.TimeoutException | httpx.ReadError | httpx.WriteError
                        | httpx.RemoteProtocolError)
    return (RetryableError if broken else RemoteError)(f"{what}: {type(exc).__name__}: {text}")


def _chunks(resp: httpx.Response, what: str) -> Iterator[bytes]:
    try:
        yield from resp.iter_bytes()
    except httpx.TransportError as exc:
        raise _transport_error(exc, f"download {what}") from None


def _capped(chunks: Iterator[bytes], limit: int, what: str) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > limit:
            raise VerificationFailed(f"{what}: more than the {limit} bytes declared")
        yield chunk
