"""Check the store: layers against their blobs unpacked afresh, image records against their
layers and blobs, containers against their records; find what crashes left behind.
With ``repair`` fix what can be fixed without destroying good data.

Problem kinds, and what ``repair`` does about them:

    staging            .tmp-* left by a killed writer (pid gone)     removed
    incomplete-layer   layer dir without layer.json                  removed
    damaged-layer      diff missing or differs from its blob        unpacked again from the
                                                                    blob, if stored and no
                                                                    mounted container uses it
    orphan-layer       complete layer no image uses                  removed with prune_orphans
    damaged-record     image/container record that is not JSON       removed
    image-missing-layer  image record naming a missing layer         record removed
    damaged-blob       manifest/config blob missing or not its digest  none (damaged)
    blob-temp          blobs/tmp file of a killed pull (no lock held)  removed
    incomplete-container  container dir without container.json      unmounted, removed
    container-broken   record names a missing image or image layer     none
    container-rootfs-missing  its upper/work dir is gone (cannot run)   container removed
    orphan-name        name reservation of no container              removed
    missing-name       container whose name is not reserved for it   reserved again
    orphan-mount       mount point of no container under runroot     unmounted, removed

Output (``urn:podkit:storage:check``)::

    {"changed": false, "clean": false, "problems": [
        {"kind": "orphan-name", "object": "names/web", "detail": "…",
         "repairable": true, "repaired": false}]}

``clean`` is true when no problem is left unrepaired. ``unverified`` lists layers whose
content could not be compared with anything (their blob is gone and no earlier check
recorded them: see _check_content), with the reason; they do not make the store unclean.

Concurrency: layer contents are verified under the images-gc lock held shared (imports
and creates go on; rmi/prune wait), then the store is judged and repaired under it held
exclusively, so no import, create, rmi or prune is half-way while check looks: what an
import or create is making is never taken for a crash leftover. Commands that do not
take that lock (rm, mount, umount, tag) hold the object's own lock, which a repair takes
too before it re-checks and fixes; an object whose lock is held right now is being
worked on and is not judged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.locks import object_lock
from podkit_common.records import field, record
from podkit_common.roots import Roots
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Problem kinds a repair can never fix: content is damaged and must be fetched again.
#: (A damaged layer whose blob is stored is repaired: see _damaged_layer.)
DAMAGED = frozenset({"damaged-layer", "damaged-blob", "container-broken"})


@record
class Problem:
    kind: str
    object: str
    detail: str
    repairable: bool
    fix: Callable[[], None] | None = field(default=None, repr=False)
    repaired: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "object": self.object, "detail": self.detail,
                "repairable": self.repairable, "repaired": self.repaired}


def check_store(roots: Roots, *, repair: bool = False,
                prune_orphans: bool = False) -> dict[str, Any]:
    """Check (and with ``repair`` fix) the store; return the check document."""
    from podkit_storage._image_remove import gc_lock

    layout = StoreLayout(roots)
    with gc_lock(layout, shared=True):
        verdicts = _verify_contents(layout)
    with gc_lock(layout):
        return _check_and_repair(layout, verdicts, repair, prune_orphans)


def _check_and_repair(layout: StoreLayout, verdicts: dict[str, Any], repair: bool,
                      prune_orphans: bool) -> dict[str, Any]:
    problems: list[Problem] = []
    unverified: list[dict[str, str]] = []
    layers = _check_layers(layout, problems, verdicts, unverified)
    used = _check_images(layout, layers, problems)
    _check_orphan_layers(layout, layers, used, problems, prune_orphans)
    _check_blobs(layout, problems)
    _check_containers(layout, problems)
    changed = False
    if repair:
        for p in problems:
            if p.repairable and p.fix is not None:
                try:
                    p.fix()
                except OSError as exc:
                    raise errors.from_os_error(exc, f"repair {p.kind} {p.object}") from None
                p.repaired = changed = True
    clean = all(p.repaired for p in problems)
    report = {"changed": changed, "clean": clean, "problems": [p.as_dict() for p in problems]}
    if unverified:
        report["unverified"] = unverified
    return report


def exit_code_of(report: dict[str, Any]) -> int:
    """0 clean; 6 (VerificationFailed) if content is damaged; else 5 (Conflict)."""
    left = [p for p in report["problems"] if not p["repaired"]]
    if not left:
        return 0
    if any(p["kind"] in DAMAGED for p in left):
        return errors.VerificationFailed.exit_code
    return errors.Conflict.exit_code


# -- helpers ---------------------------------------------------------------------------

def _entries(path: Path) -> list[os.DirEntry[str]]:
    try:
        return sorted(os.scandir(path), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _remove(path: Path) -> Callable[[], None]:
    """Remove a file or a real directory; a symlink is unlinked, never followed. Gone
    already (its owner finished removing it meanwhile) is fine."""
    def fix() -> None:
        with contextlib.suppress(FileNotFoundError):
            if path.is_symlink() or not path.is_dir():
                os.unlink(path)
            else:
                shutil.rmtree(path)
    return fix


def _busy(layout: StoreLayout, kind: str, name: str) -> bool:
    """Whether a command holds the lock of this object right now (it is at work on it)."""
    try:
        fd = os.open(object_lock(layout.locks, kind, name).path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _under_lock(layout: StoreLayout, kind: str, name: str,
                fix: Callable[[], None]) -> Callable[[], None]:
    def locked() -> None:
        with object_lock(layout.locks, kind, name):
            fix()
    return locked


def _staging(problems: list[Problem], root: Path, entry: os.DirEntry[str], where: str) -> bool:
    if not entry.name.startswith(atomic.TMP_PREFIX):
        return False
    pid = atomic.writer_pid(entry.name)
    if pid is not None and pid != os.getpid() and atomic.pid_alive(pid):
        return True  # a writer is at work right now
    problems.append(Problem("staging", f"{where}/{entry.name}",
                            "left by a writer that is gone", True,
                            _remove(root / entry.name)))
    return True


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        doc = atomic.read_json(path)
    except FileNotFoundError:
        return None
    except errors.PodkitError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# -- layers ----------------------------------------------------------------------------

def _verify_contents(layout: StoreLayout) -> dict[str, Any]:
    """chain hex -> ContentVerdict of every complete layer (the slow part of check)."""
    from podkit_storage._check_content import blob_sources, verify_layer

    sources = blob_sources(layout)
    out = {}
    for entry in _entries(layout.layers):
        if entry.name.startswith(atomic.TMP_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        meta = _read_record(Path(entry.path) / "layer.json")
        diff = Path(entry.path) / "diff"
        if meta and not diff.is_symlink() and diff.is_dir():
            out[entry.name] = verify_layer(layout, entry.name, meta,
                                           sources.get(entry.name, []))
    return out


def _check_layers(layout: StoreLayout, problems: list[Problem], verdicts: dict[str, Any],
                  unverified: list[dict[str, str]]) -> set[str]:
    """Judge every layer dir; return the chain hexes of complete layers."""
    from podkit_storage._check_content import blob_sources, verify_layer

    complete: set[str] = set()
    for entry in _entries(layout.layers):
        if _staging(problems, layout.layers, entry, "layers"):
            continue
        if entry.name == layout.empty_layer.name:
            continue
        path = Path(entry.path)
        obj = f"layers/{entry.name}"
        if entry.is_symlink() or not entry.is_dir():
            problems.append(Problem("incomplete-layer", obj, "not a directory", True,
                                    _remove(path)))
            continue
        meta = _read_record(path / "layer.json")
        if meta is None:
            problems.append(Problem("incomplete-layer", obj, "no layer.json: a killed import",
                                    True, _locked_layer_removal(layout, entry.name)))
            continue
        complete.add(entry.name)
        diff = path / "diff"
        if diff.is_symlink() or not diff.is_dir():
            problems.append(_damaged_layer(layout, entry.name, meta,
                                           "diff directory is missing"))
            continue
        verdict = verdicts.get(entry.name)
        if verdict is None:  # imported between the two phases
            verdict = verify_layer(layout, entry.name, meta,
                                   blob_sources(layout).get(entry.name, []))
        if verdict.kind == "damaged-layer":
            problems.append(_damaged_layer(layout, entry.name, meta, verdict.detail))
        elif verdict.kind is not None:
            problems.append(Problem(verdict.kind, obj, verdict.detail, False))
        elif verdict.unverified:
            unverified.append({"object": obj, "reason": verdict.unverified})
    return complete


def _damaged_layer(layout: StoreLayout, chain_hex: str, meta: dict[str, Any],
                   detail: str) -> Problem:
    """A layer whose diff is gone or changed: repairable by unpacking its blob afresh
    when the blob is still stored and no mounted container has the layer under it
    (replacing files under a live overlay is undefined behaviour)."""
    from podkit_storage._check_content import BlobSource, blob_sources

    obj = f"layers/{chain_hex}"
    candidates = []
    if isinstance(meta.get("blob"), str):
        candidates.append(BlobSource(meta["blob"], str(meta.get("media_type", "")),
                                     meta.get("diff_id")))
    candidates += blob_sources(layout).get(chain_hex, [])
    source = next((s for s in candidates if os.path.isfile(s.path)), None)
    if source is None:
        return Problem("damaged-layer", obj, detail + "; its blob is gone too: pull the "
                       "image again", False)
    users = _mounted_users(layout, layout.layer_dir(chain_hex) / "diff")
    if users:
        return Problem("damaged-layer", obj, detail + "; repair unpacks it again from its "
                       f"blob once these containers are stopped: {', '.join(users)}", False)
    return Problem("damaged-layer", obj, detail + "; repair unpacks it again from its blob",
                   True, _layer_rebuild(layout, chain_hex, meta, source))


def _mounted_users(layout: StoreLayout, diff: Path) -> list[str]:
    from podkit_storage._mount import is_mounted

    users = []
    for entry in _entries(layout.containers):
        record = _read_record(Path(entry.path) / "container.json") if entry.is_dir() else None
        if record and str(diff) in [str(p) for p in record.get("lower") or []]:
            mp = layout.mountpoint(entry.name)
            if mp.is_dir() and is_mounted(mp):
                users.append(str(record.get("name") or entry.name[:12]))
    return users


def _layer_rebuild(layout: StoreLayout, chain_hex: str, meta: dict[str, Any],
                   source: Any) -> Callable[[], None]:
    def fix() -> None:
        from podkit_storage._extract import UnpackOptions, apply_layer
        from podkit_storage._images import compression_of

        layer = layout.layer_dir(chain_hex)
        with object_lock(layout.locks, "layer", chain_hex):
            fresh = atomic.temp_path_for(layer)  # a staging sibling: swept if we die
            fresh.mkdir()
            try:
                with open(source.path, "rb") as src:
                    apply_layer(src, fresh, compression=compression_of(source.media_type),
                                expected_diff_id=meta.get("diff_id") or source.diff_id,
                                options=UnpackOptions(same_owner=os.geteuid() == 0))
                old = atomic.temp_path_for(layer)
                if os.path.lexists(layer / "diff"):
                    os.rename(layer / "diff", old)
                os.rename(fresh, layer / "diff")
                _remove(old)()
            finally:
                _remove(fresh)()
    return fix


def _locked_layer_removal(layout: StoreLayout, chain_hex: str) -> Callable[[], None]:
    def fix() -> None:
        with object_lock(layout.locks, "layer", chain_hex):
            path = layout.layer_dir(chain_hex)
            if not (path / "layer.json").exists():
                _remove(path)()
    return fix


def _check_orphan_layers(layout: StoreLayout, complete: set[str], used: set[str],
                         problems: list[Problem], prune: bool) -> None:
    for chain_hex in sorted(complete - used):
        problems.append(Problem(
            "orphan-layer", f"layers/{chain_hex}",
            "no image uses it (a re-import reuses it; --prune-orphans removes it)", True,
            _locked_layer_removal_any(layout, chain_hex) if prune else None))


def _locked_layer_removal_any(layout: StoreLayout, chain_hex: str) -> Callable[[], None]:
    def fix() -> None:
        with object_lock(layout.locks, "layer", chain_hex):
            _remove(layout.layer_dir(chain_hex))()
    return fix


# -- images and blobs ------------------------------------------------------------------

def _check_images(layout: StoreLayout, complete: set[str], problems: list[Problem]) -> set[str]:
    """Check every image record; return the chain hexes they use."""
    used: set[str] = set()
    for entry in _entries(layout.images):
        if _staging(problems, layout.images, entry, "images"):
            continue
        if not entry.name.endswith(".json"):
            continue
        path = Path(entry.path)
        obj = f"images/{entry.name}"
        record = _read_record(path)
        if not record or not isinstance(record.get("layers"), list):
            problems.append(Problem("damaged-record", obj, "not an image record", True,
                                    _under_lock(layout, "images", "index", _remove(path))))
            continue
        chains = [str(la.get("chain_id", "")).partition(":")[2]
                  for la in record["layers"] if isinstance(la, dict)]
        missing = [c for c in chains if c not in complete]
        if missing:
            problems.append(Problem(
                "image-missing-layer", obj,
                f"{len(missing)} of its {len(chains)} layers are missing (pull it again)",
                True, _under_lock(layout, "images", "index", _remove(path))))
            continue
        used.update(chains)
        for key, digest_key in (("manifest_path", "digest"), ("config_path", "config_digest")):
            blob, digest = record.get(key), record.get(digest_key)
            if not blob or not digest:
                continue
            try:
                actual = _file_digest(Path(blob))
            except FileNotFoundError:
                problems.append(Problem("damaged-blob", blob, f"{key} of image "
                                        f"{record.get('id')} is missing", False))
                continue
            if actual != digest:
                problems.append(Problem("damaged-blob", blob,
                                        f"hashes to {actual}, not {digest}", False))
    return used


def _check_blobs(layout: StoreLayout, problems: list[Problem]) -> None:
    tmp = layout.roots.root / "blobs" / "tmp"
    for entry in _entries(tmp):
        # .partial files are resumable downloads, kept on purpose for the next pull.
        if entry.name.endswith(".partial") or entry.name.startswith("."):
            continue
        prefix = entry.name.split("-", 1)[0]
        if _blob_lock_held(layout, prefix):
            continue
        problems.append(Problem("blob-temp", f"blobs/tmp/{entry.name}",
                                "left by a killed pull", True, _remove(Path(entry.path))))


def _blob_lock_held(layout: StoreLayout, hex_prefix: str) -> bool:
    """Whether a pull holds the lock of a blob whose digest starts with ``hex_prefix``."""
    for entry in _entries(layout.locks):
        if not (entry.name.startswith("blob-") and hex_prefix in entry.name):
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
    return False


# -- containers ------------------------------------------------------------------------

def _check_containers(layout: StoreLayout, problems: list[Problem]) -> None:
    from podkit_storage._images import list_images

    chains_ok = {e.name for e in _entries(layout.layers)
                 if (Path(e.path) / "layer.json").exists()}
    image_ids = {r.get("id") for r in list_images(layout.roots)}
    live: dict[str, str] = {}
    for entry in _entries(layout.containers):
        if entry.name == layout.names.name:
            continue
        if _staging(problems, layout.containers, entry, "containers"):
            continue
        if len(entry.name) != 64 or entry.name.strip("0123456789abcdef"):
            continue  # not a container dir: not ours to judge
        obj = f"containers/{entry.name}"
        record = _read_record(Path(entry.path) / "container.json")
        if _busy(layout, "container", entry.name):
            # rm, mount or umount at work on it: judge it next time.
            live[entry.name] = str((record or {}).get("name", ""))
            continue
        if not record:
            what = "no container.json: a killed create" if record is None else \
                "container.json is not a record"
            problems.append(Problem("incomplete-container", obj, what, True,
                                    _container_removal(layout, entry.name)))
            continue
        live[entry.name] = str(record.get("name", ""))
        broken = [p for p in record.get("lower", [])
                  if Path(p) != layout.empty_layer and Path(p).parent.name not in chains_ok]
        rootfs_gone = [p for p in (record.get("upper"), record.get("work"))
                       if p and not Path(p).is_dir()]
        if (broken or rootfs_gone or record.get("image_id") not in image_ids) and \
                not _still_there(layout, entry.name):
            continue  # removed while we looked
        if record.get("image_id") not in image_ids:
            problems.append(Problem("container-broken", obj,
                                    f"its image {record.get('image_id')} is gone", False))
        elif broken:
            problems.append(Problem("container-broken", obj,
                                    f"missing: {', '.join(broken + rootfs_gone)}", False))
        elif rootfs_gone:
            # Its own files are gone: nothing is left to save, and it can never run.
            problems.append(Problem(
                "container-rootfs-missing", obj,
                f"container {record.get('name') or entry.name[:12]} lost its writable "
                f"layer ({', '.join(rootfs_gone)}): it cannot run again; repair removes it",
                True, _broken_container_removal(layout, entry.name)))
    _check_names(layout, live, problems)
    _check_mounts(layout, live, problems)


def _still_there(layout: StoreLayout, cid: str) -> bool:
    """The container's record exists and no command is removing it right now."""
    return (layout.container_dir(cid) / "container.json").exists() and \
        not _busy(layout, "container", cid)


def _broken_container_removal(layout: StoreLayout, cid: str) -> Callable[[], None]:
    def fix() -> None:
        from podkit_storage._containers import remove_container

        with contextlib.suppress(errors.NotFound):
            remove_container(layout.roots, cid)  # takes the container's lock itself
    return fix


def _container_removal(layout: StoreLayout, cid: str) -> Callable[[], None]:
    def fix() -> None:
        from podkit_storage._mount import is_mounted, unmount

        with layout.container_lock(cid):
            if (layout.container_dir(cid) / "container.json").exists():
                return
            mp = layout.mountpoint(cid)
            if mp.exists() and is_mounted(mp):
                unmount(mp)
            _remove(layout.container_dir(cid))()
            with contextlib.suppress(OSError):
                os.rmdir(mp)
    return fix


def _check_names(layout: StoreLayout, live: dict[str, str], problems: list[Problem]) -> None:
    owners: dict[str, str] = {}
    for entry in _entries(layout.names):
        if _staging(problems, layout.names, entry, "containers/names"):
            continue
        try:
            owner = Path(entry.path).read_text().strip()
        except OSError:
            owner = ""
        owners[entry.name] = owner
        if owner not in live and not (len(owner) == 64 and _busy(layout, "container", owner)):
            problems.append(Problem("orphan-name", f"containers/names/{entry.name}",
                                    f"reserved for {owner or 'nobody'}, which does not exist",
                                    True, _remove(Path(entry.path))))
    for cid, name in sorted(live.items()):
        if name and owners.get(name) != cid and _still_there(layout, cid):
            problems.append(Problem("missing-name", f"containers/{cid}",
                                    f'its name "{name}" is not reserved for it', True,
                                    _reserve(layout, name, cid)))


def _reserve(layout: StoreLayout, name: str, cid: str) -> Callable[[], None]:
    @_under_container_lock(layout, cid)
    def fix() -> None:
        if not (layout.container_dir(cid) / "container.json").exists():
            return  # removed meanwhile: nothing to reserve for
        layout.names.mkdir(parents=True, exist_ok=True)
        path = layout.names / name
        # Only a dangling reservation (its owner gone) is replaced; a live one stays.
        with contextlib.suppress(FileNotFoundError):
            owner = path.read_text().strip()
            if (layout.container_dir(owner) / "container.json").exists():
                return
            os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(cid)
    return fix


def _check_mounts(layout: StoreLayout, live: dict[str, str], problems: list[Problem]) -> None:
    mounts = layout.roots.runroot / "mounts"
    for entry in _entries(mounts):
        if entry.name in live or _busy(layout, "container", entry.name):
            continue
        problems.append(Problem("orphan-mount", f"runroot/mounts/{entry.name}",
                                "mount point of no container", True,
                                _mountpoint_removal(layout, entry.name)))


def _mountpoint_removal(layout: StoreLayout, name: str) -> Callable[[], None]:
    mp = layout.roots.runroot / "mounts" / name

    @_under_container_lock(layout, name)
    def fix() -> None:
        from podkit_storage._mount import is_mounted, unmount

        if (layout.container_dir(name) / "container.json").exists():
            return  # a container of that id exists after all (made meanwhile)
        with contextlib.suppress(FileNotFoundError):
            if not mp.is_symlink() and is_mounted(mp):
                unmount(mp)
            if mp.is_symlink() or not mp.is_dir():
                os.unlink(mp)
            else:
                os.rmdir(mp)
    return fix


def _under_container_lock(layout: StoreLayout, cid: str
                          ) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A repair of something a container owns runs under that container's lock (an
    id that is no container name, e.g. a stray dir under mounts/, gets its own lock)."""
    def wrap(fix: Callable[[], None]) -> Callable[[], None]:
        return _under_lock(layout, "container", cid, fix)
    return wrap
