"""Registry credentials, found the way podman finds them (they are used by _request_auth).

Where credentials come from (containers-auth.json(5), containers/image's
``pkg/docker/config``), first match wins:

    credentials=(user, password) / --creds USER:PASS      for this pull only
    registries.conf ``credential-helpers`` in order       default ["containers-auth.json"]
      "containers-auth.json": the auth files, in order:
        --authfile PATH or $REGISTRY_AUTH_FILE            only that file when given
        $XDG_RUNTIME_DIR/containers/auth.json             (else /run/containers/UID/auth.json)
        ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json
        ${DOCKER_CONFIG:-~/.docker}/config.json
        ~/.dockercfg                                      legacy format
      any other name N: ``docker-credential-N get``

Inside one auth file: ``credHelpers[registry]`` (run that helper), else the most
specific ``auths`` key of ``host/ns/repo``, ``host/ns``, ``host``, else a key that
normalises to the host (``https://host/v1/``, ``index.docker.io``), else the file's
``credsStore`` helper (Docker's default store). An entry holds ``auth`` (base64
``user:password``) and optionally ``identitytoken`` (an OAuth2 refresh token).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from podkit_common import jsonio
from podkit_common.errors import AuthenticationFailed, InvalidDocument, UsageError
from podkit_common.records import field, record

#: The registries.conf credential-helpers name that means "the auth files".
AUTH_FILES_HELPER = "containers-auth.json"
#: A credential helper that does not answer within this many seconds has failed.
HELPER_TIMEOUT = 30.0
#: What docker-credential-helpers print when they hold nothing for a server.
_HELPER_NOT_FOUND = "credentials not found in native keychain"
_HELPER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_AUTH_FILE = 4 * 1024 * 1024


@record(frozen=True)
class Credentials:
    """A user name and password, or an identity (OAuth2 refresh) token, and their origin.

    ``origin`` says where they were found ("--creds", a file path, a helper's name) so
    an error can point at it; it is never the secret itself.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    origin: str = ""

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token)


#: What RegistryClient accepts as ``credentials=``: fixed ones, or a lookup run on first need.
CredentialsLike = Credentials | tuple[str, str] | Callable[[], Credentials | None] | None


def parse_credentials(text: str, *, origin: str = "--creds") -> Credentials:
    """``USER:PASSWORD`` (podman's ``--creds``) as Credentials; the password may hold ':'."""
    user, sep, password = text.partition(":")
    if not user:
        raise UsageError(f"{origin}: no user name given", hint="use --creds USER:PASSWORD")
    if not sep:
        raise UsageError(f"{origin}: no password given for user {user!r}",
                         hint="use --creds USER:PASSWORD")
    return Credentials(user, password, origin=origin)


# --- the auth files ---------------------------------------------------------------------

@record(frozen=True)
class AuthFile:
    """One auth file to read; ``legacy`` is the old ``~/.dockercfg`` format (no ``auths``)."""

    path: Path
    legacy: bool = False


def auth_file_paths(authfile: str | os.PathLike[str] | None = None, *,
                    env: Mapping[str, str] | None = None) -> list[AuthFile]:
    """The auth files to search, in order (they need not exist).

    ``authfile`` (``--authfile``) or ``$REGISTRY_AUTH_FILE`` replaces the whole list, as
    in podman, where the variable is the option's default.
    """
    env = os.environ if env is None else env
    given = authfile if authfile is not None else env.get("REGISTRY_AUTH_FILE") or None
    if given is not None:
        return [AuthFile(Path(given))]
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    files: list[AuthFile] = []
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        # containers/image skips (with a warning) a runtime dir that does not exist.
        if os.path.isdir(runtime_dir):
            files.append(AuthFile(Path(runtime_dir, "containers/auth.json")))
    else:
        files.append(AuthFile(Path(f"/run/containers/{os.getuid()}/auth.json")))
    config_home = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    files.append(AuthFile(Path(config_home, "containers/auth.json")))
    docker_config = env.get("DOCKER_CONFIG")
    files.append(AuthFile(Path(docker_config, "config.json") if docker_config
                          else home / ".docker/config.json"))
    files.append(AuthFile(home / ".dockercfg", legacy=True))
    return files


def auth_keys(registry: str, repository: str) -> list[str]:
    """``auths`` keys to try for an image, most specific first: host/a/b, host/a, host."""
    keys = [registry]
    parts = repository.split("/") if repository else []
    for i in range(1, len(parts) + 1):
        keys.append("/".join([registry, *parts[:i]]))
    return keys[::-1]


def normalize_auth_key(key: str, *, legacy: bool = False) -> str:
    """The registry host an ``auths`` key stands for (URL keys reduced to their host)."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return _normalize_registry(stripped)


def _normalize_registry(registry: str) -> str:
    return "index.docker.io" if registry in ("docker.io", "registry-1.docker.io") else registry


def lookup_credentials(registry: str, repository: str = "", *,
                       authfile: str | os.PathLike[str] | None = None,
                       helpers: Sequence[str] = (AUTH_FILES_HELPER,),
                       env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials configured for ``registry`` (``host[:port]``) and ``repository``.

    Returns None when there are none. Raises AuthenticationFailed when a source is
    broken (an unreadable auth file, a failing or missing credential helper), after
    trying the other sources, as containers/image does.
    """
    env = os.environ if env is None else env
    failures: list[AuthenticationFailed] = []
    for helper in helpers or (AUTH_FILES_HELPER,):
        try:
            if helper == AUTH_FILES_HELPER:
                found = None
                for auth_file in auth_file_paths(authfile, env=env):
                    found = find_in_auth_file(auth_file, registry, repository, env=env)
                    if found:
                        break
            else:
                found = run_credential_helper(helper, registry, env=env)
        except AuthenticationFailed as exc:
            failures.append(exc)
            continue
        if found:
            return found
    if failures:
        hint = failures[0].hint if len(failures) == 1 and failures[0].hint else (
            "fix the auth file or credential helper named above, or pass --creds USER:PASSWORD")
        raise AuthenticationFailed(f"look up credentials for {registry}: "
                                   + "; ".join(f.message for f in failures), hint=hint)
    return None


def credentials_lookup(registry: str, repository: str = "", **options: Any,
                       ) -> Callable[[], Credentials | None]:
    """A deferred :func:`lookup_credentials`: RegistryClient runs it only when challenged."""
    return partial(lookup_credentials, registry, repository, **options)


def find_in_auth_file(auth_file: AuthFile, registry: str, repository: str = "", *,
                      env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials ``auth_file`` holds for ``registry``/``repository``, else None."""
    doc = _read_auth_file(auth_file.path)
    if doc is None:
        return None
    where = str(auth_file.path)
    if auth_file.legacy:
        auths, cred_helpers, store = doc, {}, None
    else:
        auths = doc.get("auths", {})
        cred_helpers = doc.get("credHelpers", {})
        auths = {} if auths is None else auths
        cred_helpers = {} if cred_helpers is None else cred_helpers
        store = doc.get("credsStore") or None
        if not isinstance(auths, dict) or not isinstance(cred_helpers, dict):
            raise AuthenticationFailed(f"auth file {where}: 'auths' and 'credHelpers' must be "
                                       "JSON objects")
    helper = cred_helpers.get(registry)
    if helper:
        return run_credential_helper(helper, registry, env=env)
    keys = [registry] if auth_file.legacy else auth_keys(registry, repository)
    for key in keys:
        if key in auths:
            # The most specific key present decides, as in containers/image; an empty
            # entry ({} next to a credsStore, as docker writes them) defers to the store.
            found = _decode_entry(auths[key], where, key)
            if found:
                return found
            break
    else:
        normalized = _normalize_registry(registry)
        for key, entry in auths.items():
            if normalize_auth_key(key, legacy=auth_file.legacy) == normalized:
                found = _decode_entry(entry, where, key)
                if found:
                    return found
    if isinstance(store, str) and store:
        return run_credential_helper(store, registry, env=env)
    return None


def _read_auth_file(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise AuthenticationFailed(f"auth file {path} is a directory") from None
    except OSError as exc:
        raise AuthenticationFailed(f"read auth file {path}: {exc.strerror}") from None
    if len(data) > _MAX_AUTH_FILE:
        raise AuthenticationFailed(f"auth file {path} is larger than {_MAX_AUTH_FILE} bytes")
    if not data.strip():
        return None
    try:
        doc = jsonio.loads(data, what=f"auth file {path}")
    except InvalidDocument as exc:
        raise AuthenticationFailed(exc.message) from None
    if not isinstance(doc, dict):
        raise AuthenticationFailed(f"auth file {path} is not a JSON object")
    return doc


def _decode_entry(entry: object, where: str, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise AuthenticationFailed(f"auth file {where}: entry {key!r} is not a JSON object")
    encoded = entry.get("auth") or ""
    token = entry.get("identitytoken") or ""
    if not isinstance(encoded, str) or not isinstance(token, str):
        raise AuthenticationFailed(f"auth file {where}: entry {key!r} has a non-string "
                                   "'auth' or 'identitytoken'")
    user = password = ""
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            # The secret is never quoted back, only where it is.
            raise AuthenticationFailed(f"auth file {where}: the 'auth' of {key!r} is not "
                                       "base64 of USER:PASSWORD") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            user = password = ""
        password = password.strip("\x00")
    found = Credentials(user, password, token, origin=f"{where} ({key})")
    return found if (user and password) or token else None


# --- credential helpers -----------------------------------------------------------------

def run_credential_helper(name: str, server: str, *, env: Mapping[str, str] | None = None,
                          timeout: float = HELPER_TIMEOUT) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for ``server``'s credentials (None: it has none)."""
    if not isinstance(name, str) or not _HELPER_NAME_RE.fullmatch(name):
        raise AuthenticationFailed(f"invalid credential helper name {name!r}")
    program = f"docker-credential-{name}"
    env = dict(os.environ if env is None else env)
    import shutil

    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise AuthenticationFailed(f"credential helper {program} not found on PATH",
                                   hint=f"install {program}, or remove it from the auth file "
                                        "or registries.conf")
    try:
        done = subprocess.run([path, "get"], input=server.encode(), capture_output=True,
                              env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AuthenticationFailed(f"credential helper {program} did not answer within "
                                   f"{timeout:g}s") from None
    except OSError as exc:
        raise AuthenticationFailed(f"run credential helper {program}: {exc.strerror}") from None
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        if out == _HELPER_NOT_FOUND:
            return None
        said = (out or done.stderr.decode(errors="replace").strip())[:300]
        raise AuthenticationFailed(f"credential helper {program} failed for {server} "
                                   f"(exit {done.returncode}): {said}")
    try:
        answer = jsonio.loads(done.stdout)
    except InvalidDocument:
        raise AuthenticationFailed(f"credential helper {program} did not answer JSON") from None
    if not isinstance(answer, dict):
        raise AuthenticationFailed(f"credential helper {program} did not answer a JSON object")
    user, secret = answer.get("Username") or "", answer.get("Secret") or ""
    if not isinstance(user, str) or not isinstance(secret, str):
        raise AuthenticationFailed(f"credential helper {program}: Username and Secret must "
                                   "be strings")
    if user == "<token>":
        return Credentials(identity_token=secret, origin=program) if secret else None
    return Credentials(user, secret, origin=program) if user or secret else None
