"""A registry repository's tags: ``GET /v2/<name>/tags/list``, page by page.

Registries cut long lists into pages and name the next one in a ``Link`` header
(``</v2/busybox/tags/list?last=b&n=2>; rel="next"``, RFC 8288). The next page must be on
the same registry: a ``Link`` elsewhere is refused rather than followed, so the bearer
token for this registry is never sent to another host.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx

from podkit_common import jsonio
from podkit_common.errors import InvalidDocument, RemoteError, VerificationFailed
from podkit_image_pull._reference import check_repository

if TYPE_CHECKING:
    from podkit_image_pull._registry import RegistryClient

#: A tags/list page is read into memory; refuse one bigger than this.
MAX_TAGS_PAGE_BYTES = 8 * 1024 * 1024
#: The most pages followed (a registry whose ``Link`` loops would never end).
MAX_TAG_PAGES = 10_000

_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^,;]*)*)")
_REL_NEXT_RE = re.compile(r';\s*rel\s*=\s*"?([^";]*)"?')


def next_link(header: str | None) -> str | None:
    """The target of the ``rel="next"`` link in a ``Link`` header, or None."""
    if not header:
        return None
    for match in _LINK_RE.finditer(header):
        for rel in _REL_NEXT_RE.findall(match.group(2)):
            if "next" in rel.split():
                return match.group(1).strip()
    return None


def list_registry_tags(client: RegistryClient, repository: str,
                       page_size: int | None = None) -> list[str]:
    """Every tag of ``repository``, in the registry's order, following ``Link`` pages."""
    from podkit_image_pull._registry import _read_limited

    check_repository(repository)
    what = f"list tags of {client.registry}/{repository}"
    base = client.ping()
    url = httpx.URL(f"{base}/v2/{repository}/tags/list")
    if page_size is not None:
        url = url.copy_merge_params({"n": str(page_size)})
    tags: list[str] = []
    seen: set[str] = set()
    for _ in range(MAX_TAG_PAGES):
        seen.add(str(url))
        # _send is the client's authenticated request (token renewal on a 401 included).
        with client._send("GET", str(url), repository, what, {"Accept": "application/json"}) \
                as resp:
            if resp.status_code != 200:
                raise client._status_error(resp, what)
            body = _read_limited(resp, MAX_TAGS_PAGE_BYTES, what)
            link = next_link(resp.headers.get("Link"))
        tags += _page_tags(body, what)
        if link is None:
            return tags
        following = url.join(link)
        if (following.scheme, following.host, following.port) != (url.scheme, url.host,
                                                                    url.port):
            raise RemoteError(f"{what}: the registry links the next page to another host "
                              f"({following.scheme}://{following.netloc.decode()}); "
                              "not following it")
        if str(following) in seen:
            raise RemoteError(f"{what}: the registry's Link header loops back to {following}")
        url = following
    raise RemoteError(f"{what}: more than {MAX_TAG_PAGES} pages; giving up")


def _page_tags(body: bytes, what: str) -> list[str]:
    try:
        doc = jsonio.loads(body)
    except InvalidDocument:
        raise VerificationFailed(f"{what}: the registry's answer is not JSON") from None
    if not isinstance(doc, dict):
        raise VerificationFailed(f"{what}: the registry's answer is not a JSON object")
    tags = doc.get("tags")
    if tags is None:  # an empty repository answers "tags": null
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise VerificationFailed(f"{what}: 'tags' is not a list of strings")
    return tags
