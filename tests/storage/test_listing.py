"""`pod-storage containers` and `images` over a store with many containers (made with
the library, unmounted, like a bench fixture; a few mounted through the CLI): every
container is listed once, `mounted` agrees with /proc/self/mountinfo, `images` counts
the users of each image, and a damaged record is skipped by listings while `check`
reports it. (Speed is measured by the bench's list-containers scenario, not here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.roots import Roots
from podkit_storage import create_container, import_image
from tests.storage.test_concurrency import containers, images, overlay_mounts, storage
from tests.storage.test_store import _tar, image_doc

pytestmark = [pytest.mark.root, pytest.mark.overlay]

MANY = 150


def test_many_containers_are_listed_once_with_their_mount_state(tmp_path, podkit_env):
    roots = Roots(Path(podkit_env["PODKIT_ROOT"]), Path(podkit_env["PODKIT_RUNROOT"]))
    doc = import_image(image_doc(tmp_path, _tar(("etc", None, None),
                                                ("etc/motd", b"hi\n", None))), roots)
    for i in range(MANY):
        create_container(doc, roots, name=f"n{i}", mount=False)
    for i in range(3):
        out = storage(podkit_env, "mount", f"n{i}")
        assert out.code == 0, out.stderr
    listed = containers(podkit_env)
    assert sorted(c["name"] for c in listed) == sorted(f"n{i}" for i in range(MANY))
    assert len({c["id"] for c in listed}) == MANY
    mounted = {c["id"] for c in listed if c["mounted"]}
    assert mounted == overlay_mounts(podkit_env) and len(mounted) == 3
    assert [(row["id"], row["containers"]) for row in images(podkit_env)] == \
        [(doc["image"]["id"], MANY)]
    # A damaged record: listings go on without it, check names it.
    victim = next(c for c in listed if not c["mounted"])
    record = Path(podkit_env["PODKIT_ROOT"]) / "containers" / victim["id"] / "container.json"
    record.write_bytes(b"{not json")
    assert len(containers(podkit_env)) == MANY - 1
    assert images(podkit_env)[0]["containers"] == MANY - 1
    out = storage(podkit_env, "check")
    assert out.code == 5
    problems = {(p["kind"], p["object"]) for p in jsonio.loads(out.stdout)["problems"]}
    assert problems == {("incomplete-container", f"containers/{victim['id']}"),
                        ("orphan-name", f"containers/names/{victim['name']}")}
