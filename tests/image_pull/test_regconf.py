"""registries.conf: files and merging, short names, aliases, prefixes, mirrors, blocking.

Unit tables first (no network), then pulls from real registries on 127.0.0.1: two
local registries for the search list (the image only in the second), an alias, a
mirror that has the image while the primary is dead, a prefix rewritten to another
registry, and a blocked registry.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from podkit_common.errors import (
    NotFound,
    PermissionDenied,
    RemoteError,
    UsageError,
    VerificationFailed,
)
from podkit_image_pull import _regconf as regconf
from podkit_image_pull import parse_reference, pull
from podkit_image_pull._regconf import (
    Alias,
    RegistriesConf,
    aliases_file,
    config_sources,
    load_registries_conf,
    parse_registries_conf,
    prefix_match,
    read_aliases_file,
)
from podkit_image_pull._resolve import (
    Candidate,
    PullPlan,
    PullSource,
    pull_first,
    pull_sources,
    resolve,
)
from tests.image_pull.authbed import isolated_env
from tests.testbed.env import venv_bin
from tests.testbed.registry import LocalRegistry, free_port


def conf_of(text: str, origin: str = "/etc/containers/registries.conf") -> RegistriesConf:
    conf = RegistriesConf()
    regconf._merge(conf, parse_registries_conf(text, origin), origin)
    return conf


def names(plan: PullPlan) -> list[str]:
    return [c.ref.name for c in plan.candidates]


# --- which files ------------------------------------------------------------------------------

def test_config_sources(tmp_path):
    env = {"HOME": str(tmp_path)}
    main, explicit, dirs = config_sources(env=env)
    assert (main, explicit) == (Path("/etc/containers/registries.conf"), False)
    assert dirs == [Path("/etc/containers/registries.conf.d"),
                    tmp_path / ".config/containers/registries.conf.d"]
    assert config_sources("/x.conf", conf_dir="/d", env=env) == (Path("/x.conf"), True,
                                                                 [Path("/d")])
    assert config_sources(env={**env, "CONTAINERS_REGISTRIES_CONF": "/e.conf"})[:2] == (
        Path("/e.conf"), True)
    user = tmp_path / ".config/containers/registries.conf"
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert config_sources(env=env) == (user, False,
                                       [tmp_path / ".config/containers/registries.conf.d"])


def test_no_file_at_all_means_no_configuration(tmp_path, monkeypatch):
    monkeypatch.setattr(regconf, "SYSTEM_REGISTRIES_CONF", tmp_path / "none.conf")
    monkeypatch.setattr(regconf, "SYSTEM_REGISTRIES_CONF_DIR", tmp_path / "none.d")
    assert load_registries_conf(env={"HOME": str(tmp_path)}) is None
    # Only a drop-in: that is a configuration.
    dropins = tmp_path / "home/.config/containers/registries.conf.d"
    dropins.mkdir(parents=True)
    (dropins / "x.conf").write_text('unqualified-search-registries = ["q.test"]\n')
    conf = load_registries_conf(env={"HOME": str(tmp_path / "home")})
    assert conf is not None and conf.unqualified_search_registries == ["q.test"]
    with pytest.raises(UsageError, match="does not exist"):
        load_registries_conf(tmp_path / "missing.conf", conf_dir=tmp_path)


def test_drop_ins_are_merged_in_name_order(tmp_path):
    main = tmp_path / "registries.conf"
    main.write_text('unqualified-search-registries = ["a.test", "b.test"]\n'
                    'short-name-mode = "enforcing"\n'
                    '[aliases]\n"app" = "a.test/app"\n"tool" = "a.test/tool"\n'
                    '[[registry]]\nlocation = "a.test"\ninsecure = true\n')
    dropins = tmp_path / "d"
    dropins.mkdir()
    (dropins / "20-late.conf").write_text(
        '[aliases]\n"app" = "c.test/app"\n"tool" = ""\n'
        '[[registry]]\nlocation = "a.test"\nblocked = true\n')
    (dropins / "10-early.conf").write_text('unqualified-search-registries = ["z.test"]\n'
                                           'credential-helpers = ["pass"]\n')
    (dropins / "ignored.txt").write_text("not = [toml")
    conf = load_registries_conf(main, conf_dir=dropins, env={})
    assert conf.files == [str(main), str(dropins / "10-early.conf"),
                          str(dropins / "20-late.conf")]
    assert conf.unqualified_search_registries == ["z.test"]
    assert conf.search_origin == str(dropins / "10-early.conf")
    assert conf.short_name_mode == "enforcing"
    assert conf.credential_helpers == ["pass"]
    assert conf.aliases["app"] == Alias("c.test/app", str(dropins / "20-late.conf"))
    assert conf.aliases["tool"].value is None
    (reg,) = conf.registries
    assert reg.blocked and not reg.insecure  # the later table replaced the whole entry


def test_v1_files_are_converted():
    conf = conf_of('[registries.search]\nregistries = ["a.test"]\n'
                   '[registries.insecure]\nregistries = ["b.test:5000"]\n'
                   '[registries.block]\nregistries = ["c.test"]\n')
    assert conf.unqualified_search_registries == ["a.test"]
    by_prefix = {r.prefix: r for r in conf.registries}
    assert by_prefix["b.test:5000"].insecure and by_prefix["c.test"].blocked


@pytest.mark.parametrize(("text", "said"), [
    ("not = [toml", "not valid TOML"),
    ('short-name-mode = "prompt"', "invalid short-name-mode"),
    ('unqualified-search-registries = ["https://a.test"]', "URI schemes"),
    ('unqualified-search-registries = ["a.test/ns"]', "expected host[:port]"),
    ('unqualified-search-registries = "a.test"', "list of strings"),
    ('[[registry]]\nprefix = "*.a.test/x"', "must look like *.example.com"),
    ('[[registry]]\nprefix = "a.test/x"', "has no location"),
    ('[[registry]]\nlocation = "a.test"\npull-from-mirror = "all"', "for mirrors"),
    ('[[registry]]\nlocation = "a.test"\n[[registry.mirror]]\nlocation = "m.test"\n'
     'pull-from-mirror = "sometimes"', "unsupported pull-from-mirror"),
    ('[[registry]]\nlocation = "a.test"\nmirror-by-digest-only = true\n[[registry.mirror]]\n'
     'location = "m.test"\npull-from-mirror = "all"', "mirror-by-digest-only"),
    ('[[registry]]\nlocation = "a.test"\n[[registry]]\nprefix = "x.test"\n'
     'location = "a.test"\ninsecure = true', "conflicting"),
    ('[[registry]]\nlocation = "a.test"\ninsecure = "yes"', "true or false"),
    ('[aliases]\n"a.test/app" = "b.test/app"', "invalid short name"),
    ('[aliases]\n"app" = "app"', "must name a registry"),
    ('[aliases]\n"app" = "b.test/app:1"', "without tag or digest"),
    ('[registries.search]\nregistries = []\n[[registry]]\nlocation = "a"', "mixes"),
])
def test_invalid_files_are_usage_errors_naming_the_file(text, said):
    with pytest.raises(UsageError) as info:
        parse_registries_conf(text, "/etc/x.conf")
    assert said in info.value.message and "/etc/x.conf" in info.value.message


def test_drop_ins_must_be_v2():
    with pytest.raises(UsageError, match="v2 format"):
        parse_registries_conf('[registries.search]\nregistries = ["a"]', "d.conf", drop_in=True)


# --- prefixes and endpoints -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "prefix", "length"), [
    ("a.test/app", "a.test", 6),
    ("a.test/ns/app", "a.test/ns", 9),
    ("a.test/nsx/app", "a.test/ns", -1),
    ("a.test:5000/app", "a.test", -1),  # containers/image's port quirk, not copied
    ("a.test/app", "a.test/app", 10),
    ("sub.a.test/app", "*.a.test", 10),
    ("deep.sub.a.test:5000/app", "*.a.test", 15),
    ("a.test/app", "*.a.test", -1),
    ("x.test/sub.a.test/app", "*.a.test", -1),
])
def test_prefix_matching(name, prefix, length):
    assert prefix_match(name, prefix) == length


def test_the_longest_prefix_wins():
    conf = conf_of('[[registry]]\nlocation = "a.test"\n'
                   '[[registry]]\nprefix = "a.test/ns"\nlocation = "m.test/mirror-of-ns"\n'
                   '[[registry]]\nprefix = "*.b.test"\nblocked = true\n')
    assert conf.find_registry("a.test/ns/app").location == "m.test/mirror-of-ns"
    assert conf.find_registry("a.test/other").prefix == "a.test"
    assert conf.find_registry("x.b.test/app").blocked
    assert conf.find_registry("c.test/app") is None


MIRRORED = ('[[registry]]\nprefix = "a.test/ns"\nlocation = "real.test/x"\ninsecure = true\n'
            '[[registry.mirror]]\nlocation = "m1.test"\n'
            '[[registry.mirror]]\nlocation = "m2.test/y"\npull-from-mirror = "digest-only"\n'
            '[[registry.mirror]]\nlocation = "m3.test"\npull-from-mirror = "tag-only"\n'
            '[[registry.mirror]]\nlocation = "m4.test"\ninsecure = true\n')
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "expected"), [
    ("a.test/ns/app:1", ["m1.test/app", "m3.test/app", "m4.test/app", "real.test/x/app"]),
    (f"a.test/ns/app@{DIGEST}",
     ["m1.test/app", "m2.test/y/app", "m4.test/app", "real.test/x/app"]),
    ("a.test/other:1", ["a.test/other"]),
])
def test_mirrors_come_first_and_follow_pull_from_mirror(ref, expected):
    candidate = pull_sources(parse_reference(ref), conf_of(MIRRORED))
    assert [s.name for s in candidate.sources] == expected
    insecure = {s.name: s.insecure for s in candidate.sources}
    assert insecure.get("real.test/x/app", True) and not insecure.get("m1.test/app", False)
    assert candidate.sources[-1].mirror is False


def test_mirror_by_digest_only_and_wildcards():
    conf = conf_of('[[registry]]\nlocation = "a.test"\nmirror-by-digest-only = true\n'
                   '[[registry.mirror]]\nlocation = "m.test"\n'
                   '[[registry]]\nprefix = "*.w.test"\ninsecure = true\n')
    assert [s.name for s in pull_sources(parse_reference("a.test/app:1"), conf).sources] == [
        "a.test/app"]
    assert len(pull_sources(parse_reference(f"a.test/app@{DIGEST}"), conf).sources) == 2
    (wild,) = pull_sources(parse_reference("r.w.test/app:1"), conf).sources
    assert wild == PullSource("r.w.test", "app", insecure=True)


def test_blocked_registries_are_marked():
    candidate = pull_sources(parse_reference("c.test/app:1"),
                             conf_of('[[registry]]\nlocation = "c.test"\nblocked = true\n'))
    assert candidate.blocked_by is not None and candidate.sources == ()


# --- short names --------------------------------------------------------------------------------

SEARCH = ('unqualified-search-registries = ["one.test", "docker.io"]\n'
          '[aliases]\n"aliased" = "quay.test/team/aliased"\n"gone" = ""\n')


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", ["one.test/busybox:latest", "docker.io/library/busybox:latest"]),
    ("library/busybox:1", ["one.test/library/busybox:1", "docker.io/library/busybox:1"]),
    (f"busybox@{DIGEST}", [f"one.test/busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"]),
    ("aliased:2", ["quay.test/team/aliased:2"]),
    ("gone", ["one.test/gone:latest", "docker.io/library/gone:latest"]),
    ("docker://busybox", ["docker.io/library/busybox:latest"]),
    ("x.test/busybox", ["x.test/busybox:latest"]),
    ("localhost/busybox", ["localhost/busybox:latest"]),
])
def test_short_name_resolution(text, expected):
    assert names(resolve(text, parse_reference(text), conf_of(SEARCH))) == expected


def test_without_registries_conf_short_names_mean_docker_io():
    plan = resolve("busybox", parse_reference("busybox"), None)
    assert names(plan) == ["docker.io/library/busybox:latest"]
    assert "docker.io" in plan.rationale


def test_remembered_aliases_win_over_the_configuration(tmp_path):
    path = tmp_path / "short-name-aliases.conf"
    path.write_text('[aliases]\n"aliased" = "mine.test/aliased"\n')
    plan = resolve("aliased", parse_reference("aliased"), conf_of(SEARCH),
                   aliases=read_aliases_file(path))
    assert names(plan) == ["mine.test/aliased:latest"]
    assert str(path) in plan.rationale
    assert read_aliases_file(tmp_path / "missing.conf") == {}


def test_aliases_file_location():
    assert aliases_file({"HOME": "/h"}, euid=0) == Path(
        "/var/cache/containers/short-name-aliases.conf")
    assert aliases_file({"HOME": "/h"}, euid=1000) == Path(
        "/h/.cache/containers/short-name-aliases.conf")
    assert aliases_file({"HOME": "/h", "XDG_CACHE_HOME": "/c"}, euid=1000) == Path(
        "/c/containers/short-name-aliases.conf")


def test_enforcing_mode_refuses_an_ambiguous_name_and_lists_the_candidates():
    conf = conf_of('short-name-mode = "enforcing"\n' + SEARCH)
    with pytest.raises(UsageError) as info:
        resolve("busybox", parse_reference("busybox"), conf)
    assert "one.test/busybox:latest" in info.value.message
    assert "docker.io/library/busybox:latest" in info.value.message
    # One candidate, or an alias, is not ambiguous.
    assert names(resolve("aliased", parse_reference("aliased"), conf)) == [
        "quay.test/team/aliased:latest"]
    single = conf_of('unqualified-search-registries = ["one.test"]\n'
                     'short-name-mode = "enforcing"\n')
    assert names(resolve("busybox", parse_reference("busybox"), single)) == [
        "one.test/busybox:latest"]


def test_no_search_registries_and_no_alias_is_a_clear_error():
    with pytest.raises(UsageError) as info:
        resolve("busybox", parse_reference("busybox"), conf_of("", "/etc/r.conf"))
    assert "no unqualified-search-registries are defined in /etc/r.conf" in info.value.message


# --- trying candidates and sources ------------------------------------------------------------

def _plan(*candidates: list[str]) -> PullPlan:
    return PullPlan(tuple(
        Candidate(parse_reference(f"c{i}.test/app"),
                  tuple(PullSource(s, "app", mirror=j < len(srcs) - 1)
                        for j, s in enumerate(srcs)))
        for i, srcs in enumerate(candidates)), "test")


def _attempt(outcomes: dict[str, Exception | str], tried: list[str]):
    def attempt(candidate: Candidate, source: PullSource) -> str:
        tried.append(source.registry)
        outcome = outcomes[source.registry]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return attempt


def test_not_found_passes_to_the_next_candidate_other_errors_stop():
    tried: list[str] = []
    plan = _plan(["a"], ["b"], ["c"])
    assert pull_first(plan, _attempt({"a": NotFound("no"), "b": "got b", "c": "got c"},
                                     tried)) == "got b"
    assert tried == ["a", "b"]
    tried.clear()
    with pytest.raises(RemoteError):
        pull_first(plan, _attempt({"a": RemoteError("down"), "b": "got b"}, tried))
    assert tried == ["a"]
    with pytest.raises(NotFound) as info:
        pull_first(plan, _attempt({k: NotFound(f"{k} lacks it") for k in "abc"}, []))
    assert all(f"{k} lacks it" in info.value.message for k in "abc")


def test_mirrors_fall_through_on_remote_errors_but_not_on_verification_failures():
    tried: list[str] = []
    plan = _plan(["m1", "m2", "primary"])
    assert pull_first(plan, _attempt({"m1": RemoteError("down"), "m2": NotFound("no"),
                                      "primary": "ok"}, tried)) == "ok"
    assert tried == ["m1", "m2", "primary"]
    with pytest.raises(VerificationFailed):
        pull_first(plan, _attempt({"m1": VerificationFailed("bad"), "primary": "ok"}, []))
    with pytest.raises(RemoteError) as info:
        pull_first(plan, _attempt({"m1": RemoteError("m1 down"), "m2": RemoteError("m2 down"),
                                   "primary": RemoteError("primary down")}, []))
    assert "primary down" in info.value.message and "m1 down" in info.value.message


# --- real registries on 127.0.0.1 -----------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry()
    try:
        yield reg.start()
    finally:
        reg.stop()


@pytest.fixture
def hermetic(tmp_path, monkeypatch) -> Path:
    """HOME in tmp_path, no podman variables, remembered aliases read from tmp_path."""
    for key in ("CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME",
                "XDG_CACHE_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(regconf, "ROOT_ALIASES_FILE", tmp_path / "short-name-aliases.conf")
    (tmp_path / "conf.d").mkdir()
    return tmp_path


def pull_with(tmp: Path, conf: str, ref: str, **kw) -> dict:
    path = tmp / "registries.conf"
    path.write_text(conf)
    return pull(ref, root=tmp / "root", registries_conf=path, registries_conf_dir=tmp / "conf.d",
                **kw)


def insecure(*urls: str) -> str:
    return "".join(f'[[registry]]\nlocation = "{u}"\ninsecure = true\n' for u in urls)


def stored(root: Path) -> list[str]:
    folder = root / "blobs" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


pytest_registry = pytest.mark.registry


@pytest_registry
def test_search_registries_are_tried_in_order(images, empty_registry, hermetic):
    full, empty = images.registry_url, empty_registry.url
    conf = f'unqualified-search-registries = ["{empty}", "{full}"]\n' + insecure(empty, full)
    doc = pull_with(hermetic, conf, "busybox:oci")
    assert doc["image"]["name"] == f"{full}/busybox:oci"
    assert doc["image"]["reference"] == f"docker://{full}/busybox:oci"
    assert doc["image"]["digest"] == images["busybox:oci"].digest


@pytest_registry
def test_a_search_registry_that_fails_otherwise_stops_the_search(images, hermetic):
    dead = f"127.0.0.1:{free_port()}"
    conf = (f'unqualified-search-registries = ["{dead}", "{images.registry_url}"]\n'
            + insecure(dead, images.registry_url))
    with pytest.raises(RemoteError, match=dead):
        pull_with(hermetic, conf, "busybox:oci")


@pytest_registry
def test_an_alias_names_the_image(images, hermetic):
    conf = f'[aliases]\n"mybox" = "{images.registry_url}/busybox"\n' + insecure(
        images.registry_url)
    doc = pull_with(hermetic, conf, "mybox:latest")
    assert doc["image"]["name"] == f"{images.registry_url}/busybox:latest"
    assert doc["image"]["digest"] == images["busybox:latest"].digest


@pytest_registry
@pytest.mark.parametrize("dead_one", ["primary", "mirror"])
def test_mirrors(images, hermetic, dead_one):
    full, dead = images.registry_url, f"127.0.0.1:{free_port()}"
    primary, mirror = (dead, full) if dead_one == "primary" else (full, dead)
    conf = (f'[[registry]]\nlocation = "{primary}"\ninsecure = true\n'
            f'[[registry.mirror]]\nlocation = "{mirror}"\ninsecure = true\n')
    doc = pull_with(hermetic, conf, f"docker://{primary}/busybox:latest")
    # The document names what was asked for, wherever the bytes came from.
    assert doc["image"]["name"] == f"{primary}/busybox:latest"
    assert doc["image"]["digest"] == images["busybox:latest"].digest


@pytest_registry
def test_a_prefix_is_rewritten_to_its_location(images, hermetic):
    conf = (f'[[registry]]\nprefix = "example.test/team"\nlocation = "{images.registry_url}"\n'
            'insecure = true\n')
    doc = pull_with(hermetic, conf, "example.test/team/busybox:oci")
    assert doc["image"]["name"] == "example.test/team/busybox:oci"
    assert doc["image"]["digest"] == images["busybox:oci"].digest


@pytest_registry
def test_insecure_in_registries_conf_is_overridden_by_tls_verify(images, hermetic):
    conf = insecure(images.registry_url)
    assert pull_with(hermetic, conf, images.ref("busybox:latest"))["image"]
    with pytest.raises(RemoteError):  # --tls-verify=true: HTTPS only, and it speaks HTTP
        pull_with(hermetic, conf, images.ref("busybox:latest"), tls_verify=True)


@pytest_registry
def test_a_blocked_registry_is_refused_and_nothing_is_stored(images, hermetic):
    conf = f'[[registry]]\nlocation = "{images.registry_url}"\nblocked = true\n'
    with pytest.raises(PermissionDenied) as info:
        pull_with(hermetic, conf, images.ref("busybox:latest"), tls_verify=False)
    assert "blocked" in info.value.message and str(hermetic / "registries.conf") in \
        info.value.message
    assert stored(hermetic / "root") == []


def run_cli(tmp: Path, conf: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "registries.conf").write_text(conf)
    env = isolated_env(tmp, PATH=f"{venv_bin()}:/usr/bin:/bin", PODKIT_ROOT=str(tmp / "root"))
    return subprocess.run(["pod-image-pull", "--progress=none", "--registries-conf",
                           str(tmp / "registries.conf"), "--registries-conf-dir",
                           str(tmp / "conf.d"), *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest_registry
@pytest.mark.e2e
def test_cli_short_names_and_blocking(images, empty_registry, tmp_path):
    (tmp_path / "conf.d").mkdir()
    full, empty = images.registry_url, empty_registry.url
    search = f'unqualified-search-registries = ["{empty}", "{full}"]\n' + insecure(empty, full)
    # A name unlikely to have a remembered alias in /var/cache (root reads it there).
    ok = run_cli(tmp_path, search, "busybox:zstd")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["image"]["name"] == f"{full}/busybox:zstd"
    ambiguous = run_cli(tmp_path, 'short-name-mode = "enforcing"\n' + search, "busybox:zstd")
    assert ambiguous.returncode == 2
    message = json.loads(ambiguous.stderr.splitlines()[-1])["error"]["message"]
    assert f"{empty}/busybox:zstd" in message and f"{full}/busybox:zstd" in message
    blocked = run_cli(tmp_path, f'[[registry]]\nlocation = "{full}"\nblocked = true\n',
                      "--tls-verify=false", f"{full}/busybox:zstd")
    assert blocked.returncode == 12 and "blocked" in blocked.stderr
