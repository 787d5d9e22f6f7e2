"""One JSON document in, one JSON document out (orjson); JSON lines for listings.

stdout carries exactly one document per invocation, or one document per line for
listings; nothing else is ever printed there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO

import orjson

from podkit_common.errors import InvalidDocument

#: Documents larger than this are refused rather than read into memory.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def loads(data: bytes | str, *, what: str = "input") -> Any:
    """Parse JSON, turning a syntax error into InvalidDocument."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"{what} is not valid JSON: {exc}") from None


def dumps(doc: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_NON_STR_KEYS
    if pretty:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(doc, option=option)


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
        out.write(orjson.dumps(doc) + b"\n")
        n += 1
    out.flush()
    return n
