"""A plain-HTTP proxy in front of a real registry that pages its tag lists.

Debian's docker-registry (distribution 2.8) answers ``/v2/<name>/tags/list`` in one
piece whatever ``n`` says; registries such as distribution 3, GHCR or Quay cut long lists
and name the next page in a ``Link`` header. This proxy does what they do, so the
executable and skopeo both meet pagination on the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "content-encoding"}


@dataclass
class PagingProxy:
    """Where the proxy listens, and the tag-list requests it answered."""

    url: str
    tag_requests: list[str] = field(default_factory=list)


@contextmanager
def paging_proxy(upstream: str, page_size: int = 2) -> Iterator[PagingProxy]:
    """Serve ``upstream`` ("127.0.0.1:PORT") on a new port, tag lists ``page_size`` (or the
    client's smaller ``n``) at a time with ``Link: <...?last=T&n=N>; rel="next"``."""
    client = httpx.Client(base_url=f"http://{upstream}", trust_env=False, timeout=30.0)
    state = PagingProxy("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.endswith("/tags/list"):
                state.tag_requests.append(self.path)
                self._tags_page(parts.path, parse_qs(parts.query))
                return
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "accept-encoding")}
            resp = client.request("GET", self.path, headers=headers)
            self._answer(resp.status_code, resp.content,
                         [(k, v) for k, v in resp.headers.items()
                          if k.lower() not in _HOP_BY_HOP])

        def _tags_page(self, path: str, query: dict[str, list[str]]) -> None:
            resp = client.get(path)
            if resp.status_code != 200:
                self._answer(resp.status_code, resp.content,
                             [("Content-Type", "application/json")])
                return
            full = resp.json()
            tags = full.get("tags") or []
            size = min(page_size, int(query.get("n", [page_size])[0]))
            last = query.get("last", [None])[0]
            start = tags.index(last) + 1 if last in tags else 0
            page = tags[start:start + size]
            headers = [("Content-Type", "application/json")]
            if start + size < len(tags):
                following = urlencode({"last": page[-1], "n": size})
                headers.append(("Link", f'<{path}?{following}>; rel="next"'))
            body = json.dumps({"name": full.get("name"), "tags": page}).encode()
            self._answer(200, body, headers)

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        client.close()
        thread.join(5)
