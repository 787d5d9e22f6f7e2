"""``pod-image-pull inspect`` and ``tags`` against skopeo inspect and skopeo list-tags.

The executable runs through a real shell on the same images skopeo looks at (the test
registry, and layouts and archives skopeo made); both must agree on what the image is.
Inspect reads manifests and the config only: no layer request, nothing stored.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import httpx
import pytest

from podkit_common.errors import RemoteError
from podkit_common.schemas import SchemaSet
from podkit_image_pull import inspect, list_tags
from podkit_image_pull._tags import next_link
from tests.image_pull.fakes import HOST, FakeRegistry
from tests.image_pull.paging import paging_proxy
from tests.testbed.shell import sh
from tests.testbed.skopeo import Skopeo, isolated_env, make_archives, needs_skopeo

INSPECT = "urn:podkit:image-pull:inspect"
TAGS = "urn:podkit:image-pull:tags"
NAMES = ["busybox:latest", "busybox:oci", "busybox:multiarch", "busybox:multiarch-docker",
         "busybox:zstd"]


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory):
    return Skopeo(tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="module")
def archives(skopeo, images, tmp_path_factory):
    return make_archives(skopeo, images, tmp_path_factory.mktemp("archives"))


@pytest.fixture
def env(podkit_env, tmp_path):
    return isolated_env(podkit_env, tmp_path / "config")


@pytest.fixture
def empty_conf(tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return conf


def run(env: dict[str, str], *args: str):
    return sh(shlex.join(["pod-image-pull", *args]), env=env)


def document(env: dict[str, str], schema: str, *args: str) -> dict:
    result = run(env, *args)
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    SchemaSet(["podkit_image_pull"]).validate(doc, schema, what=" ".join(args[:1]))
    return doc


def assert_nothing_stored(env: dict[str, str]) -> None:
    root = Path(env["PODKIT_ROOT"])
    assert not root.exists() or list(root.iterdir()) == []


def assert_same_image(ours: dict, theirs: dict) -> None:
    assert ours["layers"] == theirs["Layers"]
    assert (ours["architecture"], ours["os"]) == (theirs["Architecture"], theirs["Os"])
    assert ours["env"] == theirs["Env"]
    assert ours["labels"] == theirs["Labels"]
    assert ours["created"] == theirs["Created"]


# --- inspect ----------------------------------------------------------------------------

@pytest.mark.registry
@needs_skopeo
@pytest.mark.parametrize("name", NAMES)
def test_inspect_registry_image_like_skopeo(images, skopeo, env, name):
    ref = images.ref(name)
    ours = document(env, INSPECT, "inspect", "--tls-verify=false", ref)
    theirs = skopeo.json("inspect", "--tls-verify=false", ref)
    assert_same_image(ours, theirs)
    # skopeo's Digest is what the reference names: the list, for a multi-platform image.
    assert (ours["index_digest"] or ours["digest"]) == theirs["Digest"] == images[name].digest
    assert sorted(ours["repo_tags"]) == sorted(theirs["RepoTags"])
    assert ours["name"] == f"{theirs['Name']}:{name.split(':')[1]}"
    assert ours["changed"] is False
    assert_nothing_stored(env)


@pytest.mark.registry
@needs_skopeo
@pytest.mark.parametrize("transport", ["oci", "oci-archive", "docker-archive"])
def test_inspect_layout_and_archive_like_skopeo(archives, skopeo, env, transport):
    ref = archives.refs()[transport]
    ours = document(env, INSPECT, "inspect", ref)
    theirs = skopeo.json("inspect", ref)
    assert_same_image(ours, theirs)
    assert ours["transport"] == transport and ours["path"] == ref.split(":")[1]
    if transport == "docker-archive":
        # Both describe the uncompressed layer files; the manifests are made up, differently.
        assert ours["repo_tags"] == ["docker.io/library/busybox:tag"]
        assert ours["name"] == "docker.io/library/busybox:tag"
    else:
        assert ours["digest"] == theirs["Digest"]
        assert ours["repo_tags"] == (["tag", "latest", "multi"] if transport == "oci"
                                     else ["tag"])
    assert_nothing_stored(env)


@pytest.mark.registry
@needs_skopeo
@pytest.mark.parametrize("where", ["registry", "oci", "oci-archive", "docker-archive"])
def test_raw_and_config_are_the_bytes_skopeo_sees(images, archives, skopeo, env, where):
    if where == "registry":
        ref, tls = images.ref("busybox:multiarch"), ["--tls-verify=false"]
    else:
        ref, tls = archives.refs()[where], []
    raw = run(env, "inspect", "--raw", *tls, ref)
    assert raw.returncode == 0, raw.stderr.decode()
    if where != "docker-archive":  # a docker archive's manifest is made up, differently
        assert raw.stdout == skopeo.run("inspect", "--raw", *tls, ref).stdout
    config = run(env, "inspect", "--config", *tls, ref)
    assert config.returncode == 0, config.stderr.decode()
    assert config.stdout == skopeo.run("inspect", "--config", "--raw", *tls, ref).stdout
    described = document(env, INSPECT, "inspect", *tls, ref)
    top = described["index_digest"] or described["digest"]
    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == top
    assert hashlib.sha256(config.stdout).hexdigest() == described["id"]
    assert_nothing_stored(env)


@pytest.mark.registry
def test_inspect_reads_no_layer(images, tmp_path, empty_conf):
    paths: list[str] = []
    hooks = {"request": [lambda request: paths.append(request.url.path)]}
    with httpx.Client(trust_env=False, event_hooks=hooks) as client:
        doc = inspect(images.ref("busybox:oci"), tls_verify=False, client=client,
                      registries_conf=empty_conf)
    built = images["busybox:oci"].image
    blobs = {p.rsplit("/", 1)[1] for p in paths if "/blobs/" in p}
    assert blobs == {built.config_digest}
    assert doc["layers"] == [layer.digest for layer in built.layers]
    assert any(p.endswith("/tags/list") for p in paths)
    paths.clear()
    with httpx.Client(trust_env=False, event_hooks=hooks) as client:
        quiet = inspect(images.ref("busybox:oci"), tls_verify=False, client=client,
                        registries_conf=empty_conf, repo_tags=False)
    assert quiet["repo_tags"] == [] and not any(p.endswith("/tags/list") for p in paths)


@pytest.mark.registry
def test_inspect_with_platform_picks_the_child(images, env):
    pushed = images["busybox:multiarch"]
    other = pushed.image.children[1]
    plat = "/".join(other.platform[k] for k in ("os", "architecture", "variant")
                    if k in other.platform)
    doc = document(env, INSPECT, "inspect", "--tls-verify=false", "--platform", plat,
                   pushed.ref)
    assert doc["digest"] == other.manifest_digest and doc["index_digest"] == pushed.digest
    assert doc["architecture"] == other.platform["architecture"]


@pytest.mark.registry
def test_inspect_errors_exit_with_their_code(images, archives, env):
    missing = run(env, "inspect", "--tls-verify=false",
                  f"docker://{images.registry_url}/busybox:no-such-tag")
    assert missing.returncode == 4 and missing.stdout == b""
    assert run(env, "inspect", "docker://127.0.0.1:1/Bad:tag").returncode == 2
    assert run(env, "inspect", f"oci:{archives.layout}").returncode == 2  # several images
    assert_nothing_stored(env)


# --- tags -------------------------------------------------------------------------------

@pytest.mark.registry
@needs_skopeo
def test_tags_like_skopeo_list_tags(images, skopeo, env):
    ref = f"docker://{images.registry_url}/busybox"
    ours = document(env, TAGS, "tags", "--tls-verify=false", ref)
    theirs = skopeo.json("list-tags", "--tls-verify=false", ref)
    assert ours["repository"] == theirs["Repository"]
    assert sorted(ours["tags"]) == sorted(theirs["Tags"]) == sorted(
        n.split(":")[1] for n in NAMES)


@pytest.mark.registry
@needs_skopeo
def test_tags_of_archives(archives, skopeo, env):
    ref = f"docker-archive:{archives.docker_archive}"
    ours = document(env, TAGS, "tags", ref)
    assert ours["tags"] == skopeo.json("list-tags", ref)["Tags"]
    assert ours["path"] == str(archives.docker_archive) and ours["repository"] is None
    layout = document(env, TAGS, "tags", f"oci:{archives.layout}")
    assert layout["tags"] == ["tag", "latest", "multi"]
    assert document(env, TAGS, "tags", f"oci-archive:{archives.oci_archive}")["tags"] == ["tag"]


@pytest.mark.registry
@needs_skopeo
def test_tags_follow_link_pages(images, skopeo, env):
    with paging_proxy(images.registry_url, page_size=2) as proxy:
        ref = f"docker://{proxy.url}/busybox"
        ours = document(env, TAGS, "tags", "--tls-verify=false", ref)
        assert len(proxy.tag_requests) == 3 and "last=" in proxy.tag_requests[-1]
        theirs = skopeo.json("list-tags", "--tls-verify=false", ref)
    assert ours["tags"] == theirs["Tags"]
    assert sorted(ours["tags"]) == sorted(n.split(":")[1] for n in NAMES)


@pytest.mark.registry
def test_tags_page_size_asks_for_smaller_pages(images, empty_conf):
    with paging_proxy(images.registry_url, page_size=100) as proxy:
        paged = list_tags(f"docker://{proxy.url}/busybox", tls_verify=False, page_size=1,
                          registries_conf=empty_conf)
        assert len(proxy.tag_requests) == len(NAMES)
    assert sorted(paged["tags"]) == sorted(n.split(":")[1] for n in NAMES)


def fake_tags(pages: dict[str, httpx.Response]) -> FakeRegistry:
    fake = FakeRegistry()
    fake.override = lambda request: pages.get(str(request.url.copy_with(scheme="https")))
    return fake


def test_tags_never_follow_a_link_to_another_host(empty_conf):
    fake = fake_tags({f"https://{HOST}/v2/app/tags/list": httpx.Response(
        200, json={"tags": ["a"]},
        headers={"Link": '<https://elsewhere.test/v2/app/tags/list?last=a>; rel="next"'})})
    with pytest.raises(RemoteError, match="another host"):
        list_tags(f"docker://{HOST}/app", client=fake.client(), registries_conf=empty_conf)
    assert all(r.url.host == HOST for r in fake.requests)


def test_tags_stop_on_a_link_loop(empty_conf):
    url = f"https://{HOST}/v2/app/tags/list"
    fake = fake_tags({url: httpx.Response(200, json={"tags": ["a"]},
                                          headers={"Link": '</v2/app/tags/list>; rel="next"'})})
    with pytest.raises(RemoteError, match="loops"):
        list_tags(f"docker://{HOST}/app", client=fake.client(), registries_conf=empty_conf)


def test_empty_repository_has_no_tags(empty_conf):
    fake = fake_tags({f"https://{HOST}/v2/app/tags/list": httpx.Response(
        200, json={"name": "app", "tags": None})})
    doc = list_tags(f"docker://{HOST}/app", client=fake.client(), registries_conf=empty_conf)
    assert doc["tags"] == [] and doc["repository"] == f"{HOST}/app"


@pytest.mark.parametrize("header, expected", [
    (None, None),
    ('</v2/x/tags/list?last=b&n=2>; rel="next"', "/v2/x/tags/list?last=b&n=2"),
    ('<https://r.test/v2/x/tags/list?last=b>; rel=next', "https://r.test/v2/x/tags/list?last=b"),
    ('</a>; rel="prev", </b>; rel="next"', "/b"),
    ('</a>; rel="prev"', None),
    ('</a>; title="x"; rel="first next"', "/a"),
])
def test_next_link(header, expected):
    assert next_link(header) == expected
