"""A fault-injecting HTTP proxy in front of a real registry, for retry and resume tests.

The executable meets a registry that fails the way real ones do, which neither
docker-registry nor an in-process MockTransport can show a subprocess::

    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault("status", match=digest, times=2, status=500))
        run(env, "--tls-verify=false", f"docker://{proxy.url}/busybox:oci")
        [r.status for r in proxy.requests(digest)]          # [500, 500, 200]

Faults (each applies to requests whose path contains ``match``, ``times`` times, or to
every one with ``times=None``; several may apply to one request):

    status     answer ``status`` (with ``headers``) instead of asking the registry
    reset      send ``after`` body bytes, then reset the connection (TCP RST)
    drop       send ``after`` body bytes, then close the connection (FIN) early
    stall      send ``after`` body bytes, then send nothing for ``seconds``
    corrupt    flip the first body byte (same size, wrong digest)
    digest     answer a wrong Docker-Content-Digest header
    serve      answer with what the registry has at ``path`` instead
    no-range   drop the Range header (a registry without range support answers 200)
    throttle   send the body at ``rate`` bytes per second

Bodies are streamed, never buffered whole, so multi-megabyte blobs pass at full speed
unless throttled. Every request is logged as a :class:`Record`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

KINDS = ("status", "reset", "drop", "stall", "corrupt", "digest", "serve", "no-range",
         "throttle")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
               "trailer", "upgrade"}
_CHUNK = 64 * 1024
#: A digest no content has: what the ``digest`` fault claims.
WRONG_DIGEST = "sha256:" + "0" * 64


@dataclass
class Fault:
    """One misbehaviour; see the module docstring for the kinds."""

    kind: str
    match: str = "/blobs/"
    times: int | None = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    seconds: float = 30.0
    rate: float = 0.0
    path: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(KINDS)}")


@dataclass
class Record:
    """One request as the proxy saw it and what it answered (so far: ``ended`` is 0.0
    while the answer is still being sent)."""

    method: str
    path: str
    range: str | None
    status: int = 0
    sent: int = 0
    faults: tuple[str, ...] = ()
    started: float = 0.0
    ended: float = 0.0


class FaultProxy:
    """Serve ``upstream`` ("127.0.0.1:PORT") on a new port of 127.0.0.1, with faults."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._faults: list[Fault] = []
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        #: The most blob bodies that were being sent at the same time.
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        """"127.0.0.1:PORT" of the proxy, as image references want it."""
        if self._server is None:
            raise RuntimeError("proxy not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, *faults: Fault) -> FaultProxy:
        with self._lock:
            self._faults.extend(faults)
        return self

    def clear(self) -> None:
        """Remove every fault (the log is kept)."""
        with self._lock:
            self._faults.clear()

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def requests(self, match: str, method: str = "GET") -> list[Record]:
        """The logged requests whose path contains ``match``, oldest first."""
        return [r for r in self.records if match in r.path and r.method == method]

    def start(self) -> FaultProxy:
        self._client = httpx.Client(base_url=f"http://{self.upstream}", trust_env=False,
                                    timeout=httpx.Timeout(60.0, connect=5.0))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fault-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends stalls early
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the proxy's side -----------------------------------------------------------

    def _take(self, path: str) -> dict[str, Fault]:
        """The faults that apply to one request (each use counts against ``times``)."""
        chosen: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.match not in path or fault.kind in chosen:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                chosen[fault.kind] = fault
        return chosen

    def _streaming(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._serve(self)

            def do_HEAD(self) -> None:
                proxy._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        faults = self._take(handler.path)
        record = Record(handler.command, handler.path, handler.headers.get("Range"),
                        faults=tuple(sorted(faults)), started=time.monotonic())
        with self._lock:
            self._records.append(record)  # logged at once: a stalled answer shows too
        try:
            if "status" in faults:
                self._answer_status(handler, faults["status"], record)
            else:
                self._forward(handler, faults, record)
        except OSError:
            handler.close_connection = True  # the client went away (killed, timed out)
        finally:
            record.ended = time.monotonic()

    def _answer_status(self, handler: BaseHTTPRequestHandler, fault: Fault,
                       record: Record) -> None:
        body = (b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault %d"}]}'
                % fault.status)
        handler.send_response(fault.status)
        for key, value in fault.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        record.status = fault.status
        if handler.command != "HEAD":
            handler.wfile.write(body)
            record.sent = len(body)

    def _forward(self, handler: BaseHTTPRequestHandler, faults: dict[str, Fault],
                 record: Record) -> None:
        assert self._client is not None
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
        if "no-range" in faults:
            headers = {k: v for k, v in headers.items() if k.lower() != "range"}
        path = faults["serve"].path if "serve" in faults else handler.path
        request = self._client.build_request(handler.command, path, headers=headers)
        resp = self._client.send(request, stream=True)
        try:
            self._relay(handler, resp, faults, record)
        finally:
            resp.close()

    def _relay(self, handler: BaseHTTPRequestHandler, resp: httpx.Response,
               faults: dict[str, Fault], record: Record) -> None:
        length = resp.headers.get("Content-Length")
        body_chunks = resp.iter_raw(_CHUNK)
        if length is None and handler.command != "HEAD":
            # Re-framed with a length, so a cut-off body is visible to the client.
            whole = b"".join(body_chunks)
            length, body_chunks = str(len(whole)), iter([whole])
        handler.send_response(resp.status_code)
        for key, value in resp.headers.multi_items():
            if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                continue
            if key.lower() == "docker-content-digest" and "digest" in faults:
                value = WRONG_DIGEST
            handler.send_header(key, value)
        if length is not None:
            handler.send_header("Content-Length", length)
        handler.end_headers()
        record.status = resp.status_code
        if handler.command == "HEAD":
            return
        blob = "/blobs/" in handler.path
        if blob:
            self._streaming(+1)
        try:
            self._send_body(handler, body_chunks, faults, record)
        finally:
            if blob:
                self._streaming(-1)

    def _send_body(self, handler: BaseHTTPRequestHandler, chunks, faults: dict[str, Fault],
                   record: Record) -> None:
        cut = faults.get("reset") or faults.get("drop") or faults.get("stall")
        throttle = faults.get("throttle")
        begun = time.monotonic()
        for chunk in chunks:
            if "corrupt" in faults and record.sent == 0 and chunk:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            if cut is not None and record.sent + len(chunk) >= cut.after:
                handler.wfile.write(chunk[:cut.after - record.sent])
                record.sent = cut.after
                self._cut(handler, cut)
                return
            handler.wfile.write(chunk)
            record.sent += len(chunk)
            if throttle is not None and throttle.rate > 0:
                ahead = record.sent / throttle.rate - (time.monotonic() - begun)
                if ahead > 0 and self._stopping.wait(ahead):
                    return

    def _cut(self, handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        handler.wfile.flush()
        handler.close_connection = True
        conn = handler.connection
        if fault.kind == "stall":
            self._stopping.wait(fault.seconds)
        elif fault.kind == "reset":
            # Let the client read what was sent, then reset: SO_LINGER 0 makes close an RST.
            self._stopping.wait(0.3)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            if fault.kind != "reset":
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
