"""Stdlib modules imported at their first use, not at import: a cold start's diet.

``pathlib``, which nearly every podkit module needs, imports ``re`` (and through it
``enum``), ``fnmatch``, ``ntpath`` and ``urllib.parse`` (and through it ``ipaddress``)
at its top, yet uses them only in methods a command seldom calls (glob patterns,
Windows paths, ``as_uri``). On these machines they are about 10 ms of every podkit
command's start (``python -X importtime``), paid five times by `pod-3`.

:func:`install` puts a stand-in module in ``sys.modules`` for each of them that is not
imported yet. An ``import re`` then binds the stand-in; the first attribute read from
it that it does not have imports the real module (the usual way, under the import
lock), copies the real module's namespace into the stand-in (later reads are plain
attribute reads) and leaves the real module in ``sys.modules``. ``pathlib``'s one
import-time name, ``urllib.parse.quote_from_bytes``, is preset as a function that
forwards to the real one. Code that never touches these modules never loads them;
code that does gets the real module, a moment later.

Only modules whose import has no side effect beyond defining names are deferred.
``PODKIT_NO_DEFERRED=1`` turns this off (to compare, or to rule it out).
"""

from __future__ import annotations

import os
import sys

_Module = type(sys)  # types.ModuleType, without importing types
#: deferred at install(), with the names preset in each stand-in
DEFERRED = ("re", "fnmatch", "ntpath", "urllib.parse")
#: the packages among them (``import re._parser`` needs the real ``re.__path__``)
_PACKAGES = ("re",)
#: names a stand-in has before its load: what pathlib reads at its import
_PRESET = {"urllib.parse": ("quote_from_bytes",)}
_lock = None  # an RLock, made by install()


class _StandIn(_Module):  # type: ignore[misc, valid-type]
    """A module in ``sys.modules`` until its first use loads the real one."""

    def __getattr__(self, attr: str) -> object:
        if attr == "__path__" and self.__name__ not in _PACKAGES:
            # ``from urllib.parse import quote_from_bytes`` asks: not a use, not a package
            raise AttributeError(attr)
        return getattr(_load(self), attr)


def _load(stand_in: _StandIn) -> object:
    """The real module for ``stand_in`` (imported now unless it was), its namespace
    copied into the stand-in."""
    name = stand_in.__name__
    with _lock:
        real = sys.modules.get(name)
        if real is stand_in or real is None:
            del sys.modules[name]
            try:
                __import__(name)
            except BaseException:
                sys.modules[name] = stand_in
                raise
            real = sys.modules[name]
        stand_in.__dict__.update(vars(real))
    return real


def _forward(stand_in: _StandIn, attr: str) -> object:
    def forward(*args: object, **kwargs: object) -> object:
        return getattr(_load(stand_in), attr)(*args, **kwargs)
    forward.__name__ = forward.__qualname__ = attr
    return forward


def install() -> None:
    """Defer :data:`DEFERRED` (each one not imported yet); idempotent."""
    global _lock
    if os.environ.get("PODKIT_NO_DEFERRED") == "1":
        return
    if _lock is None:
        import _thread

        _lock = _thread.RLock()
    for name in DEFERRED:
        if name in sys.modules:
            continue
        parent_name, _, child = name.rpartition(".")
        if parent_name and parent_name not in sys.modules:
            __import__(parent_name)  # urllib/__init__.py: empty
        stand_in = _StandIn(name)
        for attr in _PRESET.get(name, ()):
            setattr(stand_in, attr, _forward(stand_in, attr))
        sys.modules[name] = stand_in
        if parent_name:
            setattr(sys.modules[parent_name], child, stand_in)
