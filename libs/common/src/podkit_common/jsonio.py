"""One JSON document in, one JSON document out; JSON lines for listings.

stdout carries exactly one document per invocation, or one document per line for
listings; nothing else is ever printed there.

The stdlib ``json`` (its C scanner and encoder) rather than orjson: importing orjson
cost ~20-40 ms of every start (it imports uuid, platform, dataclasses, inspect, ast,
datetime and json itself), more than it saves on podkit's small documents. The output
is orjson's: compact (``{"a":1}``) or indented by two, UTF-8 unescaped, non-str keys
(int, float, bool, None) written as strings. One difference: a float smaller than 1e-4
(not 0) is written as Python writes it (``1e-05``, ``1e-07`` where orjson wrote
``0.00001``, ``1e-7``); both parse to the same number. Input is strict JSON: NaN,
Infinity, numbers that overflow a double, invalid UTF-8, a byte order mark and lone
surrogate escapes are refused, as orjson refused them; integers of any size are kept
exact (orjson turned those past 64 bits into floats).

The ``json`` package itself is not imported on the way of a valid document: its
modules import ``re`` (and so ``enum``), ~10 ms of a cold start on these machines.
Compact documents go through ``_json``'s C scanner and encoder directly, the ones
``json`` uses; the pretty form (json's pure-Python indenting encoder) and the message
of a syntax error (the C scanner raises json.decoder's error type) import ``json``.
"""

from __future__ import annotations

import _json
import os
import sys

from podkit_common.errors import InvalidDocument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, BinaryIO

#: Documents larger than this are refused rather than read into memory.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_INF = float("inf")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if value == _INF or value == -_INF:
        raise ValueError(f"number {text[:40]} is infinity when parsed as a double")
    return value


def _encodable(obj: object) -> Any:
    """What orjson wrote for the non-JSON types it knew: records and dataclasses as
    objects, enums as their value, dates and times in ISO 8601, UUIDs as strings."""
    cls = type(obj)
    fields = getattr(cls, "__record_fields__", None)
    if fields is not None:
        return {f.name: getattr(obj, f.name) for f in fields}
    fields = getattr(cls, "__dataclass_fields__", None)
    if fields is not None and not isinstance(obj, type):
        kind = getattr(sys.modules.get("dataclasses"), "_FIELD", None)
        return {name: getattr(obj, name) for name, f in fields.items()
                if getattr(f, "_field_type", kind) is kind}
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(obj, enum.Enum):
        return obj.value
    if cls.__module__ == "datetime" and hasattr(obj, "isoformat"):
        return obj.isoformat()
    if cls.__module__ == "uuid" and cls.__name__ == "UUID":
        return str(obj)
    raise TypeError(f"Type is not JSON serializable: {cls.__name__}")


class _Context:
    """What ``_json.make_scanner`` reads: json.JSONDecoder's settings for strict JSON
    with exact integers, finite floats and no NaN/Infinity."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(_parse_float)
    parse_int = int
    parse_constant = staticmethod(_refuse_constant)


_scan = _json.make_scanner(_Context)
_WHITESPACE = " \t\n\r"  # json's: [ \t\n\r]*


def _decode(text: str) -> Any:
    """json.JSONDecoder(...).decode(text) for a valid document, without ``json``; for an
    invalid one, json's own decoder says why (the C scanner cannot: it raises the error
    type of json.decoder, a module not imported here)."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        doc, end = _scan(text, start)
        valid = not text[end:].strip(_WHITESPACE)
    except RecursionError:
        raise
    except Exception:  # StopIteration, SystemError (no json.decoder), ValueError
        valid = False
    if not valid:
        import json

        return json.JSONDecoder(parse_float=_parse_float,
                                parse_constant=_refuse_constant).decode(text)
    return doc


def _encode_compact(doc: Any) -> str:
    """json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
    default=_encodable).encode(doc), through the C encoder json would use for it."""
    if isinstance(doc, str):
        return _json.encode_basestring(doc)
    encode = _json.make_encoder({}, _encodable, _json.encode_basestring, None, ":", ",",
                                False, False, False)  # markers: fresh for each document
    return "".join(encode(doc, 0))


class _NotPlain(Exception):
    """A value :func:`_pretty_plain` leaves to ``json``'s own encoder."""


#: nesting beyond this (or a cycle) goes to json's encoder, for its exact error
_PRETTY_DEPTH = 200


def _pretty_plain(obj: Any, out: list[str], level: int) -> None:
    """Append json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)'s text for
    ``obj`` to ``out``: the same bytes, for dicts with str keys, lists, str, int, finite
    float, bool and None; anything else raises _NotPlain."""
    cls = type(obj)
    if cls is str:
        out.append(_json.encode_basestring(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif cls is int:
        out.append(int.__repr__(obj))
    elif cls is float:
        if obj != obj or obj in (_INF, -_INF):
            raise _NotPlain
        out.append(float.__repr__(obj))
    elif cls is dict or cls is list:
        if not obj:
            out.append("{}" if cls is dict else "[]")
            return
        if level >= _PRETTY_DEPTH:
            raise _NotPlain
        inner = "\n" + "  " * (level + 1)
        out.append("{" if cls is dict else "[")
        first = True
        if cls is dict:
            for key, value in obj.items():
                if type(key) is not str:
                    raise _NotPlain
                out.append(inner if first else "," + inner)
                first = False
                out.append(_json.encode_basestring(key))
                out.append(": ")
                _pretty_plain(value, out, level + 1)
        else:
            for value in obj:
                out.append(inner if first else "," + inner)
                first = False
                _pretty_plain(value, out, level + 1)
        out.append("\n" + "  " * level + ("}" if cls is dict else "]"))
    else:
        raise _NotPlain


def _encode_pretty(doc: Any) -> str:
    """json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2,
    default=_encodable).encode(doc): plain documents (every state file) written here,
    the rest (records, tuples, non-str keys, NaN, cycles) by json's encoder."""
    out: list[str] = []
    try:
        _pretty_plain(doc, out, 0)
    except _NotPlain:
        import json

        return json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2,
                                default=_encodable).encode(doc)
    return "".join(out)


def loads(data: bytes | bytearray | memoryview | str, *, what: str = "input") -> Any:
    """Parse JSON, turning a syntax error into InvalidDocument."""
    try:
        text = data if isinstance(data, str) else str(data, "utf-8")
        if text[:1] == "\ufeff":
            raise ValueError("a byte order mark (BOM) is not supported")
        doc = _decode(text)
        if "\\u" in text and ("\\ud" in text or "\\uD" in text):
            try:  # an escaped surrogate pair is one character; a lone one is refused
                _encode_compact(doc).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a lone surrogate escape (\\udXXX) is not text") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InvalidDocument(f"{what} is not valid JSON: {reason}") from None
    return doc


def dumps(doc: Any, *, pretty: bool = False) -> bytes:
    """``doc`` as UTF-8 JSON: compact, or indented by two with ``pretty``. Anything JSON
    cannot carry (a lone surrogate, a cycle, an unknown type) raises TypeError, as
    orjson's JSONEncodeError did; so do NaN and infinity, which orjson wrote as null
    (a document must not lose a value silently)."""
    try:
        return (_encode_pretty(doc) if pretty else _encode_compact(doc)).encode("utf-8")
    except ValueError as exc:  # NaN, a cycle, a surrogate (UnicodeEncodeError)
        raise TypeError(f"cannot write JSON: {exc}") from None


def read_document(source: str | os.PathLike[str] | None = "-", *,
                  stream: BinaryIO | None = None) -> dict[str, Any]:
    """Read one JSON object from ``source`` (a path, or ``-``/None for stdin)."""
    if source in (None, "-"):
        stream = stream if stream is not None else sys.stdin.buffer
        if stream.isatty():
            raise InvalidDocument("no document on stdin (it is a terminal)",
                                  hint="pipe in the previous stage's output, or pass a file")
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
        what = "stdin"
    else:
        what = os.fspath(source)
        try:
            with open(source, "rb") as fh:
                data = fh.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise InvalidDocument(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"{what}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    if not data.strip():
        raise InvalidDocument(f"{what} is empty; expected one JSON document")
    doc = loads(data, what=what)
    if not isinstance(doc, dict):
        raise InvalidDocument(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def write_document(doc: Any, stream: BinaryIO | None = None, *, pretty: bool = False) -> None:
    """Write one document and a newline to stdout (or ``stream``)."""
    out = stream if stream is not None else sys.stdout.buffer
    out.write(dumps(doc, pretty=pretty) + b"\n")
    out.flush()


def write_lines(docs: Iterable[Any], stream: BinaryIO | None = None) -> int:
    """Write one compact document per line; return how many were written."""
    out = stream if stream is not None else sys.stdout.buffer
    n = 0
    for doc in docs:
        out.write(dumps(doc) + b"\n")
        n += 1
    out.flush()
    return n
