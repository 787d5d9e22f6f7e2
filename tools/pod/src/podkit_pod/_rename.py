"""`pod rename`: both halves of a container get the new name — the runtime record
(``podkit_runtime._rename``) and pod-storage's name index and container record.

The storage half uses pod-storage's name-reservation helpers directly (its
``_containers`` module); it belongs in podkit_storage as a public ``rename_container``
once that package's owner adds one.
"""

from __future__ import annotations

import contextlib
import os

from podkit_common import atomic, errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def rename_storage(roots: Roots, ref: str, new_name: str) -> str | None:
    """Reserve ``new_name`` for the storage container, record it, free the old name;
    None when storage does not know the container."""
    from podkit_storage import _containers as sc
    from podkit_storage._layout import StoreLayout

    layout = StoreLayout(roots)
    try:
        c = sc.load_container(roots, ref)
    except errors.NotFound:
        return None
    cid, old = c["id"], c["name"]
    if old == new_name:
        return old
    sc.check_name(new_name)
    if not sc._reserve_name(layout, new_name, cid):
        raise errors.Conflict(f'the container name "{new_name}" is already in use by '
                              f"{sc._name_owner(layout, new_name) or 'another container'}",
                              hint="choose another name")
    try:
        with layout.container_lock(cid):
            path = layout.container_dir(cid) / "container.json"
            record = atomic.read_json(path)
            record["name"] = new_name
            atomic.write_json(path, record)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.names / new_name)
        raise
    if sc._name_owner(layout, old) == cid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.names / old)
    return old


def rename(roots: Roots, ref: str, new_name: str) -> dict[str, Any]:
    """podman rename: the runtime record (when there is one) and the storage container."""
    from podkit_pod._containers import container_id
    from podkit_runtime._rename import check_new_name
    from podkit_runtime._rename import rename as rename_runtime

    check_new_name(new_name)
    cid = container_id(roots, ref)
    runtime_old = None
    with contextlib.suppress(errors.NotFound):
        runtime_old = rename_runtime(roots, cid, new_name)["renamed_from"]
    try:
        old = rename_storage(roots, cid, new_name) or runtime_old
    except BaseException:
        if runtime_old is not None:  # keep the halves agreeing
            rename_runtime(roots, cid, runtime_old)
        raise
    if old is None:
        raise errors.NotFound(f"no such container: {ref}")
    return {"changed": old != new_name, "container": {"id": cid, "name": new_name},
            "renamed_from": old}
