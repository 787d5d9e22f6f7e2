"""`pod images`, `pod image ...`, `pod rmi/tag/untag`: podman 4.3's output, checked
against podman itself (tests/testbed/podman.py) with the same images pulled from the
test registry into both stores in the same order."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from podkit_common.schemas import SchemaSet

SCHEMAS = SchemaSet(["podkit_pod"])

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.registry]


def pod(env: dict[str, str], *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pod", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=120)


def _both(podman: Any, env: dict[str, str], *args: str
          ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    return podman.run(*args, check=False), pod(env, *args)


@pytest.fixture
def stores(podman, images, podkit_env):  # type: ignore[no-untyped-def]
    """busybox:latest then busybox:oci (a child of it) pulled into podman and pod, and
    busybox:latest tagged localhost/extra/name:v1 in both."""
    refs = [images.ref(n).removeprefix("docker://") for n in ("busybox:latest", "busybox:oci")]
    for ref in refs:
        podman.pull(ref)
        res = pod(podkit_env, "pull", "--tls-verify=false", ref)
        assert res.returncode == 0, res.stderr
    for run in (podman.run, lambda *a: pod(podkit_env, *a)):
        assert run("tag", refs[0], "localhost/extra/name:v1").returncode == 0
    return refs


LISTINGS = [
    ("images",),
    ("images", "--digests"),
    ("images", "--no-trunc"),
    ("images", "-q"),
    ("images", "--noheading"),
    ("image", "ls", "--format", "table {{.ID}} {{.Tag}}\t{{.Size}} {{.CreatedAt}}"),
    ("image", "list", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}} {{.Containers}}"),
    ("images", "--format", "{{.ID}} {{.History}} {{.VirtualSize}} {{.Dangling}} {{.Names}}"),
    ("images", "--filter", "reference=localhost/extra/name"),
    ("images", "--filter", "reference=*busybox*", "--format", "{{.Repository}} {{.Tag}}"),
    ("images", "--filter", "dangling=false", "-q"),
    ("images", "--filter", "label=nope"),
]


def _rows(args: tuple[str, ...], out: str) -> list[str] | str:
    """A listing's lines, header first and the rows sorted: the test images share one
    creation time, and podman's order among equal times is its store's (not stable from
    one run to the next); anything else as printed."""
    if args[0] != "images" and args[:2] not in (("image", "ls"), ("image", "list")):
        return out
    lines = out.splitlines()
    head = lines[:1] if lines and lines[0].startswith(("REPOSITORY", "IMAGE ID")) else []
    return head + sorted(lines[len(head):])


def test_listings_match_podman(podman, podkit_env, stores) -> None:  # type: ignore[no-untyped-def]
    for args in LISTINGS:
        want, got = _both(podman, podkit_env, *args)
        assert (got.returncode, _rows(args, got.stdout)) == (
            want.returncode, _rows(args, want.stdout)), (args, got.stderr)


def test_json_fields_match_podman(podman, podkit_env, stores) -> None:  # type: ignore[no-untyped-def]
    want, got = _both(podman, podkit_env, "images", "--format", "json")
    assert got.stdout.startswith("[\n    {\n        \"Id\": ")  # podman's 4-space indent
    # one creation time for all test images: podman's order among them is not stable
    mine = sorted(json.loads(got.stdout), key=lambda d: d["Id"])
    theirs = sorted(json.loads(want.stdout), key=lambda d: d["Id"])
    assert [list(d) for d in mine] == [list(d) for d in theirs]  # same keys, same order
    assert mine == theirs
    for doc in mine:
        SCHEMAS.validate(doc, "urn:podkit:pod:image-summary", what="pod images json")


def test_inspect_history_tree_match_podman(podman, podkit_env, stores) -> None:  # type: ignore[no-untyped-def]
    child = stores[1]
    want, got = _both(podman, podkit_env, "image", "inspect", child)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith('[\n     {\n          "Id": ')  # podman's 5 spaces
    (mine,), (theirs,) = json.loads(got.stdout), json.loads(want.stdout)
    SCHEMAS.validate(mine, "urn:podkit:pod:image-inspect", what="pod image inspect")
    assert list(mine) == list(theirs)
    assert mine["GraphDriver"]["Name"] == theirs["GraphDriver"]["Name"] == "overlay"
    del mine["GraphDriver"], theirs["GraphDriver"]  # paths of each store
    assert mine == theirs
    for args in [("image", "inspect", "--format", "{{.Id}} {{.Parent}} {{.RootFS.Layers}} "
                  "{{.Config.Cmd}} {{.Labels}} {{.NamesHistory}}", child),
                 ("image", "history", child),
                 ("image", "history", "--no-trunc", "--format", "json", child),
                 ("image", "history", "--format", "{{.ID}}|{{.Size}}|{{.CreatedBy}}", child),
                 ("image", "tree", child),
                 ("image", "tree", stores[0]),
                 ("image", "tree", "--whatrequires", stores[0]),
                 ("image", "tree", "--whatrequires", child)]:
        want, got = _both(podman, podkit_env, *args)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), (args, got.stderr)


def test_inspect_missing_image_prints_the_found_ones(podman, podkit_env, stores) -> None:  # type: ignore[no-untyped-def]
    want, got = _both(podman, podkit_env, "image", "inspect", "--format", "{{.Id}}",
                      stores[0], "nope")
    assert got.returncode == want.returncode == 125
    assert got.stdout == want.stdout
    assert "nope" in got.stderr


def test_tag_untag_rmi_exists_match_podman(podman, podkit_env, stores) -> None:  # type: ignore[no-untyped-def]
    steps = [
        ("tag", stores[1], "a/b:1", "c/d:2"),
        ("image", "exists", "localhost/a/b:1"),
        ("image", "exists", "nope:1"),
        ("untag", stores[1], "c/d:2"),
        ("images", "--format", "{{.Repository}}:{{.Tag}}"),
        ("untag", stores[1], "zz:1"),
        ("rmi", "a/b:1"),
        ("rmi", "nope"),
        ("image", "rm", "localhost/extra/name:v1"),
        ("untag", stores[1]),
        ("images", "-a"),
        ("images", "--filter", "dangling=true", "--format", "{{.ID}} {{.Dangling}} {{.History}}"),
        ("image", "prune", "-f"),
        ("images", "-a", "-q"),
        ("pull", "-q", "--tls-verify=false", stores[1]),
        ("tag", stores[1], "a/b:2"),
        ("rmi", stores[0]),  # the parent of a/b:2: removed, only "Untagged:" printed
        ("rmi", "a/b:2"),
        ("images", "-a", "-q"),
    ]
    for args in steps:
        want, got = _both(podman, podkit_env, *args)
        assert (got.returncode, _rows(args, got.stdout)) == (
            want.returncode, _rows(args, want.stdout)), (args, got.stderr)


def test_rmi_in_use_exits_2_and_force_removes_the_container(podkit_env, images) -> None:  # type: ignore[no-untyped-def]
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(podkit_env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(podkit_env, "create", "--network", "none", "--name", "user1", ref, "true")
    assert res.returncode == 0, res.stderr
    res = pod(podkit_env, "rmi", ref)
    assert res.returncode == 2
    assert "in use" in res.stderr
    res = pod(podkit_env, "rmi", "-f", ref)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"Untagged: {ref}"
    assert res.stdout.splitlines()[-1].startswith("Deleted: ")
    assert pod(podkit_env, "images", "-q").stdout == ""
    assert "user1" not in pod(podkit_env, "ps", "-a").stdout


def test_unknown_filter_and_template_exit_125(podkit_env, images) -> None:  # type: ignore[no-untyped-def]
    assert pod(podkit_env, "images", "--format", "json").stdout == "[]\n"
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(podkit_env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(podkit_env, "images", "--filter", "nope=1")
    assert res.returncode == 125
    assert 'unsupported image filter \\"nope\\"' in res.stderr
    res = pod(podkit_env, "images", "--format", "{{.Nope}}")
    assert res.returncode == 125
    assert "can't evaluate field Nope in type images.imageReporter" in res.stderr


def test_prune_asks_before_removing(podkit_env, images) -> None:  # type: ignore[no-untyped-def]
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(podkit_env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(podkit_env, "image", "prune", "-a", "-f", "--filter", "label=nope")
    assert (res.returncode, res.stdout) == (0, ""), res.stderr
    res = pod(podkit_env, "image", "prune", "-a", "-f", "--filter", "until=2023-01-01T00:00:00Z")
    assert (res.returncode, res.stdout) == (0, ""), res.stderr  # made in November 2023
    res = pod(podkit_env, "image", "prune", "-a", stdin="n\n")
    assert res.returncode == 0
    assert "Are you sure you want to continue? [y/N]" in res.stdout
    assert pod(podkit_env, "images", "-q").stdout.strip()
    res = pod(podkit_env, "image", "prune", "-a", stdin="y\n")
    assert res.stdout.endswith("[y/N] " + images["busybox:latest"].image.config_digest
                               .removeprefix("sha256:") + "\n")
    assert pod(podkit_env, "images", "-q").stdout == ""
    assert pod(podkit_env, "pull", "--tls-verify=false", ref).returncode == 0
    assert pod(podkit_env, "tag", ref, "localhost/second:name").returncode == 0
    res = pod(podkit_env, "image", "prune", "-a", "-f", "--filter", "until=24h")
    assert res.stdout == images["busybox:latest"].image.config_digest.removeprefix(
        "sha256:") + "\n", res.stderr


def test_generic_inspect_finds_images_containers_and_networks(podkit_env, images) -> None:  # type: ignore[no-untyped-def]
    ref = images.ref("busybox:latest").removeprefix("docker://")
    assert pod(podkit_env, "pull", "--tls-verify=false", ref).returncode == 0
    res = pod(podkit_env, "create", "--network", "none", "--name", "insp1", ref, "true")
    assert res.returncode == 0, res.stderr
    assert pod(podkit_env, "inspect", ref).stdout == pod(podkit_env, "image", "inspect",
                                                         ref).stdout
    out = pod(podkit_env, "inspect", "--format", "{{.Name}} {{.State.Status}}", "insp1")
    assert out.stdout == "insp1 created\n", out.stderr
    res = pod(podkit_env, "inspect", "--type", "image", "insp1")
    assert (res.returncode, res.stdout) == (125, "[]\n")
    assert "image not known" in res.stderr
    res = pod(podkit_env, "inspect", "--format", "{{.Id}}", ref, "nope-nothing")
    assert res.returncode == 125
    assert res.stdout == images["busybox:latest"].image.config_digest.removeprefix(
        "sha256:") + "\n"
    assert 'no such object: \\"nope-nothing\\"' in res.stderr
    assert pod(podkit_env, "rm", "insp1").returncode == 0


def test_tree_lines_nest_like_gotree() -> None:
    from podkit_pod._image_list import _tree_lines

    nodes = [("a", [("b", [("c", [])]), ("d", [])]), ("e", [])]
    assert _tree_lines(nodes, "") == ["├── a", "│   ├── b", "│   │   └── c", "│   └── d",
                                      "└── e"]
