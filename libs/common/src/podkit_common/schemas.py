"""The schema registry: every document type's JSON Schema, shipped as package data.

Each package keeps its schemas in ``<package>/schemas/*.json``; every schema has a URN
``$id`` (``urn:podkit:<package>:<name>``) and every ``$ref`` resolves inside this
registry: nothing is ever fetched. jsonschema is imported only when a document is
actually validated, so listing schemas or printing ``--help`` stays cheap.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources

from podkit_common.errors import InvalidDocument
from podkit_common.jsonio import loads

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

COMMON_PACKAGE = "podkit_common"


def load_package_schemas(package: str) -> dict[str, dict[str, Any]]:
    """All schemas shipped by ``package``, keyed by their ``$id``."""
    found: dict[str, dict[str, Any]] = {}
    folder = resources.files(package) / "schemas"
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        schema = loads(entry.read_bytes(), what=f"{package}/schemas/{entry.name}")
        sid = schema.get("$id")
        if not isinstance(sid, str) or not sid.startswith("urn:podkit:"):
            raise ValueError(f"{package}/schemas/{entry.name}: $id must be a urn:podkit: URN")
        found[sid] = schema
    return found


class SchemaSet:
    """The schemas of some packages (always including podkit_common's shared ones)."""

    def __init__(self, packages: Iterable[str]) -> None:
        self.packages = [COMMON_PACKAGE, *(p for p in packages if p != COMMON_PACKAGE)]

    @cached_property
    def schemas(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for package in self.packages:
            merged.update(load_package_schemas(package))
        return merged

    def own(self, package: str) -> dict[str, dict[str, Any]]:
        return load_package_schemas(package)

    def resolve_name(self, name: str) -> str:
        """Accept a full ``$id`` or its last component (``image`` for ``urn:podkit:x:image``)."""
        if name in self.schemas:
            return name
        matches = [sid for sid in self.schemas if sid.rsplit(":", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(name)

    @cached_property
    def _registry(self) -> Any:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        return Registry().with_resources(
            (sid, Resource.from_contents(schema, default_specification=DRAFT202012))
            for sid, schema in self.schemas.items()
        )

    def validator(self, schema_id: str) -> Any:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.schemas[schema_id], registry=self._registry)

    def errors(self, doc: Any, schema_id: str) -> list[str]:
        """Every violation of ``schema_id`` in ``doc``, as ``path: message`` lines."""
        out = []
        for err in self.validator(schema_id).iter_errors(doc):
            where = "/".join(str(p) for p in err.absolute_path) or "(document)"
            out.append(f"{where}: {err.message}")
        return out

    def validate(self, doc: Any, schema_id: str, *, what: str = "input document") -> None:
        """Raise InvalidDocument naming the first violations of ``schema_id``."""
        problems = self.errors(doc, schema_id)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise InvalidDocument(f"{what} does not match {schema_id}: "
                                  + "; ".join(problems[:3]) + more)
