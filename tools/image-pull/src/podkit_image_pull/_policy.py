"""The trust policy, containers-policy.json(5): which images may be pulled, and whose
signatures they need. podman's files mean the same here::

    {"default": [{"type": "reject"}],
     "transports": {"docker": {
         "registry.example.com/team": [{"type": "signedBy", "keyType": "GPGKeys",
                                        "keyPath": "/etc/pki/team.gpg"}],
         "*.internal.example.com": [{"type": "sigstoreSigned",
                                     "keyPath": "/etc/pki/cosign.pub"}],
         "127.0.0.1:5000": [{"type": "insecureAcceptAnything"}]}}}

The file is ``--signature-policy PATH``, else ``~/.config/containers/policy.json`` if it
exists, else ``/etc/containers/policy.json``; with none of them, the pull is refused as
podman refuses it (there is no built-in policy to fall back on).

An image's requirements come from its most specific scope (``host/repo:tag``,
``host/repo``, ``host/ns``, ``host``, ``*.domain``, then the transport's ``""``, then
``default``); every requirement of that list must accept the image:

    insecureAcceptAnything   accepts
    reject                   rejects
    signedBy (GPGKeys)       one simple-signing signature by one of the keys, for this
                             manifest digest, whose identity ``signedIdentity`` accepts
    sigstoreSigned           the same for a sigstore attachment and a public key
                             (Fulcio, PKI and Rekor are not built yet: NotImplementedYet)

The requirements are enforced by :mod:`._trust` (the pull's hook); this module is the
file: reading it, strictly, and finding an image's section.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from podkit_common.errors import InvalidDocument, NotFound, from_os_error
from podkit_common.records import field, record
from podkit_image_pull._identity import (
    DEFAULT_IDENTITY,
    IdentityRule,
    parse_identity_rule,
    scope_error,
)

SYSTEM_POLICY = "/etc/containers/policy.json"
USER_POLICY = ".config/containers/policy.json"
MAX_POLICY_BYTES = 4 * 1024 * 1024
KEY_TYPES = ("GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs")
_HINT = "fix the signature policy; see containers-policy.json(5)"

_FIELDS = {
    "insecureAcceptAnything": {"type"},
    "reject": {"type"},
    "signedBy": {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"},
    "sigstoreSigned": {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                       "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                       "rekorPublicKeyDatas", "signedIdentity"},
    "signedBaseLayer": {"type", "baseLayerIdentity"},
}


@record(frozen=True)
class Requirement:
    """One policy requirement. ``unsupported`` names a part that is not built yet."""

    type: str
    key_type: str | None = None
    key_paths: tuple[str, ...] = ()
    key_data: tuple[bytes, ...] = ()
    signed_identity: IdentityRule | None = None
    unsupported: str | None = None

    def describe(self) -> str:
        """E.g. ``signedBy GPGKeys keyPath /etc/pki/team.gpg``."""
        parts = [self.type]
        if self.key_type:
            parts.append(self.key_type)
        if self.key_paths:
            parts.append(f"keyPath{'s' if len(self.key_paths) > 1 else ''} "
                         + ", ".join(self.key_paths))
        elif self.key_data:
            parts.append(f"keyData ({len(self.key_data)} key{'s' * (len(self.key_data) > 1)})")
        if self.signed_identity is not None and self.signed_identity != DEFAULT_IDENTITY:
            parts.append(f"signedIdentity {self.signed_identity.describe()}")
        return " ".join(parts)


@record(frozen=True)
class Policy:
    """A parsed policy.json; ``source`` is the file it came from (for messages)."""

    default: tuple[Requirement, ...]
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = field(default_factory=dict)
    source: str = "<policy>"

    def requirements_for(self, transport: str,
                         scopes: list[str]) -> tuple[str, tuple[Requirement, ...]]:
        """(which section, its requirements) for an image with these scopes."""
        section = self.transports.get(transport)
        if section is not None:
            for scope in [*scopes, ""]:
                if scope in section:
                    return f"transports.{transport}[{json.dumps(scope)}]", section[scope]
        return "default", self.default


def default_policy_path(*, home: str | None = None, system: str = SYSTEM_POLICY) -> Path:
    """The policy file podman would read, or NotFound (with a hint) if there is none."""
    user = Path(home or os.path.expanduser("~")) / USER_POLICY
    if user.exists():
        return user
    if Path(system).exists():
        return Path(system)
    raise NotFound(
        f"no signature policy: neither {user} nor {system} exists",
        hint=f"create {system} (e.g. {{\"default\": [{{\"type\": \"insecureAcceptAnything\"}}]}}"
             " to accept every image, as podman's default file does) or pass "
             "--signature-policy PATH")


def load_policy(path: str | os.PathLike[str] | None = None, *,
                home: str | None = None) -> Policy:
    """Read and parse the policy file (``path``, else podman's default location)."""
    chosen = Path(path) if path is not None else default_policy_path(home=home)
    try:
        with open(chosen, "rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"signature policy {chosen} does not exist",
                       hint="pass an existing policy.json to --signature-policy") from None
    except OSError as exc:
        raise from_os_error(exc, f"read signature policy {chosen}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise InvalidDocument(f"signature policy {chosen} is larger than {MAX_POLICY_BYTES} bytes")
    return parse_policy(data, str(chosen))


def parse_policy(data: bytes | str | dict[str, Any], source: str = "<policy>") -> Policy:
    """Parse policy.json content as strictly as containers/image (unknown keys are errors)."""
    def bad(why: str) -> InvalidDocument:
        return InvalidDocument(f"signature policy {source}: {why}", hint=_HINT)

    if isinstance(data, dict):
        doc: Any = data
    else:
        try:
            doc = json.loads(data, object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise bad("must be a JSON object")
    extra = set(doc) - {"default", "transports"}
    if extra:
        raise bad(f"unknown field(s) {', '.join(sorted(extra))}")
    if "default" not in doc:
        raise bad('the "default" requirements are missing')
    default = _requirements(doc["default"], f"{source}: default")
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    sections = doc.get("transports") or {}
    if not isinstance(sections, dict):
        raise bad('"transports" must be an object')
    for transport, scopes in sections.items():
        if not isinstance(scopes, dict):
            raise bad(f'transports.{transport} must be an object of scopes')
        transports[transport] = {}
        for scope, reqs in scopes.items():
            why = scope_error(transport, scope)
            if why is not None:
                raise bad(f"transports.{transport}: invalid scope {scope!r}: {why}")
            transports[transport][scope] = _requirements(
                reqs, f"{source}: transports.{transport}[{json.dumps(scope)}]")
    return Policy(default, transports, source)


def _requirements(doc: Any, where: str) -> tuple[Requirement, ...]:
    if not isinstance(doc, list) or not doc:
        raise InvalidDocument(f"{where}: must be a non-empty list of requirements", hint=_HINT)
    return tuple(_requirement(item, f"{where}[{i}]") for i, item in enumerate(doc))


def _requirement(doc: Any, where: str) -> Requirement:
    def bad(why: str) -> InvalidDocument:
        return InvalidDocument(f"{where}: {why}", hint=_HINT)

    if not isinstance(doc, dict):
        raise bad("a requirement must be an object")
    kind = doc.get("type")
    if kind not in _FIELDS:
        raise bad(f"unknown requirement type {kind!r}; expected one of {', '.join(_FIELDS)}")
    extra = set(doc) - _FIELDS[kind]
    if extra:
        raise bad(f"unknown field(s) {', '.join(sorted(extra))} for {kind}")
    if kind in ("insecureAcceptAnything", "reject"):
        return Requirement(kind)
    if kind == "signedBaseLayer":
        return Requirement(kind, unsupported="the signedBaseLayer requirement")
    identity = DEFAULT_IDENTITY
    if "signedIdentity" in doc:
        identity = parse_identity_rule(doc["signedIdentity"], where)
    paths, datas = _key_sources(doc, where, kind)
    if kind == "signedBy":
        if doc.get("keyType") not in KEY_TYPES:
            raise bad(f"keyType must be one of {', '.join(KEY_TYPES)}, not "
                      f"{doc.get('keyType')!r}")
        unsupported = None if doc["keyType"] == "GPGKeys" else f"signedBy keyType {doc['keyType']}"
        return Requirement(kind, doc["keyType"], paths, datas, identity, unsupported)
    others = [k for k in ("fulcio", "pki") if k in doc]
    if len(others) + bool(paths or datas) != 1:
        raise bad("exactly one of a public key (keyPath, keyPaths, keyData, keyDatas), "
                  "fulcio or pki must be given")
    rekor = [k for k in doc if k.startswith("rekorPublicKey")]
    unsupported = None
    if others or rekor:
        unsupported = f"sigstoreSigned with {', '.join(others + rekor)} (keyless/Rekor " \
                      "verification)"
    return Requirement(kind, None, paths, datas, identity, unsupported)


def _key_sources(doc: dict[str, Any], where: str,
                 kind: str) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    present = [k for k in ("keyPath", "keyPaths", "keyData", "keyDatas") if k in doc]
    if len(present) > 1:
        raise InvalidDocument(f"{where}: only one of {', '.join(present)} may be given",
                              hint=_HINT)
    if not present:
        if kind == "signedBy":
            raise InvalidDocument(f"{where}: signedBy needs one of keyPath, keyPaths, keyData",
                                  hint=_HINT)
        return (), ()
    key = present[0]
    value = doc[key]
    many = value if key.endswith("s") else [value]
    if not isinstance(many, list) or not many \
            or not all(isinstance(v, str) and v for v in many):
        shape = "a non-empty list of strings" if key.endswith("s") else "a string"
        raise InvalidDocument(f"{where}: {key} must be {shape}", hint=_HINT)
    if key.startswith("keyPath"):
        return tuple(many), ()
    try:
        return (), tuple(base64.b64decode(v, validate=True) for v in many)
    except (ValueError, binascii.Error):
        raise InvalidDocument(f"{where}: {key} must be base64 (of the key file's bytes)",
                              hint=_HINT) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out
