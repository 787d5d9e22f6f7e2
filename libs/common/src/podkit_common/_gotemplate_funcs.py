"""Values and functions of podkit_common.gotemplate: Go's fmt printing, printf, and
the template functions podman offers (text/template's builtins + c/common's report
functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

class _Missing:
    """A missing map key: prints as Go's "<no value>", is false in conditions."""

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


class _Zero(_Missing):
    """A struct field the JSON left out: Go's zero value, printed as nothing."""

    def __repr__(self) -> str:
        return ""


ZERO = _Zero()


def _go_float(x: float) -> str:
    """Go's %v of a float64: shortest digits, exponent form below 1e-4 or from 1e+06."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    from decimal import Decimal

    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp = len(digits) + int(exponent) - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{neg}0.{'0' * (-exp - 1)}{ds}"
    whole = ds[:exp + 1].ljust(exp + 1, "0")
    frac = ds[exp + 1:]
    return f"{neg}{whole}" + (f".{frac}" if frac else "")


def go_str(value: Any) -> str:
    """``value`` as Go's fmt prints it with %v."""
    if value is ZERO:
        return ""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(value[k])}"
                                 for k in sorted(value, key=str)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _type_name(value: Any, struct: str = "map[string]interface {}") -> str:
    if value is None or isinstance(value, _Missing):
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, Mapping):
        return struct
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value):
            return "[]string"
        return "[]interface {}"
    return type(value).__name__


def _truth(value: Any) -> bool:
    if value is None or isinstance(value, _Missing):
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, Mapping)):
        return bool(value)
    return True


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


_NOARG = object()


class _CallError(Exception):
    """A function's own failure, reported as ``error calling F: ...``."""


# --------------------------------------------------------------------------- functions

def _json(value: Any) -> str:
    from podkit_common.jsonio import dumps

    if value is MISSING:
        return "null"
    try:
        return dumps(value).decode()
    except TypeError as exc:
        raise _CallError(f"error calling json: {exc}") from None


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        if items is None or isinstance(items, _Missing):
            return ""
        raise _CallError(f"wrong type for value; expected []string; got {_type_name(items)}")
    return str(sep).join(items)


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, Mapping):
            item = item.get(key, "") if item else ""
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _CallError(f"error calling index: cannot index slice/array with type "
                                 f"{_type_name(key)}")
            if not 0 <= key < len(item):
                raise _CallError(f"error calling index: index out of range: {key}")
            item = item[key]
            if isinstance(item, str) and len(item) == 1 and not isinstance(item, bool):
                item = ord(item) if False else item
        elif item is None or isinstance(item, _Missing):
            raise _CallError("error calling index: index of untyped nil")
        else:
            raise _CallError(f"error calling index: can't index item of type "
                             f"{_type_name(item)}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, (str, list, tuple, Mapping)):
        return len(item)
    if item is None or isinstance(item, _Missing):
        return 0
    raise _CallError(f"error calling len: len of type {_type_name(item)}")


def _str_arg(fn: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _CallError(f"wrong type for value; expected string; got {_type_name(value)}")


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise _CallError(f"error calling slice: can't slice item of type {_type_name(item)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(item)
    if not (0 <= lo <= hi <= len(item)):
        raise _CallError(f"error calling slice: index out of range: {hi}")
    return item[lo:hi]


def _cmp(op: str) -> Callable[..., bool]:
    def compare(a: Any, *bs: Any) -> bool:
        if op == "eq":
            if not bs:
                raise _CallError("error calling eq: missing argument for comparison")
            return any(_norm_cmp(a) == _norm_cmp(b) for b in bs)
        b = bs[0]
        a, b = _norm_cmp(a), _norm_cmp(b)
        try:
            return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b,
                    "ge": a >= b}[op]
        except TypeError:
            raise _CallError(f"error calling {op}: incompatible types for comparison") \
                from None
    return compare


def _norm_cmp(v: Any) -> Any:
    return None if v is MISSING else v


def _and(*args: Any) -> Any:
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if _truth(a):
            return a
    return args[-1]


def _sprint(*args: Any) -> str:
    # Go's Sprint: a space between operands when neither side is a string
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use (%s %v %d %q %t %x %X %f %e %g %c %o)."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, width, prec, m.group(3) is not None or "." in m.group(0),
                               verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_type_name(a)}={go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_one(flags: str, width: str | None, prec: str | None, has_prec: bool,
                verb: str, arg: Any) -> str:
    def bad() -> str:
        return f"%!{verb}({_type_name(arg)}={go_str(arg)})"

    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb in "sv":
        text = go_str(arg) if verb == "v" or isinstance(arg, str) else None
        if text is None:
            if isinstance(arg, (list, tuple)) and all(isinstance(a, str) for a in arg):
                text = go_str(arg)
            else:
                return bad()
        if prec is not None and verb == "s":
            text = text[:int(prec)]
    elif verb == "q":
        if not isinstance(arg, str):
            return bad()
        import json

        text = json.dumps(arg, ensure_ascii=False)
    elif verb == "t":
        if not isinstance(arg, bool):
            return bad()
        text = "true" if arg else "false"
    elif verb in "dxXobc":
        if isinstance(arg, str) and verb in "xX":
            text = arg.encode().hex()
            text = text.upper() if verb == "X" else text
        elif not is_int:
            return bad()
        elif verb == "c":
            text = chr(arg)
        else:
            spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
            sign = "+" if "+" in flags else " " if " " in flags else ""
            text = format(arg, sign + spec)
            if "#" in flags and verb in "xX":
                text = ("0x" if verb == "x" else "0X") + text
    elif verb in "feEgG":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool) or is_int:
            return bad()
        p = int(prec) if prec is not None else (6 if verb in "feE" else None)
        text = format(arg, f".{p}{verb}" if p is not None else verb)
    else:
        return bad()
    if width:
        w = int(width)
        if "-" in flags:
            text = text.ljust(w)
        elif "0" in flags and verb in "dxXobfeEgG":
            neg = text.startswith("-")
            text = ("-" if neg else "") + text[1 if neg else 0:].rjust(w - neg, "0")
        else:
            text = text.rjust(w)
    return text


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    return " " * int(prefix) + _str_arg("pad", s) + " " * int(suffix)


def _truncate(s: Any, n: Any) -> str:
    s = _str_arg("truncate", s)
    return s[:int(n)]


def _title(s: Any) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(),
                  _str_arg("title", s))


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json, "join": _join, "index": _index, "len": _len, "slice": _slice,
    "upper": lambda s: _str_arg("upper", s).upper(),
    "lower": lambda s: _str_arg("lower", s).lower(),
    "title": _title, "split": lambda s, sep: _str_arg("split", s).split(sep),
    "truncate": _truncate, "pad": _pad,
    "printf": lambda fmt, *a: go_sprintf(_str_arg("printf", fmt), *a),
    "print": _sprint, "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"),
    "gt": _cmp("gt"), "ge": _cmp("ge"),
    "and": _and, "or": _or, "not": lambda a: not _truth(a),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_sprint(*a)),
}
