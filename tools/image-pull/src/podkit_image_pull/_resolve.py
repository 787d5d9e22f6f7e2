"""What a name means and where to fetch it from, by registries.conf (see _regconf).

1. Short names (``busybox``, ``library/busybox:1``, written without a registry and
   without ``docker://``): a remembered alias, then an ``[aliases]`` entry, gives one
   candidate; else each ``unqualified-search-registries`` entry gives one, tried in
   order: a candidate that does not exist (NotFound) passes to the next, any other
   error stops. ``short-name-mode = "enforcing"`` refuses an ambiguous name (several
   search registries) with the candidates in the message; nothing ever prompts. With
   no registries.conf at all, a short name means docker.io, as before.
2. Each candidate is matched against ``[[registry]]`` prefixes (longest wins): a
   ``blocked`` registry is refused; otherwise its mirrors (``pull-from-mirror``,
   ``mirror-by-digest-only``) and then its ``location`` are tried in order, each
   ``insecure`` on its own, each with its own credentials. The image document always
   names the candidate, not the mirror the bytes came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from podkit_common.errors import NotFound, PermissionDenied, RemoteError, UsageError
from podkit_common.records import record
from podkit_image_pull._reference import ImageReference, parse_reference
from podkit_image_pull._regconf import (
    Alias,
    Endpoint,
    RegistriesConf,
    Registry,
    aliases_file,
    load_registries_conf,
    prefix_match,
    read_aliases_file,
)

if TYPE_CHECKING:
    from podkit_image_pull._auth import CredentialsLike
    from podkit_image_pull._registry import RegistryClient

T = TypeVar("T")
#: A tag to parse a rewritten name with; only its registry and repository are used.
_TAG_PLACEHOLDER = "latest"


@record(frozen=True)
class PullSource:
    """One endpoint to try for a candidate: registry, repository there, trust."""

    registry: str
    repository: str
    insecure: bool = False
    mirror: bool = False

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


@record(frozen=True)
class Candidate:
    """A fully qualified name to try, with its endpoints (mirrors first), or the
    registries.conf entry that blocks it."""

    ref: ImageReference
    sources: tuple[PullSource, ...]
    blocked_by: Registry | None = None


@record(frozen=True)
class PullPlan:
    """What a reference resolved to: candidates in order and why (for messages)."""

    candidates: tuple[Candidate, ...]
    rationale: str


def _split_name(text: str) -> tuple[str, str]:
    """``repo[:tag][@digest]`` -> (repo, ":tag" / "@digest" suffix as typed)."""
    at = text.find("@")
    if at >= 0:
        return text[:at], text[at:]
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        return text[:colon], text[colon:]
    return text, ""


def pull_sources(ref: ImageReference, conf: RegistriesConf | None) -> Candidate:
    """The endpoints to try for ``ref`` (mirrors first, then the registry itself)."""
    name = f"{ref.registry}/{ref.repository}"
    reg = conf.find_registry(name) if conf is not None else None
    if reg is None:
        return Candidate(ref, (PullSource(ref.registry, ref.repository),))
    if reg.blocked:
        return Candidate(ref, (), blocked_by=reg)
    by_digest = ref.digest is not None
    endpoints: list[tuple[Endpoint, bool]] = []
    for mirror in reg.mirrors:
        if reg.mirror_by_digest_only and not by_digest:
            continue
        if mirror.pull_from_mirror == "digest-only" and not by_digest:
            continue
        if mirror.pull_from_mirror == "tag-only" and by_digest:
            continue
        endpoints.append((mirror, True))
    endpoints.append((Endpoint(reg.location, reg.insecure), False))
    matched = prefix_match(name, reg.prefix)
    sources = []
    for endpoint, is_mirror in endpoints:
        if not endpoint.location:  # a *.domain prefix without location: the name as is
            sources.append(PullSource(ref.registry, ref.repository, endpoint.insecure,
                                      is_mirror))
            continue
        rewritten = endpoint.location + name[matched:]
        try:
            target = parse_reference(f"docker://{rewritten}:{_TAG_PLACEHOLDER}")
        except UsageError as exc:
            raise UsageError(f"registries.conf {reg.origin}: rewriting {name} with "
                             f"{reg.prefix!r} -> {endpoint.location!r} gives an invalid "
                             f"name: {exc.message}") from None
        sources.append(PullSource(target.registry, target.repository, endpoint.insecure,
                                  is_mirror))
    return Candidate(ref, tuple(sources))


def resolve(text: str, ref: ImageReference, conf: RegistriesConf | None, *,
            aliases: Mapping[str, Alias] | None = None) -> PullPlan:
    """Resolve the reference ``text`` (parsed as ``ref``) into candidates to try.

    ``aliases`` are the remembered short-name choices (``read_aliases_file``); they
    win over registries.conf ``[aliases]``.
    """
    if ref.transport != "docker" or text.startswith("docker://") or not ref.short_name \
            or conf is None:
        why = "no registries.conf: short names mean docker.io" if conf is None and \
            ref.short_name and not text.startswith("docker://") else "fully qualified name"
        return PullPlan((pull_sources(ref, conf),), why)
    short, suffix = _split_name(text)
    alias = (aliases or {}).get(short) or conf.aliases.get(short)
    if alias is not None and alias.value is not None:
        target = parse_reference(f"docker://{alias.value}{suffix}")
        return PullPlan((pull_sources(target, conf),),
                        f"short-name alias {short!r} = {alias.value!r} from {alias.origin}")
    search = conf.unqualified_search_registries
    if not search:
        where = conf.search_origin or ", ".join(conf.files)
        raise UsageError(f"short name {text!r} did not resolve to an alias and no "
                         f"unqualified-search-registries are defined in {where}",
                         hint="use a fully qualified name (registry/repository:tag), or set "
                              "unqualified-search-registries or an [aliases] entry")
    candidates = tuple(pull_sources(parse_reference(f"docker://{reg}/{text}"), conf)
                       for reg in search)
    if len(candidates) > 1 and conf.short_name_mode == "enforcing":
        names = ", ".join(c.ref.name for c in candidates)
        raise UsageError(f"short name {text!r} is ambiguous: short-name-mode is \"enforcing\" "
                         f"and the unqualified-search-registries of {conf.search_origin} "
                         f"give several candidates: {names}",
                         hint="pull one of them by its fully qualified name, or add an "
                              "[aliases] entry for it")
    return PullPlan(candidates, f"unqualified-search-registries from {conf.search_origin}")


def pull_first(plan: PullPlan, attempt: Callable[[Candidate, PullSource], T], *,
               note: Callable[[str], None] | None = None) -> T:
    """Run ``attempt`` on each candidate's sources in order; return the first success.

    Within a candidate, a source that fails with NotFound or a RemoteError (a mirror
    that is down, refuses, or lacks the image) passes to the next source. Between
    candidates only NotFound passes on; anything else (verification, auth on the
    registry itself, a blocked registry) stops, so a search list never hides a real
    failure behind a later registry.
    """
    missing: list[str] = []
    for candidate in plan.candidates:
        if candidate.blocked_by is not None:
            reg = candidate.blocked_by
            raise PermissionDenied(f"pull {candidate.ref.name}: registry {reg.prefix!r} is "
                                   f"blocked in {reg.origin}",
                                   hint="registries.conf blocks pulls from it; remove "
                                        "blocked = true there if that is not wanted")
        try:
            return _first_source(candidate, attempt, note)
        except NotFound as exc:
            if len(plan.candidates) == 1:
                raise
            missing.append(f"{candidate.ref.name}: {exc.message}")
            if note is not None and candidate is not plan.candidates[-1]:
                note(f"{candidate.ref.name} not found, trying the next candidate")
    raise NotFound(f"no candidate has the image ({plan.rationale}): " + "; ".join(missing),
                   hint="check the name, or pull it by its fully qualified name")


def _first_source(candidate: Candidate, attempt: Callable[[Candidate, PullSource], T],
                  note: Callable[[str], None] | None) -> T:
    failures: list[str] = []
    last = len(candidate.sources) - 1
    for i, source in enumerate(candidate.sources):
        try:
            return attempt(candidate, source)
        except (NotFound, RemoteError) as exc:
            if i == last:
                if failures:
                    exc.message = f"{exc.message} (mirrors also failed: {'; '.join(failures)})"
                    exc.args = (exc.message,)
                raise
            failures.append(f"{source.name}: {exc.message}")
            if note is not None:
                note(f"mirror {source.name} failed ({exc.message}); trying the next source")
    raise RemoteError(f"pull {candidate.ref.name}: no source to pull from")


def pull_from_registries(text: str, ref: ImageReference,
                         run: Callable[[ImageReference, RegistryClient, str], T], *,
                         tls_verify: bool | None = None,
                         credentials: CredentialsLike | str = None,
                         authfile: str | os.PathLike[str] | None = None,
                         cert_dir: str | os.PathLike[str] | None = None,
                         registries_conf: str | os.PathLike[str] | None = None,
                         registries_conf_dir: str | os.PathLike[str] | None = None,
                         client_options: Mapping[str, Any] | None = None,
                         note: Callable[[str], None] | None = None) -> T:
    """Resolve ``text`` (parsed as ``ref``) with registries.conf and ``run`` it on the
    first endpoint that has it: ``run(candidate_ref, registry_client, repository)``.

    ``tls_verify`` None follows registries.conf (``insecure``), True/False overrides it
    for every endpoint, as podman's ``--tls-verify`` does. ``credentials`` (``--creds``:
    "USER:PASSWORD", a pair or Credentials) are used for every endpoint, as in podman;
    otherwise each endpoint's own are looked up (auth files, helpers) on its first
    challenge. ``client_options`` go to every RegistryClient (``client``, ``retry``).
    """
    from podkit_image_pull._auth import credentials_lookup, parse_credentials
    from podkit_image_pull._registry import RegistryClient

    if isinstance(credentials, str):
        credentials = parse_credentials(credentials)
    conf = load_registries_conf(registries_conf, conf_dir=registries_conf_dir)
    remembered = read_aliases_file(aliases_file()) if conf is not None and ref.short_name \
        else {}
    plan = resolve(text, ref, conf, aliases=remembered)
    helpers = tuple(conf.credential_helpers) if conf is not None else ("containers-auth.json",)

    def attempt(candidate: Candidate, source: PullSource) -> T:
        verify = tls_verify if tls_verify is not None else not source.insecure
        creds = credentials if credentials is not None else credentials_lookup(
            source.registry, source.repository, authfile=authfile, helpers=helpers)
        with RegistryClient(source.registry, tls_verify=verify, credentials=creds,
                            cert_dir=cert_dir, **dict(client_options or {})) as registry:
            return run(candidate.ref, registry, source.repository)

    return pull_first(plan, attempt, note=note)
