"""Image identities as the trust policy sees them: docker names, policy scopes, and the
``signedIdentity`` rules of containers-policy.json(5).

Everything here is pure and follows containers/image (signature/policy_reference_match.go,
docker/policyconfiguration/naming.go) so that a policy means what it means to podman:

* :func:`parse_docker_name` is distribution's ``ParseNormalizedNamed``: ``busybox`` is
  ``docker.io/library/busybox`` and, unlike an image reference to pull, gets **no**
  ``:latest`` (a signature naming a bare repository matches only repository rules).
* :func:`docker_scopes` lists the policy scopes of an image, most specific first:
  ``host:port/ns/repo:tag``, ``host:port/ns/repo``, ``host:port/ns``, ``host:port``,
  then ``*.example.com``, ``*.com`` for the host ``a.example.com``.
* :class:`IdentityRule` is one ``signedIdentity`` object; ``matches(intended, signed)``
  decides whether a signature's claimed ``docker-reference`` is acceptable for the image.
"""

from __future__ import annotations

import os
import re
from typing import Any

from podkit_common.errors import InvalidDocument
from podkit_common.records import record

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAIN = "index.docker.io"
_NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_PREFIX_RE = re.compile(rf"{_DOMAIN}/")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX64_RE = re.compile(r"[a-f0-9]{64}")


@record(frozen=True)
class DockerName:
    """A normalised docker reference: ``name`` (domain/path), and a tag and/or digest."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_docker_name(text: str, *, normalize: bool = True) -> DockerName | None:
    """Parse a docker reference like distribution's ``ParseNormalizedNamed``; None if invalid.

    With ``normalize=False`` it is ``ParseNamed``: the name must already be fully
    qualified (``docker.io/library/busybox``, not ``busybox``).
    """
    if not isinstance(text, str) or not text or _HEX64_RE.fullmatch(text):
        return None
    rest, at, digest = text.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        return None
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            return None
    slash = rest.find("/")
    first = rest[:slash] if slash >= 0 else ""
    if slash < 0 or not (any(c in first for c in ".:") or first == "localhost"
                         or first.lower() != first):
        domain, path = DEFAULT_DOMAIN, rest
    else:
        domain, path = first, rest[slash + 1:]
    if domain == _LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not _DOMAIN_RE.fullmatch(domain) or not _PATH_RE.fullmatch(path):
        return None
    name = f"{domain}/{path}"
    if len(name) > _NAME_MAX:
        return None
    if not normalize and name != rest:
        return None
    return DockerName(name, tag, digest or None)


def docker_scopes(intended: DockerName) -> list[str]:
    """The policy scopes an image matches, most specific first (without the final "")."""
    identity = str(intended)
    scopes = [identity] if identity != intended.name else []
    name = intended.name
    while True:
        scopes.append(name)
        cut = name.rfind("/")
        if cut < 0:
            break
        name = name[:cut]
    host = name.partition(":")[0] if not name.startswith("[") else name
    while "." in host:
        host = host[host.index(".") + 1:]
        scopes.append(f"*.{host}")
    return scopes


def path_scopes(path: str | os.PathLike[str]) -> list[str]:
    """Scopes of an ``oci:``/``oci-archive:``/``dir:`` image: its absolute path, then parents."""
    resolved = os.path.realpath(os.fspath(path))
    scopes = []
    while resolved not in ("/", "") and "/" in resolved:
        scopes.append(resolved)
        resolved = resolved[:resolved.rfind("/")]
    return scopes


#: Transports whose scopes are absolute paths.
PATH_TRANSPORTS = ("oci", "oci-archive", "dir")


def scope_error(transport: str, scope: str) -> str | None:
    """Why ``scope`` is not a valid scope of ``transport``, or None (containers/image rules)."""
    if scope == "":
        return None
    if transport in PATH_TRANSPORTS:
        if not scope.startswith("/"):
            return "must be an absolute path"
        if scope == "/":
            return 'use the default scope "" instead of "/"'
        if os.path.normpath(scope) != scope:
            return f"not a canonical path (perhaps {os.path.normpath(scope)!r})"
    if transport == "docker-archive":
        return 'docker-archive supports only the default scope ""'
    return None


# --- signedIdentity --------------------------------------------------------------------

IDENTITY_TYPES = ("matchExact", "matchRepoDigestOrExact", "matchRepository",
                  "exactReference", "exactRepository", "remapIdentity")


@record(frozen=True)
class IdentityRule:
    """One ``signedIdentity`` rule; ``value``/``signed_prefix`` hold its parameters."""

    type: str
    value: str | None = None
    signed_prefix: str | None = None

    def matches(self, intended: DockerName, signed_reference: str) -> bool:
        """Whether a signature claiming ``signed_reference`` is acceptable for ``intended``."""
        signed = parse_docker_name(signed_reference)
        if signed is None:
            return False
        if self.type == "matchExact":
            return not intended.is_name_only and not signed.is_name_only \
                and str(signed) == str(intended)
        if self.type == "matchRepoDigestOrExact":
            return _repo_digest_or_exact(intended, signed)
        if self.type == "matchRepository":
            return signed.name == intended.name
        if self.type == "exactReference":
            wanted = parse_docker_name(self.value or "")
            return wanted is not None and not wanted.is_name_only \
                and not signed.is_name_only and str(signed) == str(wanted)
        if self.type == "exactRepository":
            wanted = parse_docker_name(self.value or "")
            return wanted is not None and signed.name == wanted.name
        if self.type == "remapIdentity":
            remapped = self._remap(intended)
            return remapped is not None and _repo_digest_or_exact(remapped, signed)
        return False

    def _remap(self, intended: DockerName) -> DockerName | None:
        prefix, new = self.value or "", self.signed_prefix or ""
        name = intended.name
        if not (name == prefix or (name.startswith(prefix) and name[len(prefix):][:1] == "/")):
            return intended
        return parse_docker_name(str(intended).replace(prefix, new, 1), normalize=False)

    def describe(self) -> str:
        if self.type in ("exactReference", "exactRepository"):
            return f"{self.type} {self.value}"
        if self.type == "remapIdentity":
            return f"remapIdentity {self.value} -> {self.signed_prefix}"
        return self.type


def _repo_digest_or_exact(intended: DockerName, signed: DockerName) -> bool:
    if signed.is_name_only:
        return False
    if intended.tag is not None:
        return str(signed) == str(intended)
    if intended.digest is not None:
        # The signed digest is checked against the manifest separately, so the names suffice.
        return signed.name == intended.name
    return False


DEFAULT_IDENTITY = IdentityRule("matchRepoDigestOrExact")


def parse_identity_rule(doc: Any, where: str) -> IdentityRule:
    """Parse one ``signedIdentity`` object, strictly (unknown keys are errors)."""
    def bad(why: str) -> InvalidDocument:
        return InvalidDocument(f"{where}: signedIdentity: {why}", hint=_HINT)

    if not isinstance(doc, dict):
        raise bad("must be an object")
    kind = doc.get("type")
    if kind not in IDENTITY_TYPES:
        raise bad(f"unknown type {kind!r}; expected one of {', '.join(IDENTITY_TYPES)}")
    params = {"exactReference": ("dockerReference",), "exactRepository": ("dockerRepository",),
              "remapIdentity": ("prefix", "signedPrefix")}.get(kind, ())
    extra = set(doc) - {"type", *params}
    if extra:
        raise bad(f"unknown field(s) {', '.join(sorted(extra))} for {kind}")
    for key in params:
        if not isinstance(doc.get(key), str):
            raise bad(f"{kind} needs a string {key!r}")
    if kind == "exactReference":
        ref = parse_docker_name(doc["dockerReference"])
        if ref is None or ref.is_name_only:
            raise bad(f"dockerReference {doc['dockerReference']!r} is not a reference with a "
                      "tag or digest")
        return IdentityRule(kind, doc["dockerReference"])
    if kind == "exactRepository":
        if parse_docker_name(doc["dockerRepository"]) is None:
            raise bad(f"dockerRepository {doc['dockerRepository']!r} is not a repository name")
        return IdentityRule(kind, doc["dockerRepository"])
    if kind == "remapIdentity":
        for key in params:
            if not _valid_prefix(doc[key]):
                raise bad(f"{key} {doc[key]!r} is not a host[:port] or host[:port]/path prefix")
        return IdentityRule(kind, doc["prefix"], doc["signedPrefix"])
    return IdentityRule(kind)


def _valid_prefix(text: str) -> bool:
    return bool(_DOMAIN_RE.fullmatch(text)
                or (_NAME_RE.fullmatch(text) and _DOMAIN_PREFIX_RE.match(text)))


_HINT = "fix the signature policy; see containers-policy.json(5)"
