"""`pod system df` says what is on disk: its sizes are the bytes of the files it claims
to count (measured here independently: a walk of each container's writable layer and
each volume, the layer blobs decompressed), its totals the objects that exist."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from tests.pod.test_cli_containers import bare, ok, pod
from tests.security.conftest import inspect

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]
SCHEMAS = SchemaSet(["podkit_pod"])


def walked(path: str | Path) -> int:
    """Bytes of the regular files and symlinks below path (what `du -b` counts, without
    the directories' own blocks)."""
    total = 0
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            if not os.path.isdir(os.path.join(top, name)) or os.path.islink(
                    os.path.join(top, name)):
                total += st.st_size
    return total


def test_df_counts_and_sizes_are_what_is_on_disk(podkit_env, images, needs_conmon) -> None:
    env = podkit_env
    root = Path(env["PODKIT_ROOT"])
    ref = bare(images)
    ok(pod(env, "volume", "create", "used"))
    ok(pod(env, "volume", "create", "spare"))
    ok(pod(env, "run", "--rm", "-v", "spare:/v", "--tls-verify=false", ref, "sh", "-c",
           "head -c 3000 /dev/zero > /v/f"))
    ok(pod(env, "run", "-d", "--name", "live", "-v", "used:/v", ref, "sh", "-c",
           "head -c 7777 /dev/zero > /v/f; exec sleep 1000"))
    ok(pod(env, "run", "--name", "done", ref, "sh", "-c",
           "head -c 12345 /dev/zero > /big; ln -s /big /link; mkdir -p /d/e; echo x > /d/e/f"))
    try:
        ok(pod(env, "exec", "live", "true"))  # it is up (its volume file is written)
        rows = json.loads(ok(pod(env, "system", "df", "--format", "json")))
        SCHEMAS.validate(rows, "urn:podkit:pod:system-df")
        by = {r["Type"]: r for r in rows}

        uppers = {n: root / "containers" / inspect(env, n)["Id"] / "upper"
                  for n in ("live", "done")}
        sizes = {n: walked(p) for n, p in uppers.items()}
        assert sizes["done"] >= 12345 + 4 + 2  # the test wrote what it meant to
        assert by["Containers"]["Total"] == 2 and by["Containers"]["Active"] == 1
        assert by["Containers"]["Size"] == sizes["live"] + sizes["done"]
        assert by["Containers"]["Reclaimable"] == sizes["done"]

        vols = {v["Name"]: v["Mountpoint"]
                for v in json.loads(ok(pod(env, "volume", "inspect", "used", "spare")))}
        assert walked(vols["used"]) == 7777 and walked(vols["spare"]) == 3000
        assert by["Local Volumes"]["Total"] == 2 and by["Local Volumes"]["Active"] == 1
        assert by["Local Volumes"]["Size"] == 10777
        assert by["Local Volumes"]["Reclaimable"] == 3000

        # the image: its layers' tar streams (the blobs decompressed here) plus its
        # config and manifest (the manifest twice, as containers/storage counts it)
        image_id = json.loads(ok(pod(env, "image", "inspect", ref)))[0]["Id"]
        record = json.loads((root / "images" / f"{image_id}.json").read_text())
        tars = sum(len(gzip.decompress(Path(la["path"]).read_bytes()))
                   for la in record["layers"])
        meta = os.stat(root / "blobs" / "sha256" / image_id).st_size + 2 * os.stat(
            root / "blobs" / "sha256" / record["digest"].split(":")[1]).st_size
        assert by["Images"]["Total"] == 1 and by["Images"]["Active"] == 1
        assert by["Images"]["Size"] == tars + meta
        assert by["Images"]["Reclaimable"] == 0
        # the counts follow the objects: remove one of each
        ok(pod(env, "rm", "done"))
        ok(pod(env, "volume", "rm", "spare"))
        rows = {r["Type"]: r for r in json.loads(ok(pod(env, "system", "df", "--format",
                                                         "json")))}
        assert (rows["Containers"]["Total"], rows["Containers"]["Size"]) == (1, sizes["live"])
        assert (rows["Local Volumes"]["Total"], rows["Local Volumes"]["Size"]) == (1, 7777)
    finally:
        pod(env, "rm", "-af", "-t", "0")
