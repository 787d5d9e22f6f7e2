"""KEY=VALUE option values (podman's --label, --annotation, --opt), parsed one way."""

from __future__ import annotations


def key_values(items: list[str] | tuple[str, ...] | None, option: str, *,
               need_value: bool = False) -> dict[str, str]:
    """["a=1", "b"] -> {"a": "1", "b": ""}; a missing key (or, with ``need_value``, a
    missing "=") is a UsageError naming ``option``."""
    out = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not key or (need_value and not eq):
            from podkit_common.errors import UsageError

            raise UsageError(f"invalid {option} {item!r}", hint=f"use {option} KEY=VALUE")
        out[key] = value
    return out
