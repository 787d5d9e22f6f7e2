"""registries.d: where an image's signatures are kept (containers-registries.d(5)).

Every ``*.yaml`` file of the directory is read and merged; a namespace (or
``default-docker``) defined twice is an error, as in containers/image::

    default-docker:
      lookaside: https://sigs.example.com/sigstore      # "sigstore" is the old spelling
    docker:
      registry.example.com/team:
        lookaside: file:///srv/sigstore
        use-sigstore-attachments: true

The directory is ``--registries-d DIR``, else ``~/.config/containers/registries.d`` if it
exists, else ``/etc/containers/registries.d``. An image's namespace is looked up most
specific first (``host/repo:tag``, ``host/repo``, ..., ``host``, ``*.domain``), then
``default-docker``; with no lookaside configured at all, podman's built-in default
(``file:///var/lib/containers/sigstore`` for root) applies.

There is no YAML library among podkit's dependencies, so this reads the subset these
files use: nested block mappings of scalars, comments, quoted keys and values. Anything
else (sequences, anchors, flow collections, block scalars) is refused with its line number.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from podkit_common.errors import InvalidDocument, from_os_error
from podkit_common.records import field, record

SYSTEM_DIR = "/etc/containers/registries.d"
USER_DIR = ".config/containers/registries.d"
ROOT_LOOKASIDE = "file:///var/lib/containers/sigstore"
USER_LOOKASIDE = ".local/share/containers/sigstore"
#: A registries.d file is configuration: a few kilobytes.
MAX_FILE_BYTES = 1024 * 1024

_HINT = "fix the registries.d file; see containers-registries.d(5)"
_NAMESPACE_KEYS = ("lookaside", "lookaside-staging", "sigstore", "sigstore-staging",
                   "use-sigstore-attachments")


@record(frozen=True)
class Namespace:
    """The settings of one ``docker`` namespace or of ``default-docker``."""

    lookaside: str | None = None
    use_sigstore_attachments: bool | None = None


@record
class SignatureStorage:
    """The merged registries.d configuration; ``sources`` lists the files read."""

    default: Namespace | None = None
    docker: dict[str, Namespace] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    directory: str | None = None

    def lookaside_for(self, scopes: list[str], *, euid: int | None = None,
                      home: str | None = None) -> str:
        """The lookaside base URL for an image with these scopes (most specific first)."""
        for scope in scopes:
            ns = self.docker.get(scope)
            if ns is not None and ns.lookaside:
                return ns.lookaside
        if self.default is not None and self.default.lookaside:
            return self.default.lookaside
        if (os.geteuid() if euid is None else euid) == 0:
            return ROOT_LOOKASIDE
        return "file://" + os.path.join(home or os.path.expanduser("~"), USER_LOOKASIDE)

    def use_sigstore_attachments(self, scopes: list[str]) -> bool:
        """Whether to look for ``sha256-<hex>.sig`` attachments for these scopes."""
        for scope in scopes:
            ns = self.docker.get(scope)
            if ns is not None and ns.use_sigstore_attachments is not None:
                return ns.use_sigstore_attachments
        if self.default is not None and self.default.use_sigstore_attachments is not None:
            return self.default.use_sigstore_attachments
        return False


def registries_d_dir(explicit: str | os.PathLike[str] | None = None, *,
                     home: str | None = None) -> Path:
    """The registries.d directory podman would use (see the module docstring)."""
    if explicit is not None:
        return Path(explicit)
    user = Path(home or os.path.expanduser("~")) / USER_DIR
    if user.exists():
        return user
    return Path(SYSTEM_DIR)


def load_registries_d(explicit: str | os.PathLike[str] | None = None, *,
                      home: str | None = None) -> SignatureStorage:
    """Read and merge the ``*.yaml`` files of the registries.d directory.

    A missing directory is an empty configuration, except an explicit one, which must exist.
    """
    directory = registries_d_dir(explicit, home=home)
    storage = SignatureStorage(directory=str(directory))
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".yaml"))
    except FileNotFoundError:
        if explicit is not None:
            raise InvalidDocument(f"registries.d directory {directory} does not exist",
                                  hint="pass an existing directory to --registries-d") from None
        return storage
    except OSError as exc:
        raise from_os_error(exc, f"read registries.d directory {directory}") from exc
    where: dict[str, str] = {}
    for name in names:
        path = directory / name
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            continue  # removed between listing and reading
        except OSError as exc:
            raise from_os_error(exc, f"read registries.d file {path}") from exc
        if len(data) > MAX_FILE_BYTES:
            raise InvalidDocument(f"registries.d file {path} is larger than {MAX_FILE_BYTES} "
                                  "bytes", hint=_HINT)
        _merge(storage, parse_registries_yaml(data, str(path)), str(path), where)
        storage.sources.append(str(path))
    return storage


def _merge(storage: SignatureStorage, doc: dict[str, Any], path: str,
           where: dict[str, str]) -> None:
    default = doc.get("default-docker")
    if default is not None:
        if "default-docker" in where:
            raise InvalidDocument(f'registries.d: "default-docker" is defined both in '
                                  f'{where["default-docker"]} and {path}', hint=_HINT)
        storage.default = _namespace(default, f"{path}: default-docker")
        where["default-docker"] = path
    docker = doc.get("docker")
    if docker is None:
        return
    if not isinstance(docker, dict):
        raise InvalidDocument(f"{path}: docker: must be a mapping of namespaces", hint=_HINT)
    for name, value in docker.items():
        if name in storage.docker:
            raise InvalidDocument(f'registries.d: "docker" namespace {name!r} is defined both '
                                  f"in {where['docker:' + name]} and {path}", hint=_HINT)
        storage.docker[name] = _namespace(value, f"{path}: docker: {name}")
        where["docker:" + name] = path


def _namespace(value: Any, where: str) -> Namespace:
    if value is None:
        return Namespace()
    if not isinstance(value, dict):
        raise InvalidDocument(f"{where}: must be a mapping", hint=_HINT)
    for key in _NAMESPACE_KEYS[:4]:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidDocument(f"{where}: {key} must be a URL string", hint=_HINT)
    attachments = value.get("use-sigstore-attachments")
    if attachments is not None and not isinstance(attachments, bool):
        raise InvalidDocument(f"{where}: use-sigstore-attachments must be true or false",
                              hint=_HINT)
    return Namespace(value.get("lookaside") or value.get("sigstore") or None, attachments)


# --- the YAML subset -------------------------------------------------------------------

_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULLS = ("", "~", "null", "Null", "NULL")
_KEY_RE = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'"""
                     r"""|(?:[^\s'":]|:(?=\S))(?:[^:]|:(?=\S))*?)\s*:(?:\s+|$)""")


def parse_registries_yaml(data: bytes, where: str) -> dict[str, Any]:
    """Parse the block-mapping YAML subset of registries.d files into nested dicts."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDocument(f"{where}: not UTF-8 text", hint=_HINT) from None
    root: dict[str, Any] = {}
    # (indent, mapping) from the outermost; a key without a value opens a child mapping.
    stack: list[tuple[int | None, dict[str, Any]]] = [(None, root)]
    pending: tuple[int, dict[str, Any], str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip() or (number == 1 and line.strip() == "---"):
            continue

        def bad(why: str, number: int = number) -> InvalidDocument:
            return InvalidDocument(f"{where}:{number}: {why}", hint=_HINT)

        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise bad("tabs are not allowed for indentation")
        indent = len(line) - len(line.lstrip(" "))
        body = line[indent:]
        if body.startswith(("- ", "---", "...")) or body == "-":
            raise bad("sequences and multiple documents are not supported here")
        match = _KEY_RE.match(body)
        if match is None:
            raise bad(f"expected 'key: value', got {body!r}")
        key = _scalar_text(match.group(1), bad)
        value_text = body[match.end():].strip()
        if pending is not None:
            parent_indent, parent, parent_key = pending
            if indent > parent_indent:
                child: dict[str, Any] = {}
                parent[parent_key] = child
                stack.append((indent, child))
            pending = None
        if stack[0][0] is None:
            stack[0] = (indent, root)
        while len(stack) > 1 and indent < (stack[-1][0] or 0):
            stack.pop()
        if indent != stack[-1][0]:
            raise bad("inconsistent indentation")
        mapping = stack[-1][1]
        if key in mapping:
            raise bad(f"duplicate key {key!r}")
        if value_text == "":
            mapping[key] = None
            pending = (indent, mapping, key)
        else:
            mapping[key] = _value(value_text, bad)
    return root


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _scalar_text(token: str, bad: Any) -> str:
    if token.startswith('"'):
        try:
            return token[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            raise bad(f"bad escape in {token}") from None
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token[0] in "&*!|>%@`{[":
        raise bad(f"unsupported YAML syntax {token!r} (quote the text)")
    return token.strip()


def _value(text: str, bad: Any) -> Any:
    if text == "{}":
        return {}
    if text[0] in "\"'":
        if len(text) < 2 or text[-1] != text[0]:
            raise bad(f"unterminated quoted value {text}")
        return _scalar_text(text, bad)
    value = _scalar_text(text, bad)
    if value in _NULLS:
        return None
    if value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    return value
