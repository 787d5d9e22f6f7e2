"""Enforcing the trust policy on a pull: every requirement of the image's scope must
accept it (see :mod:`._policy` for the file and its scopes).

    insecureAcceptAnything   accepts
    reject                   rejects
    signedBy (GPGKeys)       one simple-signing signature, made by one of the keys, for
                             this manifest digest, whose identity ``signedIdentity`` accepts
    sigstoreSigned           the same for a sigstore attachment and a public key

A signature is checked in containers/image's order: the cryptography, then the signed
digest against the manifest's bytes, then the claimed identity against the reference
being pulled. One accepted signature satisfies a requirement; when none is, the error
lists why each was refused. The pull calls :meth:`TrustCheck.check` after the platform
manifest is fetched and before any blob is stored, so a rejected image
(VerificationFailed, exit 6) leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from podkit_common.errors import NotFound, NotImplementedYet, VerificationFailed
from podkit_common.records import record
from podkit_image_pull._identity import (
    DEFAULT_IDENTITY,
    PATH_TRANSPORTS,
    DockerName,
    docker_scopes,
    path_scopes,
)
from podkit_image_pull._policy import Policy, Requirement, load_policy

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._reference import ImageReference
    from podkit_image_pull._registries_d import SignatureStorage
    from podkit_image_pull._signatures import FetchedSignature
    from podkit_image_pull._source import ImageSource


class SignatureSource(Protocol):
    """Where the signatures of the image being checked come from (fetched on demand)."""

    looked_in: list[str]

    def simple_signing(self) -> list[FetchedSignature]: ...

    def sigstore(self) -> list[FetchedSignature]: ...


class _Rejected(Exception):
    """The requirement does not accept the image; the message says why."""


def evaluate(policy: Policy, intended: DockerName | None, manifest: bytes,
             manifest_digest: str, signatures: SignatureSource | None, *,
             transport: str = "docker", scopes: list[str] | None = None,
             image: str | None = None) -> dict[str, Any]:
    """Check an image against the policy; return a report or raise VerificationFailed.

    ``intended`` is the docker reference being pulled (its tag or digest included; None
    for an image on disk, which has none); ``manifest`` the bytes of the platform
    manifest and ``manifest_digest`` their digest. ``scopes`` default to the docker
    scopes of ``intended``; ``image`` names the image in messages.
    """
    if scopes is None:
        scopes = docker_scopes(intended) if intended is not None else []
    image = image or str(intended)
    section, requirements = policy.requirements_for(transport, scopes)
    reports = []
    for number, req in enumerate(requirements, 1):
        try:
            reports.append(_check(req, intended, manifest, manifest_digest, signatures))
        except _Rejected as exc:
            raise VerificationFailed(
                f"image {image} (manifest {manifest_digest}) is rejected by the signature "
                f"policy {policy.source}: {section}, requirement {number} of "
                f"{len(requirements)} ({req.describe()}): {exc}",
                hint=_rejection_hint(req)) from None
    return {"policy": policy.source, "scope": section, "requirements": reports}


def _rejection_hint(req: Requirement) -> str:
    if req.type == "reject":
        return "nothing was stored; the policy forbids images from this scope"
    return ("nothing was stored; check that the image is signed for this digest and "
            "identity by a key the policy names, and where registries.d (--registries-d) "
            "says its signatures are")


def _check(req: Requirement, intended: DockerName | None, manifest: bytes, digest: str,
           signatures: SignatureSource | None) -> dict[str, Any]:
    if req.type == "insecureAcceptAnything":
        return {"type": req.type}
    if req.type == "reject":
        raise _Rejected("the policy rejects every image in this scope")
    if req.unsupported is not None:
        raise NotImplementedYet(f"signature policy: {req.unsupported} is not supported yet",
                                hint="use signedBy with GPGKeys, or sigstoreSigned with a "
                                     "public key (keyPath/keyData)")
    from podkit_image_pull import _signature_check as check

    keys = list(req.key_data) + [check.read_key_file(p, req.describe()) for p in req.key_paths]
    kind = "simple-signing" if req.type == "signedBy" else "sigstore"
    if signatures is None:
        found: list[FetchedSignature] = []
        reasons = [f"a signature was required, but images from this transport carry no "
                   f"{kind} signatures"]
    else:
        found = signatures.simple_signing() if req.type == "signedBy" else signatures.sigstore()
        reasons = _no_signature_reasons(found, signatures, kind)
    accepted = _first_accepted(req, found, keys, intended, manifest, digest, reasons)
    if accepted is None:
        if len(reasons) == 1:
            raise _Rejected(reasons[0])
        raise _Rejected(f"none of the {len(reasons)} signatures was accepted: "
                        + "; ".join(reasons))
    return {"type": req.type, **accepted}


def _no_signature_reasons(found: list[FetchedSignature], source: SignatureSource,
                          kind: str) -> list[str]:
    if found:
        return []
    return [f"a signature was required, but there is no {kind} signature (looked in: "
            f"{'; '.join(source.looked_in) or 'nowhere'})"]


def _first_accepted(req: Requirement, found: list[FetchedSignature], keys: list[bytes],
                    intended: DockerName | None, manifest: bytes, digest: str,
                    reasons: list[str]) -> dict[str, Any] | None:
    from podkit_image_pull import _signature_check as check
    from podkit_image_pull._gpg import GpgKeyring, SignatureRejected
    from podkit_image_pull._signatures import SIGSTORE_MEDIA_TYPE

    if not found:
        return None
    if req.type == "signedBy":
        verifier: Any = GpgKeyring(keys, what=req.describe())
        expected_type, media_type = check.SIMPLE_SIGNING_TYPE, None
    else:
        verifier = check.load_public_keys(keys, req.describe())
        expected_type, media_type = check.COSIGN_TYPE, SIGSTORE_MEDIA_TYPE
    try:
        for fetched in found:
            wrong = (fetched.format != "simple-signing" if media_type is None
                     else fetched.media_type != media_type)
            if wrong:
                kind = "simple-signing" if media_type is None else "sigstore"
                reasons.append(f"{fetched.origin}: not a {kind} signature "
                               f"({fetched.media_type or fetched.format})")
                continue
            try:
                if media_type is None:
                    payload, key = verifier.verify(fetched.blob)
                else:
                    payload, index = check.verify_sigstore(fetched, verifier)
                    key = f"public key {index + 1} of the requirement"
                reference, claimed = check.parse_payload(payload, expected_type)
                if not check.manifest_matches(manifest, claimed):
                    raise SignatureRejected(f"it signs manifest {claimed}, not {digest}")
                rule = req.signed_identity or DEFAULT_IDENTITY
                if intended is None:
                    raise SignatureRejected("the image has no docker reference to match "
                                            f"its identity {reference!r} against")
                if not rule.matches(intended, reference):
                    raise SignatureRejected(f"its identity {reference!r} is not accepted by "
                                            f"signedIdentity {rule.describe()} for {intended}")
            except SignatureRejected as exc:
                reasons.append(f"{fetched.origin}: {exc}")
                continue
            return {"signature": fetched.origin, "key": key, "identity": reference}
    finally:
        if isinstance(verifier, GpgKeyring):
            verifier.close()
    return None


# --- the pull's hook -------------------------------------------------------------------

@record
class TrustCheck:
    """A loaded policy (and registries.d, read when signatures are needed) for one pull."""

    policy: Policy
    registries_d: str | os.PathLike[str] | None = None
    tls_verify: bool = True
    http_client: httpx.Client | None = None
    _storage: SignatureStorage | None = None

    def storage(self) -> SignatureStorage:
        if self._storage is None:
            from podkit_image_pull._registries_d import load_registries_d

            self._storage = load_registries_d(self.registries_d)
        return self._storage

    def check(self, ref: ImageReference, manifest_digest: str, manifest: bytes,
              source: ImageSource) -> dict[str, Any]:
        """Evaluate the policy for the platform manifest of ``ref``; raise if rejected.

        ``source`` is where the pull reads the image; signatures are looked for only for
        a registry (an image on disk carries none). As in containers/image, the policy
        judges the reference asked for (``ref``), while signatures are fetched from the
        endpoint actually read (a registries.conf mirror, if one served the image).
        """
        if ref.transport != "docker":
            path = getattr(ref, "path", "")
            scopes = path_scopes(path) if ref.transport in PATH_TRANSPORTS and path else []
            return evaluate(self.policy, None, manifest, manifest_digest, None,
                            transport=ref.transport, scopes=scopes, image=ref.reference)
        intended = DockerName(f"{ref.registry}/{ref.repository}", ref.tag, ref.digest)
        scopes = docker_scopes(intended)
        _, requirements = self.policy.requirements_for("docker", scopes)
        registry = getattr(source, "client", None)
        if registry is None or all(r.type in ("insecureAcceptAnything", "reject")
                                   for r in requirements):
            return evaluate(self.policy, intended, manifest, manifest_digest, None,
                            scopes=scopes)
        from podkit_image_pull._signatures import RegistrySignatures

        repository = getattr(source, "repository", ref.repository)
        physical = DockerName(f"{registry.registry}/{repository}", ref.tag, ref.digest)
        signatures = RegistrySignatures(registry, repository, manifest_digest, self.storage(),
                                        docker_scopes(physical), http_client=self.http_client,
                                        tls_verify=self.tls_verify)
        try:
            return evaluate(self.policy, intended, manifest, manifest_digest, signatures,
                            scopes=scopes)
        finally:
            signatures.close()


def load_trust(signature_policy: str | os.PathLike[str] | None = None,
               registries_d: str | os.PathLike[str] | None = None, *,
               tls_verify: bool = True, client: httpx.Client | None = None) -> TrustCheck:
    """Load the policy now (a missing or malformed one fails before any request)."""
    if registries_d is not None and not Path(registries_d).is_dir():
        raise NotFound(f"registries.d directory {registries_d} does not exist",
                       hint="pass an existing directory to --registries-d")
    return TrustCheck(load_policy(signature_policy), registries_d, tls_verify, client)
