"""What `pod images`, `pod image history` and `pod image tree` print: podman 4.3's
shapes, computed from pod-storage's image records.

    summaries(roots, all_=, filters=)  podman's ImageSummary per image (the JSON of
                                       `podman images --format json`), newest first
    json_rows(summaries)               that JSON: one entry per name, like podman
    report_rows(summaries, no_trunc=)  the fields `--format '{{.X}}'` sees (imageReporter)
    history(roots, ref)                `podman image history` entries
    tree(roots, ref)                   `podman image tree` text

podman's numbers are reproduced where they come from the same bytes: an image's Size is
its layers' uncompressed sizes plus its config and (twice, as c/storage keeps it under
two keys) its manifest; a layer's id is c/storage's (the first layer's diff id, then
sha256 of ``parent + "+" + diff id``); ParentId is the image whose layers are this
one's minus the top one.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os

from podkit_common import errors
from podkit_common.humanize import go_time, human_size, parse_time, time_ago
from podkit_common.jsonio import loads
from podkit_common.roots import Roots
from podkit_storage._image_report import NONE, split_name  # podman's REPOSITORY/TAG

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman's default `images` tables (a space after "table" only: podman turns spaces
#: into column breaks).
TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"

#: Headers of podman's imageReporter fields (methods such as CreatedAt have none).
HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
           "ParentId": "PARENT ID", "RepoTags": "REPO TAGS", "RepoDigests": "REPO DIGESTS",
           "Created": "CREATED", "Size": "SIZE", "SharedSize": "SHARED SIZE",
           "VirtualSize": "VIRTUAL SIZE", "Labels": "LABELS", "Containers": "CONTAINERS",
           "ReadOnly": "R/O", "Dangling": "DANGLING", "Names": "NAMES", "Digest": "DIGEST",
           "History": "HISTORY"}
TYPE_NAME = "images.imageReporter"

HISTORY_TABLE = "table {{.ID}}\t{{.Created}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "ID", "Created": "CREATED", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT", "Tags": "TAGS"}

FILTER_KEYS = ("reference", "dangling", "label", "before", "since", "id", "containers",
               "intermediate", "readonly", "until")


def storage_layer_ids(record: dict[str, Any]) -> list[str]:
    """c/storage's layer ids for the image's layers, bottom first."""
    import hashlib

    out: list[str] = []
    for layer in record.get("layers", []):
        diff = layer["diff_id"].split(":", 1)[-1]
        out.append(diff if not out else
                   hashlib.sha256(f"{out[-1]}+{diff}".encode()).hexdigest())
    return out


class _Store:
    """One pass over the store's records, with what every listing needs."""

    def __init__(self, roots: Roots) -> None:
        from podkit_storage import list_containers, list_images

        self.roots = roots
        self.records = list_images(roots)
        self.layer_sizes: dict[str, int] = {}
        self.users: dict[str, int] = {}
        for c in _container_records(roots, list_containers):
            self.users[c.get("image_id", "")] = self.users.get(c.get("image_id", ""), 0) + 1
        self.by_chain = {self.chains(r): r for r in self.records}

    @staticmethod
    def chains(record: dict[str, Any]) -> tuple[str, ...]:
        return tuple(la.get("chain_id", "") for la in record.get("layers", []))

    def layer_size(self, chain: str) -> int:
        if chain not in self.layer_sizes:
            path = os.path.join(self.roots.root, "layers", chain.split(":", 1)[-1],
                                "layer.json")
            try:
                with open(path, "rb") as fh:
                    self.layer_sizes[chain] = int(loads(fh.read()).get("size") or 0)
            except (OSError, errors.InvalidDocument, ValueError):
                self.layer_sizes[chain] = 0
        return self.layer_sizes[chain]

    def size(self, record: dict[str, Any]) -> int:
        total = sum(self.layer_size(la.get("chain_id", "")) for la in record.get("layers", []))
        for key, times in (("config_path", 1), ("manifest_path", 2)):
            with contextlib.suppress(KeyError, OSError, TypeError):
                total += os.stat(record[key]).st_size * times
        return total

    def parent(self, record: dict[str, Any]) -> dict[str, Any] | None:
        chains = self.chains(record)
        return self.by_chain.get(chains[:-1]) if len(chains) > 1 else None


def _container_records(roots: Roots, list_containers: Any) -> list[dict[str, Any]]:
    try:
        return list_containers(roots)
    except FileNotFoundError:
        return []


def created_of(record: dict[str, Any]) -> str | None:
    return (record.get("config") or {}).get("created") or record.get("stored_at")


def names_history(record: dict[str, Any]) -> list[str]:
    """c/storage's NamesHistory: the newest name first, names removed since after."""
    names = record.get("names", [])
    return list(dict.fromkeys([*reversed(names), *record.get("names_history", [])]))


def _summary(store: _Store, record: dict[str, Any], children: set[str]) -> dict[str, Any]:
    names = record.get("names", [])
    digest = record.get("digest")
    parent = store.parent(record)
    created = created_of(record)
    size = store.size(record)
    labels = ((record.get("config") or {}).get("config") or {}).get("Labels") or None
    summary: dict[str, Any] = {
        "Id": record["id"], "ParentId": parent["id"] if parent else "", "RepoTags": None,
        "RepoDigests": list(dict.fromkeys(f"{split_name(n)[0]}@{digest}" for n in names))
        if digest else [],
        "Size": size, "SharedSize": 0, "VirtualSize": size, "Labels": labels,
        "Containers": store.users.get(record["id"], 0),
    }
    if not names:
        summary["Dangling"] = True
    else:
        summary["Names"] = list(names)
    summary["Digest"] = digest or ""
    history = names_history(record)
    if history:
        summary["History"] = history
    when = parse_time(created)
    summary["Created"] = int(when) if when is not None else 0
    summary["CreatedAt"] = created or ""
    # not printed: what filters and the reporter need
    summary["_intermediate"] = not names and record["id"] in children
    summary["_created"] = when or 0.0
    return summary


def summaries(roots: Roots, *, all_: bool = False,
              filters: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """podman's ImageSummary for each image that passes ``filters``, newest first;
    intermediate images (nameless parents of another image) only with ``all_``."""
    store = _Store(roots)
    children = {p["id"] for p in (store.parent(r) for r in store.records) if p}
    out = [_summary(store, r, children) for r in store.records]
    tests = [_image_filter(store, f) for f in filters]
    out = [s for s in out if all(t(s) for t in tests)
           and (all_ or not s["_intermediate"] or filters)]
    out.sort(key=lambda s: -s["_created"])
    return out


def public(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def json_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`podman images --format json`: the summary once per name (dangling: once)."""
    out = []
    for s in items:
        for _ in s.get("Names") or [None]:
            out.append(public(s))
    return out


def report_rows(items: list[dict[str, Any]], *, no_trunc: bool = False,
                now: float | None = None) -> list[dict[str, Any]]:
    """One row per name with podman's imageReporter fields."""
    rows = []
    for s in items:
        for name in s.get("Names") or [None]:
            repo, tag = split_name(name) if name else (NONE, NONE)
            rows.append({
                "ID": f"sha256:{s['Id']}" if no_trunc else s["Id"][:12],
                "Repository": repo, "Tag": tag, "Digest": s["Digest"],
                "Created": time_ago(s["_created"], now), "CreatedSince": time_ago(
                    s["_created"], now), "CreatedAt": go_time(s["_created"]),
                "Size": human_size(s["Size"]), "VirtualSize": s["VirtualSize"],
                "SharedSize": s["SharedSize"], "ReadOnly": False, "IsReadOnly": False,
                "History": ", ".join(s.get("History") or []),
                "Containers": s["Containers"], "Dangling": bool(s.get("Dangling")),
                "ParentId": s["ParentId"], "RepoTags": [],
                "RepoDigests": s["RepoDigests"], "Labels": s["Labels"] or {},
                "Names": s.get("Names") or [],
            })
    return rows


SORT_KEYS = ("created", "id", "repository", "size", "tag")


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """`podman images --sort`: created (newest first, the default), id, repository,
    tag (ascending), size (smallest first)."""
    from podkit_common import errors as _errors

    if key not in SORT_KEYS:
        raise _errors.UsageError(f"invalid sort option {key!r}",
                                 hint=f"one of {', '.join(SORT_KEYS)}")
    if key == "created":
        return rows  # summaries() already lists the newest first
    field = {"id": "ID", "repository": "Repository", "size": "VirtualSize", "tag": "Tag"}[key]
    return sorted(rows, key=lambda r: r[field])


def quiet_ids(items: list[dict[str, Any]], *, no_trunc: bool = False) -> list[str]:
    """`podman images -q`: each image id once."""
    ids = [f"sha256:{s['Id']}" if no_trunc else s["Id"][:12] for s in items]
    return list(dict.fromkeys(ids))


# ------------------------------------------------------------------ filters

def _ref_match(name: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(name, pattern):
        return True
    repo, tag = split_name(name)
    prepo, ptag = split_name(pattern) if "@" not in pattern else (pattern, NONE)
    if ptag != NONE and not fnmatch.fnmatchcase(tag, ptag):
        return False
    return fnmatch.fnmatchcase(repo, prepo) or fnmatch.fnmatchcase(repo, "*/" + prepo)


def _image_filter(store: _Store, spec: str) -> Any:
    key, eq, value = spec.partition("=")
    if key not in FILTER_KEYS:
        raise errors.UsageError(f'unsupported image filter "{key}"',
                                hint=f"filters: {', '.join(FILTER_KEYS)}")
    if not eq and key not in ("label",):
        raise errors.UsageError(f"invalid image filter {spec!r}", hint="use KEY=VALUE")
    truth = value.lower() in ("true", "1", "yes")
    if key == "reference":
        return lambda s: any(_ref_match(n, value) for n in s.get("Names") or [])
    if key == "dangling":
        return lambda s: bool(s.get("Dangling")) == truth
    if key == "intermediate":
        return lambda s: s["_intermediate"] == truth
    if key == "readonly":
        return lambda s: not truth
    if key == "containers":
        return lambda s: (s["Containers"] > 0) == truth
    if key == "id":
        want = value.removeprefix("sha256:")
        return lambda s: s["Id"].startswith(want)
    if key == "label":
        lkey, leq, lval = value.partition("=")
        return lambda s: lkey in (s["Labels"] or {}) and (
            not leq or (s["Labels"] or {})[lkey] == lval)
    if key == "until":
        limit = _until(value)
        return lambda s: s["_created"] < limit
    from podkit_storage import find_image

    ref = find_image(store.roots, value)
    when = parse_time(created_of(ref)) or 0.0
    if key == "before":
        return lambda s: s["_created"] < when
    return lambda s: s["_created"] > when


def _until(value: str) -> float:
    """``until=``: a Unix time, an RFC 3339 time, or a Go duration before now (``24h``,
    ``1h30m``, ``90s``)."""
    import re
    import time

    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    when = parse_time(value)
    if when is not None:
        return when
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise errors.UsageError(f"--filter until={value}: not a time or a duration",
                                hint="e.g. until=24h or until=2023-11-14T22:13:20Z")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return time.time() - sum(float(n) * scale[u] for n, u in parts)


# ------------------------------------------------------------------ history and tree

def history(roots: Roots, ref: str) -> list[dict[str, Any]]:
    """`podman image history`: newest entry first, with podman's ids and sizes."""
    from podkit_storage import find_image

    store = _Store(roots)
    record = find_image(roots, ref)
    config = record.get("config") or {}
    entries = config.get("history") or [
        {"created": config.get("created"), "created_by": ""} for _ in record.get("layers", [])]
    chains = list(store.chains(record))
    tops: dict[str, list[dict[str, Any]]] = {}
    for r in store.records:
        c = store.chains(r)
        if c:
            tops.setdefault(c[-1], []).append(r)
    layer = len(chains) - 1
    used: set[str] = set()
    out = []
    for x in range(len(entries) - 1, -1, -1):
        entry = entries[x]
        item = {"ID": "<missing>", "Created": entry.get("created"),
                "CreatedBy": entry.get("created_by", ""), "Size": 0,
                "Comment": entry.get("comment", ""), "Tags": []}
        if x == len(entries) - 1:
            item["ID"] = record["id"]
        if layer >= 0:
            if not entry.get("empty_layer"):
                item["Size"] = store.layer_size(chains[layer])
            images = tops.get(chains[layer], [])
            if images and images[0]["id"] not in used:
                item["ID"] = images[0]["id"]
                used.add(images[0]["id"])
            if not entry.get("empty_layer"):
                layer -= 1
        out.append(item)
    return out


def history_json(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`podman image history --format json`'s (odd) keys."""
    out = []
    for e in entries:
        doc: dict[str, Any] = {"id": e["ID"]}
        if e["Created"]:
            doc["created"] = e["Created"]
        if e["CreatedBy"]:
            doc["CreatedBy"] = e["CreatedBy"]
        doc["size"] = e["Size"]
        if e["Comment"]:
            doc["comment"] = e["Comment"]
        doc["Created"] = e["Created"] or "0001-01-01T00:00:00Z"
        out.append(doc)
    return out


def history_rows(entries: list[dict[str, Any]], *, no_trunc: bool = False,
                 human: bool = True, now: float | None = None) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        created_by = e["CreatedBy"]
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:42] + "..."
        ident = e["ID"]
        if not no_trunc and ident != "<missing>":
            ident = ident[:12]
        rows.append({"ID": ident,
                     "Created": time_ago(e["Created"], now) if human else (e["Created"] or ""),
                     "CreatedAt": go_time(e["Created"]), "CreatedBy": created_by,
                     "Size": human_size(e["Size"]),  # podman: human even then
                     "Comment": e["Comment"], "Tags": e["Tags"]})
    return rows


def tree(roots: Roots, ref: str, *, whatrequires: bool = False) -> str:
    """`podman image tree IMAGE`: the image, then its layers bottom up, each with the
    images whose top layer it is; with ``whatrequires``, the image's top layer and the
    layers stacked on it by other images (nested where a layer has several children)."""
    from podkit_storage import find_image

    store = _Store(roots)
    record = find_image(roots, ref)
    tops: dict[str, list[str]] = {}
    shown: dict[str, str] = {}  # chain -> the layer id podman prints
    children: dict[str, list[str]] = {}
    for r in store.records:
        c = store.chains(r)
        if c:
            tops.setdefault(c[-1], []).extend(r.get("names", []))
        for i, (lid, chain) in enumerate(zip(storage_layer_ids(r), c, strict=True)):
            shown[chain] = lid
            if i and chain not in children.setdefault(c[i - 1], []):
                children[c[i - 1]].append(chain)

    def label(chain: str) -> str:
        line = f"ID: {shown[chain][:12]} Size: {human_size(store.layer_size(chain), 4, ''):>7}"
        return line + (f" Top Layer of: [{' '.join(tops[chain])}]" if chain in tops else "")

    lines = [f"Image ID: {record['id'][:12]}",
             f"Tags:     [{' '.join(record.get('names', []))}]",
             f"Size:     {human_size(store.size(record), 4, '')}",
             "Image Layers"]
    chains = store.chains(record)
    if not whatrequires:
        nodes: list[tuple[str, list]] = [(label(c), []) for c in chains]
    else:
        def descend(chain: str, siblings: list) -> None:
            node: tuple[str, list] = (label(chain), [])
            siblings.append(node)
            below = children.get(chain, [])
            for child in below:  # one child: podman lists it beside its parent
                descend(child, node[1] if len(below) > 1 else siblings)

        nodes = []
        if chains:
            descend(chains[-1], nodes)
    lines += _tree_lines(nodes, "")
    return "\n".join(lines) + "\n\n"  # podman ends the tree with an empty line


def _tree_lines(nodes: list[tuple[str, list]], indent: str) -> list[str]:
    """gotree's drawing: ├── / └── branches, │ under the open ones."""
    out = []
    for i, (text, below) in enumerate(nodes):
        last = i == len(nodes) - 1
        out.append(indent + ("└── " if last else "├── ") + text)
        out += _tree_lines(below, indent + ("    " if last else "│   "))
    return out
