"""The trust policy (containers-policy.json(5)): parsing, scopes, signedIdentity rules,
and what a pull does with insecureAcceptAnything / reject, against the real registry.

Signatures (signedBy, sigstoreSigned) are in test_signatures.py.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from podkit_common.errors import (
    InvalidDocument,
    NotFound,
    NotImplementedYet,
    VerificationFailed,
)
from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from podkit_image_pull._identity import (
    IdentityRule,
    docker_scopes,
    parse_docker_name,
    path_scopes,
)
from podkit_image_pull._policy import default_policy_path, load_policy, parse_policy
from podkit_image_pull._registries_d import load_registries_d, parse_registries_yaml
from tests.image_pull.fakes import HOST, FakeRegistry
from tests.testbed.images import busybox_image
from tests.testbed.push import push

ACCEPT = [{"type": "insecureAcceptAnything"}]
REJECT = [{"type": "reject"}]
DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "a" * 64
RHEL = "registry.access.redhat.com/rhel7/rhel:7.2.3"
RHEL_REPO = "registry.access.redhat.com/rhel7/rhel"


def write_policy(path: Path, default: list, transports: dict | None = None) -> Path:
    doc: dict = {"default": default}
    if transports is not None:
        doc["transports"] = transports
    path.write_text(json.dumps(doc))
    return path


def nothing_stored(root: Path) -> bool:
    blobs = root / "blobs" / "sha256"
    return not blobs.exists() or not any(blobs.iterdir())


# --- docker names and scopes -----------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", "docker.io/library/busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest"),
    ("library/busybox", "docker.io/library/busybox"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
    ("quay.io/ns/app@" + DIGEST, "quay.io/ns/app@" + DIGEST),
    ("localhost/app:v1", "localhost/app:v1"),
    ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"),
    ("busybox:latest@" + DIGEST, "docker.io/library/busybox:latest@" + DIGEST),
    ("UPPER/busybox", "UPPER/busybox"),  # an uppercase first component is a host
    ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", None),
    ("docker.io/Library/busybox", None),
    ("", None),
    ("0123456789abcdef" * 4, None),
    ("busybox:bad tag", None),
    ("docker://busybox", None),
    ("busybox@sha256:short", None),
])
def test_docker_names_normalise_like_distribution(text, expected):
    parsed = parse_docker_name(text)
    assert (str(parsed) if parsed else None) == expected


def test_a_bare_repository_gets_no_default_tag():
    assert parse_docker_name("busybox").is_name_only


@pytest.mark.parametrize(("image", "scopes"), [
    ("registry.example.com/team/app:v1",
     ["registry.example.com/team/app:v1", "registry.example.com/team/app",
      "registry.example.com/team", "registry.example.com", "*.example.com", "*.com"]),
    ("127.0.0.1:5000/busybox@" + DIGEST,
     ["127.0.0.1:5000/busybox@" + DIGEST, "127.0.0.1:5000/busybox", "127.0.0.1:5000",
      "*.0.0.1", "*.0.1", "*.1"]),
    ("busybox:latest",
     ["docker.io/library/busybox:latest", "docker.io/library/busybox", "docker.io/library",
      "docker.io", "*.io"]),
    ("localhost:5000/app:1", ["localhost:5000/app:1", "localhost:5000/app", "localhost:5000"]),
])
def test_docker_scopes_go_from_most_to_least_specific(image, scopes):
    assert docker_scopes(parse_docker_name(image)) == scopes


def test_path_scopes_are_the_path_and_its_parents(tmp_path):
    layout = tmp_path / "a" / "layout"
    scopes = path_scopes(layout)
    assert scopes[0] == str(layout.resolve())
    assert scopes[1] == str(layout.resolve().parent)
    assert "/" not in scopes and scopes[-1].count("/") == 1


SCOPED = parse_policy(json.dumps({
    "default": REJECT,
    "transports": {
        "docker": {
            "registry.example.com/team/app:v1": [{"type": "insecureAcceptAnything"}],
            "registry.example.com/team/app": [{"type": "reject"}],
            "registry.example.com/team": [{"type": "sigstoreSigned", "keyData": "eA=="}],
            "registry.example.com": [{"type": "signedBy", "keyType": "GPGKeys",
                                      "keyPath": "/k.gpg"}],
            "*.example.com": [{"type": "insecureAcceptAnything"}],
        },
        "oci": {"": ACCEPT},
    },
}), "test")


@pytest.mark.parametrize(("transport", "image", "section"), [
    ("docker", "registry.example.com/team/app:v1",
     'transports.docker["registry.example.com/team/app:v1"]'),
    ("docker", "registry.example.com/team/app:v2",
     'transports.docker["registry.example.com/team/app"]'),
    ("docker", "registry.example.com/team/other:v1",
     'transports.docker["registry.example.com/team"]'),
    ("docker", "registry.example.com/x/y:1", 'transports.docker["registry.example.com"]'),
    ("docker", "mirror.example.com/team/app:v1", 'transports.docker["*.example.com"]'),
    ("docker", "a.b.example.com/app:v1", 'transports.docker["*.example.com"]'),
    ("docker", "example.com/app:v1", "default"),
    ("docker", "quay.io/team/app:v1", "default"),
    ("oci", None, 'transports.oci[""]'),
    ("docker-archive", None, "default"),
])
def test_the_most_specific_scope_wins(transport, image, section):
    scopes = docker_scopes(parse_docker_name(image)) if image else ["/some/layout"]
    assert SCOPED.requirements_for(transport, scopes)[0] == section


# --- signedIdentity --------------------------------------------------------------------

MATCH_EXACT = [
    ("busybox:latest", "busybox:latest", True),
    (RHEL, RHEL, True),
    ("busybox@" + DIGEST, "busybox@" + DIGEST, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "notbusybox:latest", False),
    ("busybox:latest", "hostname/library/busybox:latest", False),
    ("busybox:latest", "busybox@" + DIGEST, False),
    ("busybox@" + DIGEST, "busybox@" + OTHER_DIGEST, False),
    ("busybox", "busybox:latest", False),
    ("busybox", "busybox", False),
    ("busybox:latest@" + DIGEST, "busybox:latest@" + DIGEST, True),
    ("busybox:latest@" + DIGEST, "busybox@" + DIGEST, False),
    ("busybox:latest", "INVALID", False),
]
MATCH_REPOSITORY = [
    ("busybox:latest", "busybox:notlatest", True),
    ("busybox:latest", "library/busybox:notlatest", True),
    ("busybox:latest", "busybox@" + DIGEST, True),
    ("busybox", "busybox:notlatest", True),
    (RHEL, RHEL_REPO, True),
    ("busybox:latest", "notbusybox:latest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", RHEL, False),
    ("busybox:latest", "INVALID", False),
]
MATCH_REPO_DIGEST_OR_EXACT = [
    ("busybox:latest", "busybox:latest", True),
    ("busybox:latest", "busybox:notlatest", False),
    ("busybox:notlatest", "docker.io/library/busybox:latest", False),
    ("busybox", "busybox:latest", False),
    ("busybox:latest", "busybox", False),
    (RHEL, RHEL_REPO, False),
    ("busybox:latest", "busybox@" + DIGEST, False),
    ("busybox@" + DIGEST, "busybox:latest", True),
    ("busybox@" + DIGEST, "busybox@" + OTHER_DIGEST, True),
    ("busybox@" + DIGEST, "notbusybox:latest", False),
    ("busybox:latest@" + DIGEST, "busybox:latest", False),
    ("busybox:latest", "busybox:latest@" + DIGEST, False),
]


def _cases(rule: IdentityRule, table):
    return [pytest.param(rule, image, signed, result, id=f"{rule.type}-{image}-{signed}")
            for image, signed, result in table]


@pytest.mark.parametrize(("rule", "image", "signed", "result"), [
    *_cases(IdentityRule("matchExact"), MATCH_EXACT),
    *_cases(IdentityRule("matchRepository"), MATCH_REPOSITORY),
    *_cases(IdentityRule("matchRepoDigestOrExact"), MATCH_REPO_DIGEST_OR_EXACT),
    *_cases(IdentityRule("exactReference", "quay.io/team/app:v1"), [
        ("anything.example.com/whatever:1", "quay.io/team/app:v1", True),
        ("quay.io/team/app:v1", "quay.io/team/app:v2", False),
        ("quay.io/team/app:v1", "quay.io/team/app", False),
    ]),
    *_cases(IdentityRule("exactRepository", "quay.io/team/app"), [
        ("anything.example.com/whatever:1", "quay.io/team/app:v7", True),
        ("anything.example.com/whatever:1", "quay.io/team/app", True),
        ("quay.io/team/app:v1", "quay.io/team/other:v1", False),
    ]),
    *_cases(IdentityRule("remapIdentity", "mirror.example.com/team", "quay.io/team"), [
        ("mirror.example.com/team/app:v1", "quay.io/team/app:v1", True),
        ("mirror.example.com/team/app:v1", "mirror.example.com/team/app:v1", False),
        ("mirror.example.com/team/app:v1", "quay.io/team/app:v2", False),
        ("mirror.example.com/team/app@" + DIGEST, "quay.io/team/app:v9", True),
        ("mirror.example.com/teams/app:v1", "quay.io/team/app:v1", False),
        ("mirror.example.com/teams/app:v1", "mirror.example.com/teams/app:v1", True),
    ]),
    *_cases(IdentityRule("remapIdentity", "mirror.example.com", "docker.io"), [
        ("mirror.example.com/library/busybox:1", "busybox:1", True),
    ]),
])
def test_signed_identity_rules(rule, image, signed, result):
    assert rule.matches(parse_docker_name(image), signed) is result


# --- parsing policy.json ---------------------------------------------------------------

def test_a_full_policy_parses():
    key = base64.b64encode(b"key bytes").decode()
    policy = parse_policy(json.dumps({
        "default": REJECT,
        "transports": {
            "docker": {
                "example.com/a": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": key,
                                   "signedIdentity": {"type": "matchRepository"}}],
                "example.com/b": [{"type": "signedBy", "keyType": "GPGKeys",
                                   "keyPaths": ["/a.gpg", "/b.gpg"]}],
                "example.com/c": [{"type": "sigstoreSigned", "keyPath": "/c.pub",
                                   "signedIdentity": {"type": "remapIdentity",
                                                      "prefix": "example.com/c",
                                                      "signedPrefix": "quay.io/c"}}],
                "example.com/d": [{"type": "sigstoreSigned", "fulcio": {},
                                   "rekorPublicKeyPath": "/r.pub"}],
                "": ACCEPT,
            },
            "oci": {"/srv/layouts": ACCEPT},
            "docker-daemon": {"": ACCEPT},
            "atomic": {"whatever": ACCEPT},
        },
    }), "p.json")
    a = policy.transports["docker"]["example.com/a"][0]
    assert a.key_data == (b"key bytes",) and a.signed_identity == IdentityRule("matchRepository")
    assert policy.transports["docker"]["example.com/b"][0].key_paths == ("/a.gpg", "/b.gpg")
    assert policy.transports["docker"]["example.com/c"][0].describe() == \
        "sigstoreSigned keyPath /c.pub signedIdentity remapIdentity example.com/c -> quay.io/c"
    assert policy.transports["docker"]["example.com/d"][0].unsupported
    assert policy.default[0].type == "reject" and policy.source == "p.json"


@pytest.mark.parametrize(("doc", "message"), [
    ("not json", "not valid JSON"),
    ('{"default": [], "default": []}', "duplicate key"),
    ("[]", "must be a JSON object"),
    ({"transports": {}}, '"default" requirements are missing'),
    ({"default": []}, "non-empty list"),
    ({"default": ACCEPT, "extra": 1}, "unknown field(s) extra"),
    ({"default": [{"type": "acceptEverything"}]}, "unknown requirement type"),
    ({"default": [{"type": "reject", "keyPath": "/x"}]}, "unknown field(s) keyPath"),
    ({"default": [{"type": "signedBy", "keyPath": "/x"}]}, "keyType must be one of"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}, "needs one of keyPath"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/x",
                   "keyData": "eA=="}]}, "only one of keyPath, keyData"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "not base64!"}]},
     "must be base64"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": []}]},
     "non-empty list of strings"),
    ({"default": [{"type": "sigstoreSigned"}]}, "exactly one of a public key"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "/k", "fulcio": {}}]},
     "exactly one of a public key"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/x",
                   "signedIdentity": {"type": "matchEverything"}}]}, "signedIdentity: unknown"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/x",
                   "signedIdentity": {"type": "exactReference", "dockerReference": "busybox"}}]},
     "not a reference with a tag or digest"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/x",
                   "signedIdentity": {"type": "remapIdentity", "prefix": "quay.io/UPPER",
                                      "signedPrefix": "quay.io/x"}}]}, "prefix 'quay.io/UPPER'"),
    ({"default": ACCEPT, "transports": {"oci": {"relative/path": ACCEPT}}},
     "must be an absolute path"),
    ({"default": ACCEPT, "transports": {"oci": {"/": ACCEPT}}}, 'default scope ""'),
    ({"default": ACCEPT, "transports": {"oci-archive": {"/a/../b": ACCEPT}}}, "canonical"),
    ({"default": ACCEPT, "transports": {"docker-archive": {"/a": ACCEPT}}},
     'only the default scope ""'),
    ({"default": ACCEPT, "transports": {"docker": []}}, "must be an object of scopes"),
])
def test_malformed_policies_are_refused_with_the_reason(doc, message):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(InvalidDocument) as info:
        parse_policy(text, "/etc/containers/policy.json")
    assert message in info.value.message
    assert "/etc/containers/policy.json" in info.value.message
    assert "containers-policy.json(5)" in info.value.hint


def test_default_policy_path_follows_podman(tmp_path):
    system = tmp_path / "etc-policy.json"
    home = tmp_path / "home"
    with pytest.raises(NotFound) as info:
        default_policy_path(home=str(home), system=str(system))
    assert "--signature-policy" in info.value.hint and "insecureAcceptAnything" in info.value.hint
    system.write_text(json.dumps({"default": ACCEPT}))
    assert default_policy_path(home=str(home), system=str(system)) == system
    user = home / ".config" / "containers" / "policy.json"
    user.parent.mkdir(parents=True)
    user.write_text(json.dumps({"default": REJECT}))
    assert default_policy_path(home=str(home), system=str(system)) == user


def test_load_policy_errors(tmp_path):
    with pytest.raises(NotFound):
        load_policy(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidDocument) as info:
        load_policy(bad)
    assert str(bad) in info.value.message


# --- registries.d ----------------------------------------------------------------------

def test_registries_d_yaml_subset():
    doc = parse_registries_yaml(b"""---
# a comment
default-docker:
#  sigstore: file:///nowhere
  lookaside: file:///var/lib/sigs   # trailing comment
  use-sigstore-attachments: yes
docker:
  127.0.0.1:5000/team:
    lookaside: 'http://127.0.0.1:8000/sigs'
  "*.example.com":
    sigstore: "https://sigs.example.com/a#b"
    use-sigstore-attachments: false
  registry.example.com: {}
  empty.example.com:
""", "t.yaml")
    assert doc == {
        "default-docker": {"lookaside": "file:///var/lib/sigs", "use-sigstore-attachments": True},
        "docker": {
            "127.0.0.1:5000/team": {"lookaside": "http://127.0.0.1:8000/sigs"},
            "*.example.com": {"sigstore": "https://sigs.example.com/a#b",
                              "use-sigstore-attachments": False},
            "registry.example.com": {},
            "empty.example.com": None,
        },
    }


@pytest.mark.parametrize(("text", "message"), [
    (b"docker:\n  - a\n", "sequences"),
    (b"docker:\n\t a: b\n", "tabs"),
    (b"a: 1\na: 2\n", "duplicate key"),
    (b"docker:\n    a: 1\n  b: 2\n", "inconsistent indentation"),
    (b"docker: &anchor\n", "unsupported YAML"),
    (b"just text\n", "expected 'key: value'"),
    (b"a: 'open\n", "unterminated"),
])
def test_registries_d_yaml_outside_the_subset_is_refused(text, message):
    with pytest.raises(InvalidDocument) as info:
        parse_registries_yaml(text, "t.yaml")
    assert message in info.value.message and "t.yaml:" in info.value.message


def test_registries_d_lookup_and_merge(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "default-docker:\n  lookaside: file:///default\n"
        "docker:\n  reg.example.com/team:\n    sigstore: file:///team\n"
        "    use-sigstore-attachments: true\n")
    (tmp_path / "b.yaml").write_text(
        'docker:\n  "*.example.com":\n    lookaside: https://wild/sigs\n'
        "  reg.example.com/team/app:v1:\n    lookaside-staging: file:///only-staging\n")
    (tmp_path / "ignored.yml").write_text("not: [read")
    storage = load_registries_d(tmp_path)
    scopes = docker_scopes(parse_docker_name("reg.example.com/team/app:v1"))
    assert storage.lookaside_for(scopes) == "file:///team"
    assert storage.use_sigstore_attachments(scopes)
    other = docker_scopes(parse_docker_name("other.example.com/x:1"))
    assert storage.lookaside_for(other) == "https://wild/sigs"
    assert not storage.use_sigstore_attachments(other)
    elsewhere = docker_scopes(parse_docker_name("quay.io/x:1"))
    assert storage.lookaside_for(elsewhere) == "file:///default"
    (tmp_path / "c.yaml").write_text("default-docker:\n  lookaside: file:///again\n")
    with pytest.raises(InvalidDocument) as info:
        load_registries_d(tmp_path)
    assert "defined both in" in info.value.message


def test_registries_d_builtin_default_lookaside(tmp_path):
    storage = load_registries_d(tmp_path)
    scopes = docker_scopes(parse_docker_name("quay.io/x:1"))
    assert storage.lookaside_for(scopes, euid=0) == "file:///var/lib/containers/sigstore"
    assert storage.lookaside_for(scopes, euid=1000, home="/home/u") == \
        "file:///home/u/.local/share/containers/sigstore"


# --- pulls against the real registry ---------------------------------------------------

@pytest.mark.registry
def test_insecure_accept_anything_pulls_and_reports(images, tmp_path):
    policy = write_policy(tmp_path / "policy.json", ACCEPT)
    root = tmp_path / "root"
    doc = pull(images.ref("busybox:latest"), root=root, tls_verify=False,
               signature_policy=policy)
    SchemaSet(["podkit_image_pull"]).validate(doc, "urn:podkit:image-pull:image", what="pull")
    assert doc["image"]["trust"] == {"policy": str(policy), "scope": "default",
                                     "requirements": [{"type": "insecureAcceptAnything"}]}
    assert not nothing_stored(root)


@pytest.mark.registry
def test_reject_stores_nothing(images, tmp_path):
    policy = write_policy(tmp_path / "policy.json", REJECT)
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed) as info:
        pull(images.ref("busybox:multiarch"), root=root, tls_verify=False,
             signature_policy=policy)
    assert "rejected by the signature policy" in info.value.message
    assert "default, requirement 1 of 1 (reject)" in info.value.message
    assert "nothing was stored" in info.value.hint
    assert nothing_stored(root)


@pytest.mark.registry
def test_scopes_pick_the_requirements_per_repository(images, registry, tmp_path):
    push(registry.url, "policy-other", "v1", busybox_image(1, fmt="docker"))
    policy = write_policy(tmp_path / "policy.json", REJECT, {"docker": {
        f"{registry.url}/busybox": ACCEPT,
        f"{registry.url}/policy-other:v2": ACCEPT,
    }})
    doc = pull(images.ref("busybox:oci"), root=tmp_path / "a", tls_verify=False,
               signature_policy=policy)
    assert doc["image"]["trust"]["scope"] == f'transports.docker["{registry.url}/busybox"]'
    with pytest.raises(VerificationFailed) as info:
        pull(f"docker://{registry.url}/policy-other:v1", root=tmp_path / "b",
             tls_verify=False, signature_policy=policy)
    assert "default, requirement 1 of 1 (reject)" in info.value.message
    assert nothing_stored(tmp_path / "b")
    host_wide = write_policy(tmp_path / "host.json", REJECT, {"docker": {
        "*.0.0.1": ACCEPT, f"{registry.url}/policy-other": REJECT}})
    doc = pull(images.ref("busybox:latest"), root=tmp_path / "c", tls_verify=False,
               signature_policy=host_wide)
    assert doc["image"]["trust"]["scope"] == 'transports.docker["*.0.0.1"]'


@pytest.mark.registry
def test_the_users_policy_file_is_honoured(images, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".config" / "containers").mkdir(parents=True)
    write_policy(home / ".config" / "containers" / "policy.json", REJECT)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(VerificationFailed) as info:
        pull(images.ref("busybox:latest"), root=tmp_path / "root", tls_verify=False)
    assert str(home / ".config" / "containers" / "policy.json") in info.value.message
    assert nothing_stored(tmp_path / "root")


def test_a_missing_policy_fails_before_any_request(tmp_path):
    fake = FakeRegistry()
    fake.add_image("app:v1", busybox_image(1))
    with pytest.raises(NotFound) as info:
        pull(f"{HOST}/app:v1", root=tmp_path / "root", client=fake.client(),
             signature_policy=tmp_path / "missing.json")
    assert "missing.json" in info.value.message
    assert fake.requests == []
    bad = tmp_path / "bad.json"
    bad.write_text('{"default": [{"type": "reject", "typo": 1}]}')
    with pytest.raises(InvalidDocument):
        pull(f"{HOST}/app:v1", root=tmp_path / "root", client=fake.client(),
             signature_policy=bad)
    with pytest.raises(NotFound) as info:
        pull(f"{HOST}/app:v1", root=tmp_path / "root", client=fake.client(),
             signature_policy=write_policy(tmp_path / "ok.json", ACCEPT),
             registries_d=tmp_path / "no-such-dir")
    assert "registries.d" in info.value.message
    assert fake.requests == []


def test_unsupported_requirements_say_so(tmp_path):
    fake = FakeRegistry()
    fake.add_image("app:v1", busybox_image(1))
    policy = write_policy(tmp_path / "policy.json", [
        {"type": "sigstoreSigned", "fulcio": {"caPath": "/ca.pem", "oidcIssuer": "x",
                                              "subjectEmail": "y"},
         "rekorPublicKeyPath": "/rekor.pub"}])
    with pytest.raises(NotImplementedYet) as info:
        pull(f"{HOST}/app:v1", root=tmp_path / "root", client=fake.client(),
             signature_policy=policy, registries_d=tmp_path)
    assert "fulcio" in info.value.message
    assert nothing_stored(tmp_path / "root")
    gpg_x509 = write_policy(tmp_path / "x509.json", [
        {"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/c.pem"}])
    with pytest.raises(NotImplementedYet) as info:
        pull(f"{HOST}/app:v1", root=tmp_path / "root", client=fake.client(),
             signature_policy=gpg_x509, registries_d=tmp_path)
    assert "X509Certificates" in info.value.message


@pytest.mark.registry
def test_oci_layout_scopes_are_paths(images, tmp_path):
    layout = tmp_path / "layout"
    result = subprocess.run(
        ["skopeo", "--policy", str(write_policy(tmp_path / "skopeo.json", ACCEPT)), "copy",
         "--src-tls-verify=false", images.ref("busybox:oci"), f"oci:{layout}:v1"],
        capture_output=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr.decode()
    policy = write_policy(tmp_path / "policy.json", ACCEPT, {"oci": {str(layout): REJECT}})
    with pytest.raises(VerificationFailed) as info:
        pull(f"oci:{layout}:v1", root=tmp_path / "root", signature_policy=policy)
    assert f'transports.oci["{layout}"]' in info.value.message
    assert nothing_stored(tmp_path / "root")
    signed = write_policy(tmp_path / "signed.json", ACCEPT, {"oci": {str(tmp_path): [
        {"type": "signedBy", "keyType": "GPGKeys",
         "keyData": base64.b64encode(b"unused").decode()}]}})
    with pytest.raises(VerificationFailed) as info:
        pull(f"oci:{layout}:v1", root=tmp_path / "root", signature_policy=signed)
    assert "carry no simple-signing signatures" in info.value.message
    doc = pull(f"oci:{layout}:v1", root=tmp_path / "root",
               signature_policy=write_policy(tmp_path / "any.json", ACCEPT))
    assert doc["image"]["trust"]["scope"] == "default"


@pytest.mark.registry
def test_cli_reports_a_rejection_as_exit_6(images, tmp_path, podkit_env):
    policy = write_policy(tmp_path / "policy.json", REJECT)
    result = subprocess.run(
        ["pod-image-pull", "--tls-verify=false", "--signature-policy", str(policy),
         images.ref("busybox:latest")], capture_output=True, env=podkit_env, timeout=120,
        check=False)
    assert result.returncode == 6, result.stderr.decode()
    assert result.stdout == b""
    error = json.loads(result.stderr.decode().strip().splitlines()[-1])["error"]
    assert error["type"] == "VerificationFailed" and "reject" in error["message"]
    assert nothing_stored(Path(podkit_env["PODKIT_ROOT"]))
