"""TLS trust per registry, the way podman finds it: a certs.d directory per ``host:port``.

A certificate directory (containers-certs.d(5)) holds ``*.crt`` files (CA certificates,
added to the default trust) and ``*.cert`` + ``*.key`` pairs (client certificates). It
is ``--cert-dir DIR`` when given (for every registry), else the first existing one of::

    $HOME/.config/containers/certs.d/HOST:PORT
    /etc/containers/certs.d/HOST:PORT
    /etc/docker/certs.d/HOST:PORT

Without a directory the registry gets httpx's default trust (``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set, else certifi). ``tls_verify=False`` still presents client
certificates but checks nothing, as containers/image does.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from podkit_common.errors import UsageError

#: System-wide per-host certificate directories, after the user's own.
SYSTEM_CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def cert_dir_for(host: str, *, cert_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> Path | None:
    """The certificate directory for ``host`` (``host[:port]``), or None if there is none.

    An explicit ``cert_dir`` is returned as is, whether or not it exists (a typo should
    fail loudly, not silently fall back to the default trust).
    """
    if cert_dir is not None:
        return Path(cert_dir)
    env = os.environ if env is None else env
    bases = [*([Path(env["HOME"], ".config/containers/certs.d")] if env.get("HOME") else []),
             *map(Path, SYSTEM_CERT_DIRS)]
    for base in bases:
        candidate = base / host
        try:
            if candidate.is_dir():
                return candidate
        except OSError:
            continue
    return None


def tls_context(host: str, *, tls_verify: bool = True,
                cert_dir: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> ssl.SSLContext | bool:
    """What to give httpx as ``verify=`` for ``host``: True/False, or a context with extra trust.

    Raises UsageError for a ``--cert-dir`` that does not exist, a client certificate
    without its key (or the reverse), or a file that is not a certificate.
    """
    folder = cert_dir_for(host, cert_dir=cert_dir, env=env)
    if folder is None:
        return tls_verify
    if cert_dir is not None and not folder.is_dir():
        raise UsageError(f"certificate directory {str(folder)!r} does not exist",
                         hint="--cert-dir names a directory holding *.crt (CAs) and "
                              "*.cert/*.key (client certificate) files")
    cas, pairs = _scan(folder)
    if not cas and not pairs:
        return tls_verify
    import httpx

    if tls_verify:
        context = httpx.create_ssl_context(verify=True)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for ca in cas:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"load CA certificate {ca}: {exc}",
                             hint="*.crt files in a certificate directory must be PEM "
                                  "CA certificates") from None
    for cert, key in pairs:
        try:
            context.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"load client certificate {cert} with key {key}: {exc}") from None
    return context


def _scan(folder: Path) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """The CA files and (client certificate, key) pairs in ``folder``, sorted by name."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise UsageError(f"read certificate directory {folder}: {exc.strerror}") from None
    present = set(names)
    cas = [folder / n for n in names if n.endswith(".crt")]
    pairs = []
    for name in names:
        if name.endswith(".cert"):
            key = name[:-5] + ".key"
            if key not in present:
                raise UsageError(f"certificate directory {folder}: client certificate {name} "
                                 f"has no key {key}",
                                 hint="CA certificates use the extension .crt")
            pairs.append((folder / name, folder / key))
        elif name.endswith(".key") and name[:-4] + ".cert" not in present:
            raise UsageError(f"certificate directory {folder}: key {name} has no client "
                             f"certificate {name[:-4]}.cert")
    return cas, pairs
