"""A plain-HTTP proxy in front of a real registry that corrupts chosen blobs on the way.

It lets the executable itself meet a registry that serves wrong content, which neither
docker-registry nor an in-process MockTransport can show a subprocess.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "content-encoding"}


@contextmanager
def tampering_proxy(upstream: str, digests: set[str] | None = None) -> Iterator[str]:
    """Serve ``upstream`` ("127.0.0.1:PORT") on a new port; yield "127.0.0.1:NEWPORT".

    Blobs whose digest is in ``digests`` (every blob when ``digests`` is None) come back
    with their first byte flipped: same size, wrong digest.
    """
    client = httpx.Client(base_url=f"http://{upstream}", trust_env=False, timeout=30.0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "accept-encoding")}
            resp = client.request(self.command, self.path, headers=headers)
            body = resp.content
            blob = self.path.rsplit("/blobs/", 1)[-1] if "/blobs/" in self.path else None
            if blob and body and (digests is None or blob in digests):
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            self.send_response(resp.status_code)
            for key, value in resp.headers.items():
                if key.lower() not in _HOP_BY_HOP:
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
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        client.close()
        thread.join(5)
