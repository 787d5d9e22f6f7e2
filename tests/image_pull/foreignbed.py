"""Images with a foreign (non-distributable) layer, and the web server its URLs point at.

    with BlobHost() as host:
        image = foreign_image(FOREIGN_GZIP, [host.url("/layer")], marker="test-1")
        host.serve("/layer", image.layers[1].data)
        push_without_foreign(registry.url, "foreign/one", "v1", image)

The image has two layers: busybox's base layer (pushed as usual) and a small marker
layer declared foreign, whose blob the registry never gets unless a test pushes it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.testbed import layers as L
from tests.testbed.images import (
    BuiltImage,
    Layer,
    host_platform,
    make_config,
    make_layer,
    sha256_digest,
)
from tests.testbed.push import push_blob, push_manifest

FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#: Foreign and non-distributable layer media types -> (manifest format, compression).
FOREIGN_TYPES = {
    FOREIGN_GZIP: ("docker", "gzip"),
    "application/vnd.docker.image.rootfs.foreign.diff.tar": ("docker", "none"),
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": ("oci", "gzip"),
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": ("oci", "zstd"),
    "application/vnd.oci.image.layer.nondistributable.v1.tar": ("oci", "none"),
}
_MANIFEST = {"docker": ("application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.container.image.v1+json"),
             "oci": ("application/vnd.oci.image.manifest.v1+json",
                     "application/vnd.oci.image.config.v1+json")}


def foreign_image(media_type: str, urls: Sequence[str], *, marker: str) -> BuiltImage:
    """busybox's base layer plus a foreign layer holding ``marker`` (make it unique per
    test), declared with ``media_type`` and ``urls``."""
    fmt, compression = FOREIGN_TYPES[media_type]
    base = make_layer(L.base_layer_tar(), "oci" if fmt == "oci" else "docker", "gzip")
    top = make_layer(L.platform_marker_tar(marker), "oci", compression)
    top = replace(top, media_type=media_type)
    config = json.dumps(make_config([base.diff_id, top.diff_id]), indent=3).encode()
    manifest_type, config_type = _MANIFEST[fmt]
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "size": len(config),
                   "digest": sha256_digest(config)},
        "layers": [base.descriptor(), {**top.descriptor(), "urls": list(urls)}],
    }, indent=3).encode()
    return BuiltImage(manifest, manifest_type, sha256_digest(manifest), config,
                      sha256_digest(config), config_type, [base, top], host_platform())


def foreign_layer(image: BuiltImage) -> Layer:
    return image.layers[-1]


def push_without_foreign(registry_url: str, repository: str, tag: str, image: BuiltImage,
                         *, with_foreign: bool = False) -> None:
    """Push ``image`` to the registry, its foreign layer's blob only if ``with_foreign``."""
    skip = None if with_foreign else foreign_layer(image).digest
    base = f"http://{registry_url}"
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        for digest, data in image.blobs.items():
            if digest != skip:
                push_blob(client, base, repository, digest, data)
        push_manifest(client, base, repository, tag, image.manifest,
                      image.manifest_media_type, image.manifest_digest)


@dataclass
class Seen:
    """One request the host answered."""

    path: str
    headers: dict[str, str]
    status: int


@dataclass
class BlobHost:
    """A plain-HTTP server on 127.0.0.1 serving bytes by path, with Range support.

    Paths not served answer 404; ``status[path]`` answers that status instead. Started
    and stopped (shutdown, joined) by the context manager.
    """

    content: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def serve(self, path: str, data: bytes) -> None:
        self.content[path] = data

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def __enter__(self) -> BlobHost:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="blob-host")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        data = self.content.get(path)
        status = self.status.get(path, 200 if data is not None else 404)
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        if status == 200 and data is not None and wanted and int(wanted[1]) < len(data):
            status, start = 206, int(wanted[1])
        self.seen.append(Seen(path, dict(handler.headers.items()), status))
        body = data[start:] if status in (200, 206) and data is not None else b"no\n"
        handler.send_response(status)
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
