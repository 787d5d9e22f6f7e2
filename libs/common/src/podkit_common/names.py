"""podman's rule for the names of containers, pods and networks: ``[a-zA-Z0-9]
[a-zA-Z0-9_.-]*`` (libpod's ``define.NameRegex``), checked without ``re``: compiling a
pattern imports re and enum, milliseconds of a cold start for one short string. Unlike
``re.match(r"^...$")``, whose ``$`` also matches before a final newline, a name with a
newline is refused."""

from __future__ import annotations

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")
#: podman's wording of the rule, for messages
PATTERN = "[a-zA-Z0-9][a-zA-Z0-9_.-]*"


def valid_name(name: object) -> bool:
    """Does ``name`` follow podman's name rule (pure)?"""
    return (isinstance(name, str) and name != "" and name[0] in _FIRST
            and _REST.issuperset(name))
