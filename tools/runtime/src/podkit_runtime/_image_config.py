"""The shape check of an image's config before a bundle is built from it.

An image's config comes from a registry or an archive anyone may have written; the
bundle code reads its fields as the OCI image spec types them. A field of another type
("Env": [[]], "User": 5) is refused here as an invalid document, with the field's name,
instead of failing somewhere inside the spec builder.
"""

from __future__ import annotations

from podkit_common.errors import InvalidDocument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

_STRINGS = ("User", "WorkingDir", "StopSignal", "Hostname", "Domainname")
_STRING_LISTS = ("Env", "Entrypoint", "Cmd", "OnBuild", "Shell")
_OBJECTS = ("Labels", "ExposedPorts", "Volumes", "Healthcheck")


def check_image_config(doc: dict[str, Any]) -> None:
    """Raise InvalidDocument when ``doc``'s image config has a field of the wrong type."""
    image = doc.get("image")
    if image is None:
        return
    config = image.get("config") if isinstance(image, dict) else image
    if config is None:
        return
    if not isinstance(config, dict):
        raise _bad("image.config", "an object")
    inner = config.get("config")
    if inner is None:
        return
    if not isinstance(inner, dict):
        raise _bad("image.config.config", "an object")
    for key in _STRINGS:
        if inner.get(key) is not None and not isinstance(inner[key], str):
            raise _bad(key, "a string")
    for key in _STRING_LISTS:
        value = inner.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            raise _bad(key, "a list of strings")
    for key in _OBJECTS:
        if inner.get(key) is not None and not isinstance(inner[key], dict):
            raise _bad(key, "an object")
    labels = inner.get("Labels") or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise _bad("Labels", "an object of strings")
    health = inner.get("Healthcheck") or {}
    test = health.get("Test")
    if test is not None and not (isinstance(test, list) and all(isinstance(v, str) for v in test)):
        raise _bad("Healthcheck.Test", "a list of strings")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        value = health.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value < 2**63):
            raise _bad(f"Healthcheck.{key}", "a non-negative integer")


def _bad(field: str, what: str) -> InvalidDocument:
    return InvalidDocument(f"image config: {field} must be {what}",
                           hint="the image's config does not follow the OCI image spec; "
                                "rebuild the image")
