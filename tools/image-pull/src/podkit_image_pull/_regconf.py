"""registries.conf: the configuration files podman reads, parsed and merged.

Files (containers-registries.conf(5)), read like containers/image does:

    --registries-conf PATH / $CONTAINERS_REGISTRIES_CONF   else ~/.config/containers/
                                                           registries.conf if it exists,
                                                           else /etc/containers/registries.conf
    drop-ins: *.conf in --registries-conf-dir DIR, else    sorted by name, later files win:
      /etc/containers/registries.conf.d and                [[registry]] by prefix, [aliases]
      ~/.config/containers/registries.conf.d               by name, other keys when present
      (only the user's dir with the user's file)

Remembered short-name choices are read (never written) from
``/var/cache/containers/short-name-aliases.conf`` for root, else
``${XDG_CACHE_HOME:-~/.cache}/containers/short-name-aliases.conf``. What a name then
resolves to, and where it is fetched from, is ``_resolve``'s job.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from podkit_common.errors import UsageError
from podkit_common.records import field, record
from podkit_image_pull._reference import _DOMAIN_RE, parse_reference

SYSTEM_REGISTRIES_CONF = Path("/etc/containers/registries.conf")
SYSTEM_REGISTRIES_CONF_DIR = Path("/etc/containers/registries.conf.d")
#: Where root's (podman's) remembered short-name choices live.
ROOT_ALIASES_FILE = Path("/var/cache/containers/short-name-aliases.conf")
SHORT_NAME_MODES = ("enforcing", "permissive", "disabled")
PULL_FROM_MIRROR = ("all", "digest-only", "tag-only")
#: podman's default without any registries.conf (containers/image: permissive).
DEFAULT_SHORT_NAME_MODE = "permissive"
_MAX_CONF_BYTES = 4 * 1024 * 1024


@record(frozen=True)
class Endpoint:
    """A place to pull from: ``host[:port][/namespace]``, possibly insecure."""

    location: str
    insecure: bool = False
    #: For mirrors only: "all" (or ""), "digest-only" or "tag-only".
    pull_from_mirror: str = ""


@record(frozen=True)
class Registry:
    """One ``[[registry]]`` table: names under ``prefix`` are fetched from ``location``."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirror_by_digest_only: bool = False
    mirrors: tuple[Endpoint, ...] = ()
    origin: str = ""


@record(frozen=True)
class Alias:
    """A short-name alias: the fully qualified repository, or None where a later file
    removed it (an empty value)."""

    value: str | None
    origin: str


@record
class RegistriesConf:
    """The merged configuration of registries.conf and its drop-ins."""

    registries: list[Registry] = field(default_factory=list)
    unqualified_search_registries: list[str] = field(default_factory=list)
    search_origin: str = ""
    short_name_mode: str = DEFAULT_SHORT_NAME_MODE
    aliases: dict[str, Alias] = field(default_factory=dict)
    #: registries.conf ``credential-helpers`` (default: the auth files only).
    credential_helpers: list[str] = field(default_factory=lambda: ["containers-auth.json"])
    #: The files that were read, in order.
    files: list[str] = field(default_factory=list)

    def find_registry(self, name: str) -> Registry | None:
        """The ``[[registry]]`` whose prefix matches ``host/repository`` longest, or None."""
        best: Registry | None = None
        for reg in self.registries:
            if prefix_match(name, reg.prefix) >= 0 and (best is None
                                                         or len(reg.prefix) > len(best.prefix)):
                best = reg
        return best


# --- files ------------------------------------------------------------------------------

def config_sources(path: str | os.PathLike[str] | None = None, *,
                   conf_dir: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[Path, bool, list[Path]]:
    """(main file, whether it was named explicitly, drop-in directories) to read."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    user_file = home / ".config/containers/registries.conf"
    user_dir = home / ".config/containers/registries.conf.d"
    given = path if path is not None else env.get("CONTAINERS_REGISTRIES_CONF") or None
    if given is not None:
        main, explicit = Path(given), True
    elif user_file.is_file():
        # The user's own file replaces the system's, drop-ins included.
        return user_file, False, [Path(conf_dir) if conf_dir is not None else user_dir]
    else:
        main, explicit = SYSTEM_REGISTRIES_CONF, False
    dirs = [Path(conf_dir)] if conf_dir is not None else [SYSTEM_REGISTRIES_CONF_DIR, user_dir]
    return main, explicit, dirs


def load_registries_conf(path: str | os.PathLike[str] | None = None, *,
                         conf_dir: str | os.PathLike[str] | None = None,
                         env: Mapping[str, str] | None = None) -> RegistriesConf | None:
    """Read and merge registries.conf and its drop-ins; None when there is no file at all.

    An explicitly named file (``path`` or ``$CONTAINERS_REGISTRIES_CONF``) must exist.
    Raises UsageError for a file that is not valid TOML or holds invalid values.
    """
    main, explicit, dirs = config_sources(path, conf_dir=conf_dir, env=env)
    conf: RegistriesConf | None = None
    try:
        text = _read(main)
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"registries.conf {main} does not exist",
                             hint="--registries-conf and $CONTAINERS_REGISTRIES_CONF must "
                                  "name an existing file") from None
    else:
        conf = RegistriesConf()
        _merge(conf, parse_registries_conf(text, str(main)), str(main))
    for drop_in in _drop_ins(dirs):
        try:
            text = _read(drop_in)
        except FileNotFoundError:
            continue  # removed since the listing
        if conf is None:
            conf = RegistriesConf()
        _merge(conf, parse_registries_conf(text, str(drop_in), drop_in=True), str(drop_in))
    return conf


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_CONF_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UsageError(f"read registries.conf {path}: {exc.strerror}") from None
    if len(data) > _MAX_CONF_BYTES:
        raise UsageError(f"registries.conf {path} is larger than {_MAX_CONF_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"registries.conf {path} is not UTF-8 text") from None


def _drop_ins(dirs: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in dirs:
        try:
            names = sorted(e.name for e in os.scandir(folder)
                           if e.name.endswith(".conf") and e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UsageError(f"read registries.conf.d {folder}: {exc.strerror}") from None
        found += [folder / n for n in names]
    return found


def parse_registries_conf(text: str, origin: str = "registries.conf", *,
                          drop_in: bool = False) -> dict[str, Any]:
    """Parse one file into the keys it sets (v1 files are converted; drop-ins must be v2).

    The result holds only what the file sets, so merging can tell "absent" from "empty":
    ``registries`` (list of Registry), ``unqualified-search-registries``,
    ``short-name-mode``, ``aliases`` (dict of Alias), ``credential-helpers``.
    """
    def bad(why: str) -> UsageError:
        return UsageError(f"registries.conf {origin}: {why}",
                          hint="see containers-registries.conf(5)")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"not valid TOML: {exc}") from None
    v1 = doc.get("registries")
    if isinstance(v1, dict):
        if drop_in:
            raise bad("a drop-in must use the v2 format, not [registries.search]")
        if any(k in doc for k in ("registry", "unqualified-search-registries")):
            raise bad("mixes the v1 [registries.*] format with v2 keys")
        doc = _convert_v1(v1, bad)

    out: dict[str, Any] = {}
    if "unqualified-search-registries" in doc:
        search = _strings(doc["unqualified-search-registries"], "unqualified-search-registries",
                          bad)
        out["unqualified-search-registries"] = [_search_registry(s, bad) for s in search]
    if "credential-helpers" in doc:
        helpers = _strings(doc["credential-helpers"], "credential-helpers", bad)
        if helpers:
            out["credential-helpers"] = helpers
    if "short-name-mode" in doc:
        mode = doc["short-name-mode"]
        if mode not in SHORT_NAME_MODES:
            raise bad(f"invalid short-name-mode {mode!r}; expected one of "
                      f"{', '.join(SHORT_NAME_MODES)}")
        out["short-name-mode"] = mode
    if "aliases" in doc:
        out["aliases"] = parse_aliases(doc["aliases"], origin)
    if "registry" in doc:
        out["registries"] = _registries(doc["registry"], origin, bad)
    return out


def _convert_v1(v1: dict[str, Any], bad: Callable[[str], UsageError]) -> dict[str, Any]:
    """registries.conf v1 ([registries.search|insecure|block] registries = [...]) as v2."""
    def listed(section: str) -> list[str]:
        table = v1.get(section) or {}
        if not isinstance(table, dict):
            raise bad(f"[registries.{section}] must be a table")
        return _strings(table.get("registries", []), f"registries.{section}.registries", bad)

    tables: dict[str, dict[str, Any]] = {}
    for loc in listed("block"):
        tables.setdefault(loc, {"location": loc})["blocked"] = True
    for loc in listed("insecure"):
        tables.setdefault(loc, {"location": loc})["insecure"] = True
    return {"unqualified-search-registries": listed("search"),
            "registry": list(tables.values())}


def _strings(value: object, key: str, bad: Callable[[str], UsageError]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"{key} must be a list of strings")
    return list(value)


def _location(value: object, what: str, bad: Callable[[str], UsageError]) -> str:
    if not isinstance(value, str):
        raise bad(f"{what} must be a string")
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        raise bad(f"invalid {what} {value!r}: URI schemes are not supported; write "
                  "host[:port][/namespace] and set insecure = true for plain HTTP")
    return trimmed


def _search_registry(value: str, bad: Callable[[str], UsageError]) -> str:
    registry = _location(value, "unqualified-search-registries entry", bad)
    if not _DOMAIN_RE.fullmatch(registry):
        raise bad(f"invalid unqualified-search-registries entry {value!r}: expected host[:port]")
    return registry


def _flag(table: dict[str, Any], key: str, bad: Callable[[str], UsageError]) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise bad(f"{key} must be true or false")
    return value


def _registries(value: object, origin: str, bad: Callable[[str], UsageError]) -> list[Registry]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise bad("[[registry]] must be an array of tables")
    result: dict[str, Registry] = {}
    seen: dict[str, Registry] = {}
    for table in value:
        location = _location(table.get("location", ""), "location", bad)
        prefix = _location(table.get("prefix", ""), "prefix", bad) or location
        if not prefix:
            raise bad("a [[registry]] sets neither location nor prefix")
        if prefix.startswith("*."):
            if any(c in prefix for c in "/@:"):
                raise bad(f"wildcard prefix {prefix!r} must look like *.example.com")
        elif not location:
            raise bad(f"[[registry]] prefix {prefix!r} has no location (only a *.domain "
                      "prefix may omit it)")
        if table.get("pull-from-mirror"):
            raise bad(f"pull-from-mirror is for mirrors, not for registry {prefix!r}")
        by_digest = _flag(table, "mirror-by-digest-only", bad)
        mirrors_value = table.get("mirror", [])
        if not isinstance(mirrors_value, list) or not all(isinstance(m, dict)
                                                          for m in mirrors_value):
            raise bad(f"the mirrors of {prefix!r} must be [[registry.mirror]] tables")
        mirrors = []
        for m in mirrors_value:
            mloc = _location(m.get("location", ""), "mirror location", bad)
            if not mloc:
                raise bad(f"a mirror of {prefix!r} has no location")
            mode = m.get("pull-from-mirror", "")
            if mode and mode not in PULL_FROM_MIRROR:
                raise bad(f"unsupported pull-from-mirror {mode!r} for mirror {mloc!r}")
            if mode and by_digest:
                raise bad(f"registry {prefix!r} sets mirror-by-digest-only and its mirror "
                          f"{mloc!r} sets pull-from-mirror")
            mirrors.append(Endpoint(mloc, _flag(m, "insecure", bad), mode))
        reg = Registry(prefix, location, _flag(table, "insecure", bad),
                       _flag(table, "blocked", bad), by_digest, tuple(mirrors), origin)
        key = location or prefix
        other = seen.setdefault(key, reg)
        if (other.insecure, other.blocked) != (reg.insecure, reg.blocked):
            raise bad(f"registry {key!r} is defined several times with conflicting "
                      "insecure or blocked settings")
        # Within one file the first table of a prefix wins, as in containers/image.
        result.setdefault(prefix, reg)
    return list(result.values())


def parse_aliases(value: object, origin: str) -> dict[str, Alias]:
    """Validate an ``[aliases]`` table: short name -> fully qualified repository (or "")."""
    if not isinstance(value, dict):
        raise UsageError(f"{origin}: [aliases] must be a table")
    aliases: dict[str, Alias] = {}
    for name, target in value.items():
        if not isinstance(target, str):
            raise UsageError(f"{origin}: alias {name!r} must be a string")
        if not is_short_name(name) or _has_tag_or_digest(name):
            raise UsageError(f"{origin}: invalid short name {name!r} in [aliases]: no "
                             "registry, tag or digest allowed")
        if target and (is_short_name(target) or _has_tag_or_digest(target)):
            raise UsageError(f"{origin}: invalid alias {name!r} = {target!r}: must name a "
                             "registry and repository, without tag or digest")
        if target:
            try:
                parse_reference(f"docker://{target}")
            except UsageError as exc:
                raise UsageError(f"{origin}: invalid alias {name!r}: {exc.message}") from None
        aliases[name] = Alias(target or None, origin)
    return aliases


def _merge(conf: RegistriesConf, update: dict[str, Any], origin: str) -> None:
    conf.files.append(origin)
    if "registries" in update:
        by_prefix = {r.prefix: r for r in conf.registries}
        by_prefix.update({r.prefix: r for r in update["registries"]})
        conf.registries = [by_prefix[p] for p in sorted(by_prefix)]
    if "unqualified-search-registries" in update:
        conf.unqualified_search_registries = update["unqualified-search-registries"]
        conf.search_origin = origin
    if "credential-helpers" in update:
        conf.credential_helpers = update["credential-helpers"]
    if "short-name-mode" in update:
        conf.short_name_mode = update["short-name-mode"]
    conf.aliases.update(update.get("aliases", {}))


def aliases_file(env: Mapping[str, str] | None = None, *, euid: int | None = None) -> Path:
    """Where podman remembers short-name choices for this user (read, never written)."""
    env = os.environ if env is None else env
    if (os.geteuid() if euid is None else euid) == 0:
        return ROOT_ALIASES_FILE
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or
                                                  os.path.expanduser("~"), ".cache"))
    return Path(cache, "containers/short-name-aliases.conf")


def read_aliases_file(path: Path) -> dict[str, Alias]:
    """The ``[aliases]`` of a short-name-aliases.conf file ({} when it does not exist)."""
    try:
        text = _read(path)
    except FileNotFoundError:
        return {}
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"short-name aliases {path}: not valid TOML: {exc}") from None
    return parse_aliases(doc.get("aliases", {}), str(path))


# --- names ------------------------------------------------------------------------------

def is_short_name(name: str) -> bool:
    """True when ``name`` (no transport) does not start with a registry host."""
    first, slash, _ = name.partition("/")
    return not slash or not (any(c in first for c in ".:") or first == "localhost"
                             or first.lower() != first)


def _has_tag_or_digest(name: str) -> bool:
    return "@" in name or ":" in name[name.rfind("/") + 1:]


def prefix_match(name: str, prefix: str) -> int:
    """Length of ``name`` (``host/repo``) that ``prefix`` matches, or -1.

    ``*.example.com`` matches hosts under example.com. A plain prefix matches whole path
    components; unlike containers/image, ``example.com`` does not match
    ``example.com:5000`` (a quirk it documents as not to be relied on).
    """
    if prefix.startswith("*."):
        suffix = prefix[1:]
        index = name.find(suffix)
        if index < 0 or "/" in name[:index]:
            return -1
        end = index + len(suffix)
        return end if end == len(name) or name[end] in ":/@" else -1
    if name == prefix:
        return len(prefix)
    if name.startswith(prefix) and name[len(prefix)] == "/":
        return len(prefix)
    return -1
