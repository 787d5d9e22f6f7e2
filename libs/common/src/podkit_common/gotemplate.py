"""podman's ``--format``: Go text/template over plain JSON data, and Go's tabwriter.

    render_rows(fmt, rows, default=..., headers=...)   listings (images, ps, network ls)
    render_one(fmt, obj)                                inspect-style, one object

What podman 4.3 (containers/common pkg/report) does, and so what this does:

- ``json`` prints the rows as a JSON array indented by four spaces.
- ``table`` alone means the command's default table (``default``).
- ``table {{.A}}\\t{{.B}}`` prints a header line (each field's name upper-cased with its
  CamelCase split by spaces, ``{{.CreatedAt}}`` -> ``CREATED AT``, unless the command
  overrides it: ``{{.ID}}`` -> ``IMAGE ID`` for images) and a line per row, aligned like
  Go's ``tabwriter.NewWriter(w, 12, 2, 2, ' ', 0)``. In a table template the literal
  two characters ``\\t`` and ``\\n`` and every space become tabs and newlines (so
  ``table {{.ID}} {{.Tag}}`` has two columns), as podman 4.3 does.
- Anything else prints one line per row, no header, no alignment; ``\\t``/``\\n``
  written as two characters become a tab/newline; a newline ends the template unless
  it ends with one already.

The template language is the part of Go's text/template scripts use: ``{{.Field}}``,
``{{.A.B}}``, ``{{.}}``, ``$`` and ``$var`` (``{{$x := .A}}``,
``{{range $k, $v := .Labels}}``), pipelines (``{{.Names | join ","}}``),
``if``/``else if``/``else``/``with``/``range``/``end``, ``{{- trim -}}`` markers,
comments, and the functions ``json``, ``join``, ``index``, ``len``, ``upper``,
``lower``, ``title``, ``split``, ``truncate``, ``pad``, ``printf``, ``print``,
``println``, ``eq``/``ne``/``lt``/``le``/``gt``/``ge``, ``and``/``or``/``not``,
``slice``. Values print as Go's ``fmt`` prints them (lists ``[a b]``, maps
``map[k:v]``, a missing map key ``<no value>``, null ``<nil>``).

Rows are dicts keyed by podman's Go field names. A dict is a Go struct: an unknown field
is podman's error ``can't evaluate field X in type T`` (exit 125 at ``pod``). Fields
listed in :data:`MAP_FIELDS` (Labels, Annotations, Options, ...) hold Go maps, where a
missing key prints ``<no value>``. A field is also found under its snake_case JSON name
(``.NetworkInterface`` reads ``network_interface``), since some podman documents (the
network ones) print JSON names but are templated with Go names.

This module imports nothing heavy: ``pod ... --version`` stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from podkit_common._gotemplate_funcs import (
    _FUNCS,
    _NOARG,
    MISSING,
    ZERO,
    _CallError,
    _Missing,
    _norm,
    _truth,
    _type_name,
    go_sprintf,
    go_str,
)
from podkit_common._gotemplate_parse import TemplateError, _Parser

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

__all__ = ["MAP_FIELDS", "MISSING", "TemplateError", "go_json", "go_sprintf", "go_str",
           "header_name", "headers_for", "is_json", "normalize", "render_one", "render_rows",
           "tabwrite"]

#: Go map-typed fields: a missing key prints "<no value>" instead of failing.
MAP_FIELDS = frozenset({
    "Labels", "Annotations", "Options", "ExposedPorts", "Volumes", "Networks", "labels",
    "options", "ipam_options", "annotations", "DriverOpts", "IPAMOptions", "Sysctls",
})


# --------------------------------------------------------------------------- headers


def _camel_split(name: str) -> list[str]:
    """fatih/camelcase's split as c/common uses it: runs of one letter class, an upper
    run followed by lower case gives its last letter to the next word (IPAddress ->
    IP Address)."""
    kinds: list[list[str]] = []
    for ch in name:
        kind = "l" if ch.islower() else "u" if ch.isupper() else "d" if ch.isdigit() else "o"
        if kinds and kinds[-1][0] == kind:
            kinds[-1][1] += ch  # type: ignore[operator]
        else:
            kinds.append([kind, ch])
    runs = [r[1] for r in kinds]
    kinds_only = [r[0] for r in kinds]
    for i in range(len(runs) - 1):
        if kinds_only[i] == "u" and kinds_only[i + 1] == "l":
            runs[i + 1] = runs[i][-1] + runs[i + 1]
            runs[i] = runs[i][:-1]
    return [r for r in runs if r]


def header_name(field: str) -> str:
    """podman's column header for a field: ``CreatedAt`` -> ``CREATED AT``."""
    return " ".join(_camel_split(field)).upper()


# --------------------------------------------------------------------------- tabwriter

def tabwrite(text: str, minwidth: int = 12, padding: int = 2) -> str:
    """Align tab-terminated cells like Go's text/tabwriter with podman's settings
    (minwidth 12, padding 2, padchar ' ', no flags): a column is as wide as its widest
    cell plus the padding, per block of consecutive lines that have that column; the
    last cell of a line (not tab-terminated) is never padded."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, cell in enumerate(cells):
                parts.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(" " * (widths[j] - len(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


class _Exec:
    def __init__(self, name: str, text: str, type_name: str, offset: int) -> None:
        self.name, self.text, self.type_name, self.offset = name, text, type_name, offset
        self.out: list[str] = []

    def fail(self, pos: int, node_text: str, what: str) -> TemplateError:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + (self.offset if line == 1 else 0)
        return TemplateError(f'template: {self.name}:{line}:{col}: executing "{self.name}" '
                             f"at <{node_text}>: {what}")

    # -- fields
    def field(self, value: Any, names: Sequence[str], is_map: bool, pos: int,
              text: str) -> Any:
        for k, name in enumerate(names):
            if isinstance(value, Mapping):
                if name in value:
                    found = value[name]
                else:
                    norm = _norm(name)
                    hit = [k2 for k2 in value if isinstance(k2, str) and _norm(k2) == norm]
                    if hit:
                        found = value[hit[0]]
                    elif is_map or self.header_mode:
                        found = MISSING
                    elif name in MAP_FIELDS:
                        found = {}
                    elif not (k == 0 and self._is_root(value)):
                        # a nested struct's field left out of the JSON (omitempty):
                        # Go prints its zero value, which we do not know; print nothing
                        found = ZERO
                    else:
                        where = self.type_name if k == 0 and self._is_root(value) \
                            else _type_name(value)
                        raise self.fail(pos, text, f"can't evaluate field {name} in type "
                                        f"{where}")
                if found is None and name in MAP_FIELDS:
                    found = {}  # a nil map prints map[]
                value, is_map = found, name in MAP_FIELDS
            elif value is None or isinstance(value, _Missing):
                if value is None:
                    raise self.fail(pos, text, f"nil pointer evaluating interface {{}}.{name}")
                return MISSING
            else:
                raise self.fail(pos, text, f"can't evaluate field {name} in type "
                                f"{_type_name(value)}")
        return value

    def _is_root(self, value: Any) -> bool:
        return any(value is r for r in self.roots)

    # -- execution
    def run(self, nodes: list[Any], dot: Any, dot_is_map: bool,
            scopes: list[dict[str, Any]]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                self.out.append(node[1])
            elif kind == "action":
                value = self.pipe(node[1], dot, dot_is_map, scopes)
                if not node[1][1]:
                    self.out.append(go_str(value))
            elif kind in ("if", "with"):
                inner = [*scopes, {}]
                value = self.pipe(node[1], dot, dot_is_map, inner)
                if _truth(value):
                    self.run(node[2], value if kind == "with" else dot,
                             False if kind == "with" else dot_is_map, inner)
                else:
                    self.run(node[3], dot, dot_is_map, inner)
            elif kind == "range":
                self.range(node, dot, dot_is_map, scopes)

    def range(self, node: Any, dot: Any, dot_is_map: bool,
              scopes: list[dict[str, Any]]) -> None:
        decl, _, cmds = node[1]
        value = self.pipe(([], False, cmds), dot, dot_is_map, scopes)
        if isinstance(value, Mapping):
            pairs: Iterable[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value, key=str)]
            elem_is_map = False
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
            elem_is_map = False
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
            elem_is_map = False
        elif value is None or isinstance(value, _Missing):
            pairs = []
            elem_is_map = False
        else:
            raise self.fail(0, "range", f"range can't iterate over {go_str(value)}")
        pairs = list(pairs)
        if not pairs:
            self.run(node[3], dot, dot_is_map, [*scopes, {}])
            return
        for key, elem in pairs:
            scope: dict[str, Any] = {}
            if len(decl) == 1:
                scope[decl[0]] = elem
            elif len(decl) == 2:
                scope[decl[0]], scope[decl[1]] = key, elem
            self.run(node[2], elem, elem_is_map, [*scopes, scope])

    def pipe(self, pipe: Any, dot: Any, dot_is_map: bool,
             scopes: list[dict[str, Any]]) -> Any:
        decl, is_decl, cmds = pipe
        value: Any = _NOARG
        for cmd in cmds:
            value = self.command(cmd, dot, dot_is_map, scopes, value)
        if is_decl:
            for name in decl:
                for scope in reversed(scopes):
                    if name in scope:
                        scope[name] = value
                        break
                else:
                    scopes[-1][name] = value
        return value

    def command(self, cmd: list[Any], dot: Any, dot_is_map: bool,
                scopes: list[dict[str, Any]], final: Any) -> Any:
        head = cmd[0]
        if head[0] == "ident":
            fn = _FUNCS.get(head[1])
            if fn is None:
                raise TemplateError(f'template: {self.name}: function "{head[1]}" not defined')
            args = [self.operand(a, dot, dot_is_map, scopes) for a in cmd[1:]]
            if final is not _NOARG:
                args.append(final)
            try:
                return fn(*args)
            except _CallError as exc:
                raise self.fail(head[2], head[1], str(exc)) from None
            except TypeError:
                raise self.fail(head[2], head[1],
                                f"wrong number of args for {head[1]}") from None
        if len(cmd) > 1 or final is not _NOARG:
            text = head[4] if head[0] in ("field", "var", "pipe") and len(head) > 4 \
                else head[3] if head[0] == "field" else "."
            raise self.fail(head[2] if len(head) > 2 and isinstance(head[2], int) else 0,
                            text, "can't give argument to non-function " + text)
        return self.operand(head, dot, dot_is_map, scopes)

    def operand(self, op: Any, dot: Any, dot_is_map: bool,
                scopes: list[dict[str, Any]]) -> Any:
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "dot":
            return dot
        if kind == "field":
            return self.field(dot, op[1], dot_is_map, op[2], op[3])
        if kind == "var":
            for scope in reversed(scopes):
                if op[1] in scope:
                    base = scope[op[1]]
                    break
            else:
                raise TemplateError(f"template: {self.name}: undefined variable: {op[1]}")
            return self.field(base, op[2], False, op[3], op[4]) if op[2] else base
        if kind == "pipe":
            value = self.pipe(op[1], dot, dot_is_map, [*scopes, {}])
            return self.field(value, op[2], False, op[3], op[4]) if op[2] else value
        if kind == "ident":
            fn = _FUNCS.get(op[1])
            if fn is None:
                raise TemplateError(f'template: {self.name}: function "{op[1]}" not defined')
            try:
                return fn()
            except TypeError:
                raise self.fail(op[2], op[1], f"wrong number of args for {op[1]}") from None
        raise TemplateError(f"template: {self.name}: cannot evaluate {op!r}")

    roots: tuple[Any, ...] = ()
    #: rendering the header line: every dict is podman's map of headers
    header_mode = False


# --------------------------------------------------------------------------- public API

_RANGE_WRAPPED = re.compile(r"(?s)^\s*\{\{-?\s*range\s*\.\s*-?\}\}.*\{\{-?\s*end\s*-?\}\}\s*$")


_IS_JSON = re.compile(r"^\s*(json|\{\{\s*json\s*\.?\s*\}\})\s*$", re.IGNORECASE)


def is_json(fmt: str | None) -> bool:
    """True for ``--format json`` and ``--format '{{json .}}'``: podman prints the
    whole JSON array for both."""
    return bool(fmt) and _IS_JSON.match(fmt) is not None  # type: ignore[arg-type]


def normalize(fmt: str) -> str:
    """c/common's NormalizeFormat: ``table `` prefix dropped (its spaces become tabs),
    ``\\t``/``\\n`` escapes made real, and a final newline ensured."""
    if fmt.startswith("table "):
        text = fmt[len("table "):].replace("\\t", "\t").replace("\\n", "\n").replace(" ", "\t")
    else:
        text = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def _compile(text: str, name: str) -> list[Any]:
    return _Parser(text, name).parse()


def _execute(nodes: list[Any], text: str, data: Any, *, name: str, type_name: str,
             offset: int, dot_is_map: bool, roots: tuple[Any, ...]) -> str:
    ex = _Exec(name, text, type_name, offset)
    ex.roots = roots
    ex.header_mode = dot_is_map
    ex.run(nodes, data, dot_is_map, [{"$": data}])
    return "".join(ex.out)


def go_json(value: Any, indent: int = 4) -> str:
    """Go's ``json.MarshalIndent(v, "", indent spaces)`` plus a newline: podman's
    ``--format json`` (4 spaces) and ``inspect`` (5 spaces); ``<``, ``>``, ``&``
    escaped as Go does."""
    import json

    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _json_array(rows: Sequence[Any]) -> str:
    return go_json(list(rows))


def render_rows(fmt: str | None, rows: Sequence[Mapping[str, Any]], *,
                noheading: bool = False, default: str | None = None,
                headers: Mapping[str, str] | None = None, name: str = "report",
                type_name: str = "map[string]interface {}") -> str:
    """Render a listing the way podman's ``--format`` does (see the module doc).

    ``default`` is the command's own table template (used for ``table``, an empty or
    absent ``fmt``); ``headers`` maps each field podman knows to its column header (the
    fields of podman's reporter struct; a template field outside it heads its column
    with ``<no value>``, as podman 4.3 does); without it the header of every key of the
    rows is derived with :func:`header_name`. ``name``/``type_name`` only shape error
    messages (``template: images:1:13: ... in type images.imageReporter``).
    """
    if is_json(fmt):
        return _json_array(rows)
    if not fmt or fmt.strip() == "table":
        fmt = default or "table " + "\t".join("{{." + k + "}}" for k in (rows[0] if rows else {}))
    table = fmt.startswith("table ")
    text = normalize(fmt)
    wrapped = not _RANGE_WRAPPED.match(text) or table
    prefix = "{{range .}}" if wrapped else ""
    full = prefix + text + ("{{end -}}" if wrapped else "")
    nodes = _compile(full, name)
    out = ""
    if table and not noheading:
        keys: set[str] = set()
        for r in rows:
            keys.update(r)
        head_map = dict(headers) if headers is not None else {k: header_name(k) for k in keys}
        out = _execute(nodes, full, [head_map], name=name, type_name=type_name, offset=0,
                       dot_is_map=True, roots=())
    out += _execute(nodes, full, list(rows), name=name, type_name=type_name, offset=0,
                    dot_is_map=False, roots=tuple(rows))
    return tabwrite(out) if table else out


def render_one(fmt: str, obj: Mapping[str, Any], *, name: str = "inspect",
               type_name: str = "map[string]interface {}") -> str:
    """Render one object with an inspect-style ``--format`` (``{{.State.Status}}``);
    ``json`` prints the object as indented JSON. The result ends with a newline."""
    if is_json(fmt):
        import json

        return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"
    text = normalize(fmt)
    nodes = _compile(text, name)
    return _execute(nodes, text, obj, name=name, type_name=type_name, offset=0,
                    dot_is_map=False, roots=(obj,))


def headers_for(fields: Iterable[str], overrides: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """podman's Headers(): every field's header, then the command's overrides."""
    heads = {f: header_name(f) for f in fields}
    heads.update({k: v.upper() for k, v in (overrides or {}).items()})
    return heads
