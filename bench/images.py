"""The benchmark images, built with the test bed and pushed to the local registry.

- small: the test bed's one-layer busybox image (docker v2s2, gzip).
- large: the busybox base layer plus four layers of files taken from this machine
  (/usr/share, /usr/lib, /usr/bin, …): at least 500 MB uncompressed and 30,000 files.
  It is written straight to gzip files on disk (never held in memory) and cached under
  /var/tmp/podkit-bench/images/, keyed by the builder's parameters, so later runs reuse
  the very same image; blobs are pushed streamed from those files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urljoin

import httpx

from tests.testbed import images as tb_images
from tests.testbed import layers as tb_layers
from tests.testbed.push import PushError, push, push_manifest

SMALL = ("bench/busybox", "latest")
LARGE = ("bench/large", "latest")

#: Where the large image's files come from, walked in this order (sorted inside).
LARGE_ROOTS = ("/usr/share", "/usr/lib", "/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/include")
#: Files larger than this are skipped (one huge library would dominate a layer).
MAX_FILE = 16 << 20
#: Selection stops once both targets are reached (whichever comes later).
TARGET_BYTES = 576 << 20
TARGET_FILES = 36_000
#: The issue's floor; the build fails loudly below it.
MIN_UNCOMPRESSED = 500_000_000
MIN_FILES = 30_000
HOST_LAYERS = 4
#: Bump when the layout of the built image changes, to invalidate caches.
BUILDER_VERSION = 1
_COPY_BUF = 1 << 20


@dataclass(frozen=True)
class BenchImage:
    """An image pushed for the bench: where it is and what it holds."""

    label: str  # "small" | "large"
    repository: str
    tag: str
    digest: str  # manifest digest the registry reported
    layers: int
    files: int  # regular files over all layers
    entries: int  # tar entries (files, dirs, symlinks) over all layers
    uncompressed_bytes: int  # sum of the layer tars
    compressed_bytes: int  # sum of the layer blobs
    build_seconds: float = 0.0  # 0 when it came from the cache
    cached: bool = False
    blobs: tuple[str, ...] = ()  # digests of the config and layer blobs

    def ref(self, registry_url: str) -> str:
        """"127.0.0.1:PORT/repo:tag", the reference both tools pull."""
        return f"{registry_url}/{self.repository}:{self.tag}"

    def as_json(self) -> dict[str, Any]:
        """Plain data for the results file."""
        return asdict(self)


# ---------------------------------------------------------------- selection


@dataclass(frozen=True)
class Entry:
    """One file or symlink of the host chosen for the large image."""

    path: str  # absolute host path = image path
    kind: str  # "f" (regular file) or "l" (symlink)
    size: int
    mode: int
    mtime_ns: int
    link: str = ""


def _walk(root: str) -> Iterator[Entry]:
    """Regular files (≤ MAX_FILE) and symlinks under root in sorted order, no __pycache__."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        names = sorted(filenames + links)
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                if st.st_size <= MAX_FILE and os.access(path, os.R_OK):
                    yield Entry(path, "f", st.st_size, st.st_mode & 0o777, st.st_mtime_ns)
            elif stat.S_ISLNK(st.st_mode):
                yield Entry(path, "l", 0, 0o777, st.st_mtime_ns, os.readlink(path))


def select_entries() -> list[Entry]:
    """The host files for the large image: deterministic for an unchanged machine."""
    chosen: list[Entry] = []
    nbytes = nfiles = 0
    for root in LARGE_ROOTS:
        if not os.path.isdir(root) or os.path.islink(root):
            continue
        for entry in _walk(root):
            chosen.append(entry)
            if entry.kind == "f":
                nbytes += entry.size
                nfiles += 1
            if nbytes >= TARGET_BYTES and nfiles >= TARGET_FILES:
                return chosen
    if nbytes < MIN_UNCOMPRESSED or nfiles < MIN_FILES:
        raise RuntimeError(
            f"this machine has only {nfiles} files / {nbytes >> 20} MiB under "
            f"{', '.join(LARGE_ROOTS)}; the large image needs ≥ {MIN_FILES} files and "
            f"≥ {MIN_UNCOMPRESSED // 1_000_000} MB")
    return chosen


def split_layers(entries: Sequence[Entry], parts: int = HOST_LAYERS) -> list[list[Entry]]:
    """Cut the ordered entries into `parts` layers of about equal file bytes."""
    total = sum(e.size for e in entries)
    out: list[list[Entry]] = [[] for _ in range(parts)]
    acc = 0
    for entry in entries:
        idx = min(parts - 1, acc * parts // max(total, 1))
        out[idx].append(entry)
        acc += entry.size
    return [part for part in out if part]


def listing_hash(entries: Sequence[Entry]) -> str:
    """A hash of the chosen host files (paths, sizes, mtimes, modes, link targets)."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.path}\0{e.kind}\0{e.size}\0{e.mode}\0{e.mtime_ns}\0{e.link}\n".encode(
            "utf-8", "surrogateescape"))
    return h.hexdigest()


# ---------------------------------------------------------------- writing layers


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through to `raw`."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = tb_layers.EPOCH
    return info


def write_layer(entries: Sequence[Entry], out_path: str) -> dict[str, Any]:
    """Write one gzip layer blob to out_path; return its digests, sizes and counts.

    Runs in a worker process. Parent directories are added (root-owned, 0755) before
    their first entry; every entry carries the test bed's fixed mtime and uid/gid 0.
    """
    dirs: set[str] = set()
    files = count = 0
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as raw:
        blob = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=6, mtime=0) as gz:
            tar_stream = _HashingWriter(gz)
            with tarfile.open(fileobj=tar_stream, mode="w",
                              format=tarfile.PAX_FORMAT) as tf:
                tf.copybufsize = _COPY_BUF
                for e in entries:
                    name = str(PurePosixPath(e.path).relative_to("/"))
                    for parent in reversed(PurePosixPath(name).parents[:-1]):
                        if str(parent) not in dirs:
                            dirs.add(str(parent))
                            tf.addfile(_tarinfo(str(parent), tarfile.DIRTYPE, 0o755))
                            count += 1
                    if e.kind == "l":
                        tf.addfile(_tarinfo(name, tarfile.SYMTYPE, 0o777, link=e.link))
                    else:
                        with open(e.path, "rb") as src:
                            tf.addfile(_tarinfo(name, tarfile.REGTYPE, e.mode, e.size), src)
                        files += 1
                    count += 1
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, out_path)
    return {"diff_id": "sha256:" + tar_stream.sha.hexdigest(), "tar_size": tar_stream.size,
            "digest": "sha256:" + blob.sha.hexdigest(), "size": blob.size,
            "files": files, "entries": count}


def _base_layer_record(out_path: Path) -> dict[str, Any]:
    """The test bed's busybox base layer as a gzip blob file (so the image runs sh)."""
    tar = tb_layers.base_layer_tar()
    layer = tb_images.make_layer(tar, "docker", "gzip")
    out_path.write_bytes(layer.data)
    files, entries = _tar_counts(tar)
    return {"diff_id": layer.diff_id, "tar_size": len(tar), "digest": layer.digest,
            "size": layer.size, "files": files, "entries": entries}


def _tar_counts(tar: bytes) -> tuple[int, int]:
    """(regular files, entries) of an in-memory tarball."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        members = tf.getmembers()
    return sum(1 for m in members if m.isfile()), len(members)


def _log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LargeBuild:
    """The large image on disk: its directory, meta.json, build time, whether reused."""

    dir: Path
    meta: dict[str, Any]
    seconds: float
    cached: bool


def build_params() -> str:
    """A short hash of the builder's parameters: the cache key of the large image."""
    params = [BUILDER_VERSION, LARGE_ROOTS, MAX_FILE, TARGET_BYTES, TARGET_FILES, HOST_LAYERS,
              tb_images.sha256_digest(tb_layers.base_layer_tar())]
    return hashlib.sha256(json.dumps(params).encode()).hexdigest()[:16]


def build_large(cache_root: Path) -> LargeBuild:
    """Build (or reuse) the large image under cache_root/large-<params>/.

    Once built, the image is reused as it is, even if the machine's files change later
    (apt installs touch /usr/share): runs on different days then measure the same
    image. meta.json (written last, so its presence means "complete") records the hash
    of the host file list that went in; delete the directory to rebuild from the
    machine's current files.
    """
    t0 = time.monotonic()
    target = cache_root / f"large-{build_params()}"
    meta_path = target / "meta.json"
    if meta_path.is_file():
        return LargeBuild(target, json.loads(meta_path.read_text()), time.monotonic() - t0, True)
    entries = select_entries()
    for old in cache_root.glob("large-*"):
        shutil.rmtree(old, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    parts = split_layers(entries)
    _log(f"building the large image from {len(entries)} host entries in {len(parts)}+1 "
         f"layers (once; cached in {target})")
    records = [_base_layer_record(target / "layer-0.tar.gz")]
    with ProcessPoolExecutor(max_workers=min(len(parts), os.cpu_count() or 1)) as pool:
        futures = [pool.submit(write_layer, part, str(target / f"layer-{i + 1}.tar.gz"))
                   for i, part in enumerate(parts)]
        records.extend(f.result() for f in futures)
    for i, rec in enumerate(records):
        rec["file"] = f"layer-{i}.tar.gz"
    config = json.dumps(tb_images.make_config(
        [r["diff_id"] for r in records],
        history=["podkit testbed busybox base"] + [f"host files, part {i + 1}"
                                                    for i in range(len(parts))],
    ), indent=3).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": tb_images.DOCKER_MANIFEST,
        "config": {"mediaType": tb_images.DOCKER_CONFIG, "size": len(config),
                   "digest": tb_images.sha256_digest(config)},
        "layers": [{"mediaType": tb_images.DOCKER_LAYER_GZIP, "size": r["size"],
                    "digest": r["digest"]} for r in records],
    }, indent=3).encode()
    (target / "config.json").write_bytes(config)
    (target / "manifest.json").write_bytes(manifest)
    meta = {"params": build_params(), "host_files_hash": listing_hash(entries),
            "roots": list(LARGE_ROOTS), "layers": records,
            "files": sum(r["files"] for r in records),
            "entries": sum(r["entries"] for r in records),
            "uncompressed_bytes": sum(r["tar_size"] for r in records),
            "compressed_bytes": sum(r["size"] for r in records),
            "config_digest": tb_images.sha256_digest(config),
            "manifest_digest": tb_images.sha256_digest(manifest)}
    if meta["uncompressed_bytes"] < MIN_UNCOMPRESSED or meta["files"] < MIN_FILES:
        raise RuntimeError(f"large image too small: {meta['files']} files, "
                           f"{meta['uncompressed_bytes']} bytes")
    tmp = target / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(meta_path)
    return LargeBuild(target, meta, time.monotonic() - t0, False)


# ---------------------------------------------------------------- pushing


def _client() -> httpx.Client:
    # trust_env=False: a proxy from the environment must never see 127.0.0.1 traffic.
    return httpx.Client(timeout=300.0, trust_env=False)


def push_blob_file(client: httpx.Client, base: str, repository: str, digest: str,
                   path: Path) -> bool:
    """Upload one blob streamed from a file unless the registry has it; True if uploaded."""
    if client.head(f"{base}/v2/{repository}/blobs/{digest}").status_code == 200:
        return False
    start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    if start.status_code != 202:
        raise PushError(f"start upload of {digest}: {start.status_code} {start.text[:300]}")
    location = urljoin(f"{base}/", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    with open(path, "rb") as fh:
        put = client.put(f"{location}{sep}digest={digest}", content=_chunks(fh),
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(path.stat().st_size)})
    if put.status_code != 201:
        raise PushError(f"upload of {digest}: {put.status_code} {put.text[:300]}")
    return True


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(_COPY_BUF):
        yield chunk


def push_large(registry_url: str, build: LargeBuild) -> BenchImage:
    """Push the built large image (blobs streamed from the cache files)."""
    target, meta = build.dir, build.meta
    base = f"http://{registry_url}"
    repo, tag = LARGE
    with _client() as client:
        for rec in meta["layers"]:
            push_blob_file(client, base, repo, rec["digest"], target / rec["file"])
        push_blob_file(client, base, repo, meta["config_digest"], target / "config.json")
        digest = push_manifest(client, base, repo, tag, (target / "manifest.json").read_bytes(),
                               tb_images.DOCKER_MANIFEST, meta["manifest_digest"])
    return BenchImage("large", repo, tag, digest, len(meta["layers"]), meta["files"],
                      meta["entries"], meta["uncompressed_bytes"], meta["compressed_bytes"],
                      0.0 if build.cached else round(build.seconds, 2), build.cached,
                      (meta["config_digest"], *(r["digest"] for r in meta["layers"])))


def push_small(registry_url: str) -> BenchImage:
    """Push the test bed's one-layer busybox image."""
    img = tb_images.busybox_image(1, fmt="docker")
    repo, tag = SMALL
    digest = push(registry_url, repo, tag, img)
    counts = [_tar_counts(la.tar) for la in img.layers]
    return BenchImage("small", repo, tag, digest, len(img.layers),
                      sum(c[0] for c in counts), sum(c[1] for c in counts),
                      sum(len(la.tar) for la in img.layers), sum(la.size for la in img.layers),
                      cached=True, blobs=tuple(img.blobs))
