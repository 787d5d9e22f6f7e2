"""``check``'s verdict on one layer's content: is its ``diff`` still what its tar made?

Once a layer is unpacked there is no tar left to hash against its diff_id, so the tree
is summarised (:mod:`._content`) and compared with, in this order:

1. the summary an older import recorded in ``layer.json`` (``content``);
2. the layer's blob unpacked afresh into a scratch dir, verified against its diff_id on
   the way: the blob ``layer.json`` names, else any image's blob for the same chain (a
   layer shared by two images pulled with different compressions keeps its content
   checkable after one of them is removed);
3. with no blob left: the summary ``check`` itself recorded in ``verified.json`` the
   last time the layer matched its blob. So a layer stays verifiable after its blob is
   gone, as long as one check ran while the blob was there.

A layer none of these covers is *unverified*: only its presence could be checked, and
the report says so with the reason (an entry of ``unverified``, not a problem: nothing
is known to be wrong). Import pays nothing for any of this (recording a summary at
import re-read every layer and cost every pull a third of its time).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.records import record as value_class
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: The summary ``check`` recorded when the layer last matched its blob.
VERIFIED = "verified.json"


@value_class(frozen=True)
class ContentVerdict:
    """``kind`` None: the content is right (or ``unverified`` says why it is unknown)."""

    kind: str | None = None
    detail: str = ""
    unverified: str | None = None


@value_class(frozen=True)
class BlobSource:
    path: str
    media_type: str
    diff_id: str | None


def blob_sources(layout: StoreLayout) -> dict[str, list[BlobSource]]:
    """chain hex -> the blobs image records give for that layer (any of them will do)."""
    from podkit_storage._images import list_images

    out: dict[str, list[BlobSource]] = {}
    for record in list_images(layout.roots):
        for layer in record.get("layers") or []:
            if not isinstance(layer, dict) or not isinstance(layer.get("path"), str):
                continue
            chain = str(layer.get("chain_id", "")).partition(":")[2]
            out.setdefault(chain, []).append(BlobSource(
                layer["path"], str(layer.get("media_type", "")), layer.get("diff_id")))
    return out


def verify_layer(layout: StoreLayout, chain_hex: str, meta: dict[str, Any],
                 sources: list[BlobSource]) -> ContentVerdict:
    """Compare ``layers/<chain_hex>/diff`` with the best reference there is (see above)."""
    from podkit_storage._content import ALGORITHM, content_summary

    layer = layout.layer_dir(chain_hex)
    try:
        expected, against = _reference(layout, chain_hex, meta, sources)
        if expected is None or expected.get("algorithm") != ALGORITHM:
            return ContentVerdict(unverified=(
                "its blob is gone and no check verified it while the blob was there: "
                "only its presence is known (pull the image again to make it checkable)"))
        now = content_summary(layer / "diff")
    except OSError as exc:
        return ContentVerdict("damaged-layer", f"cannot read: {exc}")
    except errors.PodkitError as exc:
        return ContentVerdict("damaged-blob", f"layer blob: {exc.message}")
    if now["digest"] != expected.get("digest"):
        return ContentVerdict("damaged-layer", (
            f"content changed: {now['entries']} entries, {now['bytes']} bytes now; "
            f"{expected.get('entries')} entries, {expected.get('bytes')} bytes {against}"))
    if against == "in its blob":
        _record(layer, now)
    return ContentVerdict()


def _reference(layout: StoreLayout, chain_hex: str, meta: dict[str, Any],
               sources: list[BlobSource]) -> tuple[dict[str, Any] | None, str]:
    """(summary the diff must match, where it comes from) or (None, "")."""
    if isinstance(meta.get("content"), dict):
        return meta["content"], "recorded at import"
    candidates = []
    if isinstance(meta.get("blob"), str):
        candidates.append(BlobSource(meta["blob"], str(meta.get("media_type", "")),
                                     meta.get("diff_id")))
    candidates += sources
    for source in candidates:
        if os.path.isfile(source.path):
            return _unpacked_summary(layout, chain_hex, source, meta.get("diff_id")), \
                "in its blob"
    try:
        recorded = atomic.read_json(layout.layer_dir(chain_hex) / VERIFIED)
    except FileNotFoundError:
        return None, ""
    except errors.PodkitError:
        return None, ""
    if not isinstance(recorded, dict):
        return None, ""
    return recorded, f"when check last verified it against its blob ({recorded.get('at')})"


def _unpacked_summary(layout: StoreLayout, chain_hex: str, source: BlobSource,
                      diff_id: str | None) -> dict[str, Any]:
    """The blob unpacked afresh (verified against the layer's diff_id) into a scratch dir
    and summarised. Like containers/storage checking against tar-split."""
    from podkit_storage._content import content_summary
    from podkit_storage._extract import UnpackOptions, apply_layer
    from podkit_storage._images import compression_of

    scratch = layout.layers / f"{atomic.TMP_PREFIX}check-{chain_hex}.{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        scratch.mkdir(parents=True)
        with open(source.path, "rb") as src:
            apply_layer(src, scratch, compression=compression_of(source.media_type),
                        expected_diff_id=diff_id or source.diff_id,
                        options=UnpackOptions(same_owner=os.geteuid() == 0))
        return content_summary(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _record(layer: Path, summary: dict[str, Any]) -> None:
    """Keep the verified summary for the day the blob is gone (atomic; best effort: a
    read-only store still checks, it just cannot remember)."""
    path = layer / VERIFIED
    try:
        old = atomic.read_json(path)
    except (OSError, errors.PodkitError):
        old = None
    if isinstance(old, dict) and old.get("digest") == summary["digest"]:
        return
    with contextlib.suppress(OSError):
        atomic.write_json(path, {**summary, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())})
