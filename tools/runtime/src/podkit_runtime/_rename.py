"""``rename``: a new name for a container's runtime record (podman rename).

conmon keeps the name it was started with (podman's rename does not tell conmon
either); everything we print reads the record.
"""

from __future__ import annotations

import re

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman's container name pattern (libpod/define NameRegex)
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def check_new_name(name: str) -> None:
    if not NAME.match(name):
        raise errors.UsageError(f"invalid container name {name!r}",
                                hint="[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def rename(roots: Any, ref: str, new_name: str) -> dict[str, Any]:
    """Give the runtime container ``ref`` the name ``new_name`` (Conflict when taken)."""
    from podkit_runtime import _state

    check_new_name(new_name)
    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        for other in _state.all_records(roots):
            if other.get("name") == new_name and other["id"] != cid:
                raise errors.Conflict(f'the container name "{new_name}" is already in use '
                                      f"by {other['id']}", hint="choose another name")
        record = _state.load_record(roots, cid)
        old = record["name"]
        record["name"] = new_name
        container = (record.get("doc") or {}).get("container")
        if isinstance(container, dict):
            container["name"] = new_name
        _state.save_record(roots, record)
    return {"changed": old != new_name, "container": {"id": cid, "name": new_name},
            "renamed_from": old}
