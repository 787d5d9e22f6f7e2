"""podkit_common.jsonio on the stdlib json: the bytes orjson wrote, and strict input."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podkit_common import errors, jsonio
from podkit_common.records import record


def test_compact_output_is_utf8_without_spaces():
    doc = {"a": 1, "é": [True, None, 1.5, "x\n\x1f\"\\/"], "e": {}, "l": []}
    assert jsonio.dumps(doc) == (b'{"a":1,"\xc3\xa9":[true,null,1.5,"x\\n\\u001f\\"\\\\/"],'
                                 b'"e":{},"l":[]}')


def test_pretty_output_indents_by_two():
    assert jsonio.dumps({"a": [1, {"b": None}], "c": {}, "d": []}, pretty=True) == (
        b'{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": {},\n  "d": []\n}')


def test_non_string_keys_are_written_as_strings():
    assert jsonio.dumps({1: "a", None: "b", 2.5: "c", False: "d"}) == (
        b'{"1":"a","null":"b","2.5":"c","false":"d"}')


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "\ud800", {(1, 2): 3}, b"x",
                                   object()])
def test_what_json_cannot_carry_is_a_type_error(value):
    with pytest.raises(TypeError):
        jsonio.dumps({"v": value})


def test_records_are_written_as_objects():
    @record(frozen=True)
    class Point:
        x: int
        y: str = "b"

    assert jsonio.dumps([Point(1)]) == b'[{"x":1,"y":"b"}]'


@pytest.mark.parametrize("data", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"1e400",
                                  b'"\\ud800"', b'["\\udc00\\ud800"]', b"\xef\xbb\xbf{}",
                                  b'"\xed\xa0\x80"', b"\xff", b"[" * 5000 + b"]" * 5000,
                                  b"1" * 5000, b'{"a":1}{"b":2}', b"\x0c{}", b""])
def test_input_that_is_not_strict_json_is_refused(data):
    with pytest.raises(errors.InvalidDocument, match="is not valid JSON"):
        jsonio.loads(data, what="doc")


def test_input_keeps_big_integers_and_surrogate_pairs():
    assert jsonio.loads(b'[18446744073709551616, "\\ud83d\\ude00", 1e300]') == [
        2**64, "\U0001f600", 1e300]
    assert jsonio.loads(memoryview(b'{"a": 1}')) == {"a": 1}
    assert jsonio.loads(' {"a": "\\u00e9"}\n') == {"a": "é"}


def test_importing_jsonio_loads_no_orjson():
    code = "import sys, podkit_common.jsonio; print('orjson' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


_keys = st.one_of(st.text(max_size=8), st.integers(-50, 50), st.booleans(), st.none())
# Floats below 1e-4 differ in form only (Python's 1e-05 for orjson's 0.00001): left out.
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: f == 0 or abs(f) >= 1e-4)
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), _floats, st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=10)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_values)
def test_output_is_byte_identical_to_orjson(value):
    """What the stages wrote with orjson (while it is still installed to compare with)."""
    orjson = pytest.importorskip("orjson")
    option = orjson.OPT_NON_STR_KEYS
    assert jsonio.dumps(value) == orjson.dumps(value, option=option)
    assert jsonio.dumps(value, pretty=True) == orjson.dumps(
        value, option=option | orjson.OPT_INDENT_2)
    assert jsonio.loads(jsonio.dumps(value)) == orjson.loads(orjson.dumps(value, option=option))


_plain_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
              allow_infinity=False), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(_plain_values)
def test_the_json_free_paths_write_what_json_writes(value):
    """The compact (C encoder) and pretty (own) writers against json itself, and the
    C scanner's reading of both."""
    import json

    assert jsonio.dumps(value) == json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert jsonio.dumps(value, pretty=True) == json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=2).encode()
    assert jsonio.loads(jsonio.dumps(value, pretty=True)) == value


def test_a_cycle_and_deep_nesting_still_get_jsons_answers():
    loop: list = []
    loop.append(loop)
    for pretty in (False, True):
        with pytest.raises(TypeError, match="Circular reference"):
            jsonio.dumps(loop, pretty=pretty)
    deep: list = []
    for _ in range(500):
        deep = [deep]
    assert jsonio.loads(jsonio.dumps(deep, pretty=True)) == deep
    assert jsonio.dumps((1, 2), pretty=True) == b"[\n  1,\n  2\n]"


def test_valid_documents_import_neither_json_nor_re():
    """json's modules import re (and enum): ~10 ms of a cold start that a valid document
    does not need; an invalid one imports json for its message."""
    code = ("import sys; from podkit_common import jsonio\n"
            "doc = jsonio.loads(b' {\"a\": [1, 2.5, null, \"\\\\u00e9\"]} ')\n"
            "jsonio.dumps(doc); jsonio.dumps(doc, pretty=True)\n"
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))\n"
            "try:\n    jsonio.loads(b'[1,')\nexcept Exception as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(sys.path)}).stdout
    assert out.splitlines() == [
        "[]", "input is not valid JSON: Expecting value: line 1 column 4 (char 3)"]
