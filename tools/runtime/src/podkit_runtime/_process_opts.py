"""Process options that need a look outside the pure config: ``--env-file``,
``--group-add``, ``--init``.

The parsers are pure (text in, data out); the small readers around them do the I/O
at bundle time.
"""

from __future__ import annotations

import os

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

#: Where podman runs its init inside the container, and what it prefixes the args with.
INIT_DESTINATION = "/run/podman-init"
#: Where Debian's podman looks first (containers.conf init_path), then $PATH.
INIT_CANDIDATES = ("/usr/libexec/podman/catatonit",)
MAX_ENV_FILE_BYTES = 16 * 1024 * 1024


def parse_env_file(text: str, host_env: Mapping[str, str], *, source: str) -> list[str]:
    """podman's --env-file format: KEY=VALUE per line, taken literally (no quotes
    removed); ``#`` comments and blank lines skipped; a bare KEY takes the host's value
    and is dropped when the host has none."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or key != key.rstrip() or any(c.isspace() for c in key):
            raise errors.InvalidDocument(
                f"read env file {source}: line {number}: variable {key!r} contains "
                "whitespaces" if key else f"read env file {source}: line {number}: "
                "missing variable name")
        if eq:
            out.append(f"{key}={value}")
        elif key in host_env:
            out.append(f"{key}={host_env[key]}")
    return out


def read_env_files(paths: Iterable[str], host_env: Mapping[str, str] | None = None
                   ) -> list[str]:
    """The KEY=VALUE items of every --env-file, in order."""
    host_env = os.environ if host_env is None else host_env
    items: list[str] = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_ENV_FILE_BYTES + 1)
        except OSError as exc:
            raise errors.from_os_error(exc, "read env file") from None
        if len(data) > MAX_ENV_FILE_BYTES:
            raise errors.InvalidDocument(f"read env file {path}: larger than "
                                         f"{MAX_ENV_FILE_BYTES} bytes")
        items.extend(parse_env_file(data.decode("utf-8", "replace"), host_env, source=path))
    return items


def group_ids(names: Iterable[str], group_rows: list[list[str]]) -> list[int]:
    """``--group-add`` values as gids: numbers as given, names from the container's
    /etc/group rows (pure)."""
    gids: list[int] = []
    for name in names:
        if name == "keep-groups":
            raise errors.NotImplementedYet("--group-add keep-groups needs crun and a "
                                           "rootless user; podkit runs as root with runc")
        if name.isdigit():
            gid = int(name)
        else:
            for row in group_rows:
                if len(row) >= 3 and row[0] == name and row[2].isdigit():
                    gid = int(row[2])
                    break
            else:
                raise errors.NotFound(f"unable to find group {name}: no matching entries "
                                      "in group file")
        if gid not in gids:
            gids.append(gid)
    return gids


def find_init(init_path: str | None) -> str:
    """The host's catatonit (``--init-path``, podman's default path, then $PATH)."""
    from podkit_common.spawn import which

    candidates = [init_path] if init_path else [*INIT_CANDIDATES, which("catatonit")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    if init_path:
        raise errors.NotFound(f"container-init binary {init_path} not found or not executable",
                              hint="give --init-path the path of catatonit (or tini)")
    raise errors.NotFound("container-init binary catatonit not found on the host: --init "
                          f"needs it at {INIT_CANDIDATES[0]} or on $PATH",
                          hint="install it (apt-get install catatonit) or give --init-path")


def init_mount(host_path: str) -> dict[str, Any]:
    """The read-only bind of the init binary at /run/podman-init (pure)."""
    return {"destination": INIT_DESTINATION, "type": "bind", "source": host_path,
            "options": ["bind", "ro", "rprivate"]}


def with_init(args: list[str]) -> list[str]:
    """podman's --init argv: the init, ``--``, then the container's command (pure)."""
    return [INIT_DESTINATION, "--", *args]


def args_for(args: list[str], opts: Any) -> list[str]:
    """The process args with podman's init in front when ``--init`` is given (pure)."""
    return with_init(args) if opts.init else args


def init_mounts(opts: Any) -> list[dict[str, Any]]:
    """The init binary's mount when ``--init`` is given (pure; the bundle step has
    filled ``init_path`` with the host's catatonit)."""
    if not opts.init:
        return []
    return [init_mount(opts.init_path or INIT_CANDIDATES[0])]
