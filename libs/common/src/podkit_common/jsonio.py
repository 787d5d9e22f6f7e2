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
"""

from __future__ import annotations

import json
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


_decoder = json.JSONDecoder(parse_float=_parse_float, parse_constant=_refuse_constant)
_compact = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                            default=_encodable)
_pretty = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2,
                           default=_encodable)


def loads(data: bytes | bytearray | memoryview | str, *, what: str = "input") -> Any:
    """Parse JSON, turning a syntax error into InvalidDocument."""
    try:
        text = data if isinstance(data, str) else str(data, "utf-8")
        if text[:1] == "\ufeff":
            raise ValueError("a byte order mark (BOM) is not supported")
        doc = _decoder.decode(text)
        if "\\u" in text and ("\\ud" in text or "\\uD" in text):
            try:  # an escaped surrogate pair is one character; a lone one is refused
                _compact.encode(doc).encode("utf-8")
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
        return (_pretty if pretty else _compact).encode(doc).encode("utf-8")
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
