"""The parser half of podkit_common.gotemplate: Go text/template actions as tuples.

Nodes: ("text", s) | ("action", pipe) | ("if"|"with"|"range", pipe, body, else_body).
A pipe is (declared_vars, is_declaration, [command]); a command is a list of operands:
("field", names, pos, text) | ("dot",) | ("var", name, names, pos, text) |
("lit", value) | ("ident", name, pos) | ("pipe", pipe, names, pos, text).
"""

from __future__ import annotations

import re

from podkit_common.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


class TemplateError(UsageError):
    """A --format template that does not parse or cannot be executed (podman: 125)."""

    default_hint = "see podman's --format: {{.Field}}, table, json"


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<num>-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()|,])
""", re.VERBOSE)


class _Tok:
    __slots__ = ("glued", "kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int, glued: bool) -> None:
        self.kind, self.text, self.pos, self.glued = kind, text, pos, glued


def _lex_action(src: str, start: int, name: str, full: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    glued = False
    while i < len(src):
        m = _TOKEN.match(src, i)
        if m is None:
            raise _parse_error(name, full, start + i, f"unexpected {src[i]!r} in command")
        kind = m.lastgroup or ""
        if kind == "space":
            glued = False
        else:
            toks.append(_Tok(kind, m.group(), start + i, glued))
            glued = True
        i = m.end()
    return toks


def _parse_error(name: str, full: str, pos: int, what: str) -> TemplateError:
    line = full.count("\n", 0, pos) + 1
    return TemplateError(f"template: {name}:{line}: {what}")


_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'",
               "a": "\a", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "xuU":
                n = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(body[i + 2:i + 2 + n], 16)))
                i += 2 + n
                continue
            out.append(_GO_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text, self.name = text, name
        self.items = self._split(text)
        self.i = 0

    def _split(self, text: str) -> list[tuple[str, Any, int]]:
        items: list[tuple[str, Any, int]] = []
        pos = 0
        pending_trim = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if pending_trim:
                chunk = chunk.lstrip(" \t\r\n")
            if start < 0:
                if chunk:
                    items.append(("text", chunk, pos))
                return items
            inner_start = start + 2
            if text.startswith("- ", inner_start) or text.startswith("-\t", inner_start) \
                    or text.startswith("-\n", inner_start):
                chunk = chunk.rstrip(" \t\r\n")
                inner_start += 1
            if chunk:
                items.append(("text", chunk, pos))
            end = self._action_end(text, inner_start)
            if end < 0:
                raise _parse_error(self.name, text, start, "unclosed action")
            inner_end = end
            pending_trim = False
            if end - 1 >= inner_start and text[end - 1] == "-" and end - 2 >= inner_start \
                    and text[end - 2] in " \t\r\n":
                inner_end = end - 1
                pending_trim = True
            inner = text[inner_start:inner_end]
            stripped = inner.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise _parse_error(self.name, text, start, "unclosed comment")
            else:
                items.append(("action", _lex_action(inner, inner_start, self.name, text),
                              start))
            pos = end + 2

    def _action_end(self, text: str, i: int) -> int:
        quote = ""
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == "\\" and quote != "`":
                    i += 2
                    continue
                if ch == quote:
                    quote = ""
            elif ch in "\"`'":
                quote = ch
            elif text.startswith("}}", i):
                return i
            i += 1
        return -1

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise _parse_error(self.name, self.text, stop[1], f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], tuple[str, int, list[_Tok]] | None]:
        nodes: list[Any] = []
        while self.i < len(self.items):
            kind, value, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(("text", value))
                continue
            toks: list[_Tok] = value
            if not toks:
                raise _parse_error(self.name, self.text, pos, "missing value for command")
            head = toks[0].text if toks[0].kind == "ident" else ""
            if head in ("end", "else"):
                return nodes, (head, pos, toks[1:])
            if head in ("if", "with", "range"):
                nodes.append(self._block(head, toks[1:], pos))
            elif head in ("define", "template", "block", "break", "continue"):
                raise _parse_error(self.name, self.text, pos, f"{{{{{head}}}}} is not supported")
            else:
                nodes.append(("action", self._pipe(toks, pos)))
        return nodes, None

    def _block(self, head: str, toks: list[_Tok], pos: int) -> tuple[Any, ...]:
        pipe = self._pipe(toks, pos, allow_two=head == "range")
        body, stop = self._list()
        if stop is None:
            raise _parse_error(self.name, self.text, pos, f"unexpected EOF in {head}")
        else_body: list[Any] = []
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") \
                    and head != "range":
                # {{else if ...}} is an if nested in the else branch, sharing its {{end}}
                else_body = [self._block(rest[0].text, rest[1:], stop[1])]
            else:
                else_body, stop = self._list()
                if stop is None or stop[0] != "end":
                    raise _parse_error(self.name, self.text, pos, f"expected end in {head}")
        return (head, pipe, body, else_body)

    def _pipe(self, toks: list[_Tok], pos: int, allow_two: bool = False) -> tuple[Any, ...]:
        decl: list[str] = []
        is_decl = False
        for n in (2, 4) if allow_two else (2,):
            if len(toks) >= n and toks[n - 1].kind in ("decl", "assign") and all(
                    t.kind == "var" for t in toks[:n - 1:2]) and (
                    n == 2 or toks[1].text == ","):
                decl = [t.text for t in toks[:n - 1:2]]
                is_decl = True
                toks = toks[n:]
                break
        cmds: list[list[Any]] = [[]]
        j = 0
        while j < len(toks):
            t = toks[j]
            if t.kind == "punct" and t.text == "|":
                cmds.append([])
                j += 1
                continue
            operand, j = self._operand(toks, j, pos)
            cmds[-1].append(operand)
        if any(not c for c in cmds):
            raise _parse_error(self.name, self.text, pos, "missing command in pipeline")
        return (decl, is_decl, cmds)

    def _operand(self, toks: list[_Tok], j: int, pos: int) -> tuple[Any, int]:
        t = toks[j]
        j += 1
        if t.kind == "field":
            return ("field", t.text[1:].split("."), t.pos, t.text), j
        if t.kind == "dot":
            return ("dot",), j
        if t.kind in ("str", "raw"):
            return ("lit", _unquote(t.text)), j
        if t.kind == "char":
            return ("lit", ord(_unquote('"' + t.text[1:-1] + '"'))), j
        if t.kind == "num":
            txt = t.text
            value: Any = int(txt, 0) if re.fullmatch(r"-?(0[xX][0-9a-fA-F]+|\d+)", txt) \
                else float(txt)
            return ("lit", value), j
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return ("lit", t.text == "true"), j
            if t.text == "nil":
                return ("lit", None), j
            return ("ident", t.text, t.pos), j
        names: list[str] = []
        if t.kind == "var":
            if j < len(toks) and toks[j].kind == "field" and toks[j].glued:
                names = toks[j].text[1:].split(".")
                j += 1
            return ("var", t.text, names, t.pos, t.text + ("." + ".".join(names)
                                                           if names else "")), j
        if t.kind == "punct" and t.text == "(":
            depth, k = 1, j
            while k < len(toks) and depth:
                if toks[k].kind == "punct" and toks[k].text in "()":
                    depth += 1 if toks[k].text == "(" else -1
                k += 1
            if depth:
                raise _parse_error(self.name, self.text, t.pos, "unclosed left paren")
            inner = self._pipe(toks[j:k - 1], t.pos)
            j = k
            if j < len(toks) and toks[j].kind == "field" and toks[j].glued:
                names = toks[j].text[1:].split(".")
                j += 1
            return ("pipe", inner, names, t.pos, "(...)"), j
        raise _parse_error(self.name, self.text, t.pos, f"unexpected {t.text!r} in operand")
