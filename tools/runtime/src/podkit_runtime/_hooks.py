"""OCI hooks from hooks.d directories in podman's oci-hooks(5) format, version 1.0.0.

    {"version": "1.0.0",
     "hook": {"path": "/abs/prog", "args": ["prog", "x"], "env": ["K=V"], "timeout": 5},
     "when": {"always": true, "annotations": {"KEY-REGEX": "VALUE-REGEX"},
              "commands": ["ARGS0-REGEX"], "hasBindMounts": true},
     "stages": ["prestart", "createRuntime", "poststop", ...]}

Like c/common's pkg/hooks: every ``*.json`` file of each directory is read, a later
directory's file replaces an earlier one of the same name, hooks run in file-name order,
and a hook applies when any of its ``when`` conditions holds. Reading is I/O
(:func:`read_hook_dirs`); choosing the hooks for a config is pure (:func:`select_hooks`).
"""

from __future__ import annotations

import re
from pathlib import Path

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DIRS = ("/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d")
STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop")
MAX_HOOK_FILE = 1 << 20
#: Bind mounts the engine makes itself, which "hasBindMounts" does not count.
GENERATED_BINDS = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                             "/run/.containerenv", "/run/podman-init", "/dev/shm"})


def _bad(name: str, why: str) -> errors.InvalidDocument:
    return errors.InvalidDocument(f"hook {name}: {why}",
                                  hint="see oci-hooks(5) for the version 1.0.0 format")


def validate_hook(name: str, doc: Any) -> dict[str, Any]:
    """Check one hook document; return it (pure: existence of hook.path is checked by
    the reader)."""
    if not isinstance(doc, dict):
        raise _bad(name, "not a JSON object")
    if doc.get("version") != "1.0.0":
        raise _bad(name, f"unsupported version {doc.get('version')!r} (podkit reads 1.0.0)")
    hook = doc.get("hook")
    if not isinstance(hook, dict) or not isinstance(hook.get("path"), str) \
            or not hook["path"].startswith("/"):
        raise _bad(name, "hook.path must be an absolute path")
    for key in ("args", "env"):
        if key in hook and not (isinstance(hook[key], list)
                                and all(isinstance(x, str) for x in hook[key])):
            raise _bad(name, f"hook.{key} must be a list of strings")
    if "timeout" in hook and (not isinstance(hook["timeout"], int) or hook["timeout"] < 1):
        raise _bad(name, "hook.timeout must be a positive integer")
    stages = doc.get("stages")
    if not isinstance(stages, list) or not stages:
        raise _bad(name, "stages must be a non-empty list")
    for stage in stages:
        if stage not in STAGES:
            raise _bad(name, f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    when = doc.get("when")
    if not isinstance(when, dict):
        raise _bad(name, "when must be an object")
    conditions = [when.get("always"), when.get("annotations"), when.get("commands"),
                  when.get("hasBindMounts")]
    if not any(c is not None for c in conditions):
        raise _bad(name, "when has no conditions")
    try:
        for key, value in (when.get("annotations") or {}).items():
            re.compile(key)
            re.compile(value)
        for command in when.get("commands") or []:
            re.compile(command)
    except (re.error, AttributeError, TypeError) as e:
        raise _bad(name, f"invalid regular expression in when: {e}") from None
    return doc


def read_hook_dirs(dirs: tuple[str, ...] | None) -> list[tuple[str, dict[str, Any]]]:
    """(file name, hook) in file-name order; ``None`` means podman's default directories,
    read only where present; directories given explicitly must exist."""
    from podkit_common.jsonio import loads

    explicit = dirs is not None
    by_name: dict[str, dict[str, Any]] = {}
    for d in (dirs if dirs is not None else DEFAULT_DIRS):
        path = Path(d)
        if not path.is_dir():
            if explicit:
                raise errors.NotFound(f"hooks directory {d} does not exist",
                                      hint="give --hooks-dir an existing directory")
            continue
        for entry in sorted(path.iterdir()):
            if not entry.name.endswith(".json") or not entry.is_file():
                continue
            with open(entry, "rb") as fh:
                data = fh.read(MAX_HOOK_FILE + 1)
            if len(data) > MAX_HOOK_FILE:
                raise _bad(str(entry), "file larger than 1 MiB")
            doc = validate_hook(str(entry), loads(data, what=f"hook {entry}"))
            if not Path(doc["hook"]["path"]).exists():
                raise _bad(str(entry), f"hook.path {doc['hook']['path']} does not exist")
            by_name[entry.name] = doc
    return sorted(by_name.items())


def hook_applies(doc: dict[str, Any], config: dict[str, Any]) -> bool:
    """oci-hooks(5): any condition matching is enough."""
    when = doc["when"]
    if when.get("always"):
        return True
    annotations = config.get("annotations") or {}
    for key_re, value_re in (when.get("annotations") or {}).items():
        for key, value in annotations.items():
            if re.search(key_re, key) and re.search(value_re, value):
                return True
    args = (config.get("process") or {}).get("args") or []
    if args and any(re.search(c, args[0]) for c in when.get("commands") or []):
        return True
    if when.get("hasBindMounts"):
        # podman counts the user's volumes only, not the files it generates itself
        for m in config.get("mounts") or []:
            if m.get("destination") in GENERATED_BINDS:
                continue
            if m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or []):
                return True
    return False


def select_hooks(hooks: list[tuple[str, dict[str, Any]]],
                 config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The OCI ``hooks`` section for ``config`` (pure)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for _name, doc in hooks:
        if not hook_applies(doc, config):
            continue
        entry = {k: doc["hook"][k] for k in ("path", "args", "env", "timeout")
                 if k in doc["hook"]}
        for stage in doc["stages"]:
            out.setdefault(stage, []).append(entry)
    return out
