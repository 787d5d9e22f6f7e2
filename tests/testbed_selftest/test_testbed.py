"""Self-tests of the test bed, with skopeo, umoci and GNU tar as independent oracles."""

from __future__ import annotations

import ast
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.testbed import layers as L
from tests.testbed.bundle import make_busybox_bundle
from tests.testbed.env import REPO_ROOT, cleanup, mounts_under, podkit_environment, venv_bin
from tests.testbed.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    BuiltIndex,
    build_image,
    busybox_image,
    host_platform,
    multiarch_index,
    sha256_digest,
)
from tests.testbed.probes import is_root, netns_works, overlay_works, runc_works
from tests.testbed.push import push
from tests.testbed.registry import LocalRegistry
from tests.testbed.shell import sh
from tests.testbed.skopeo import Skopeo
from tests.testbed.standard import STANDARD, StandardImages

ALL_NAMES = list(STANDARD)


# --- registry and push, checked by skopeo -------------------------------------------------


@pytest.mark.registry
def test_registry_answers_v2(registry: LocalRegistry) -> None:
    resp = httpx.get(f"http://{registry.url}/v2/", trust_env=False)
    assert resp.status_code == 200
    assert registry.url.startswith("127.0.0.1:")


@pytest.mark.registry
@pytest.mark.parametrize("name", ALL_NAMES)
def test_skopeo_sees_our_manifest_bytes(images: StandardImages, name: str,
                                       tmp_path: Path) -> None:
    pushed = images[name]
    res = Skopeo(tmp_path).run("inspect", "--raw", "--tls-verify=false", pushed.ref)
    assert res.stdout == pushed.image.manifest
    assert sha256_digest(res.stdout) == pushed.digest == pushed.image.manifest_digest


@pytest.mark.registry
@pytest.mark.parametrize("name", ALL_NAMES)
def test_skopeo_copies_to_oci_layout(images: StandardImages, name: str, tmp_path: Path) -> None:
    pushed = images[name]
    extra = ["--all"] if isinstance(pushed.image, BuiltIndex) else []
    Skopeo(tmp_path / "skopeo").copy(pushed.ref, f"oci:{tmp_path}/layout:t", *extra)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert len(index["manifests"]) == 1


@pytest.mark.registry
def test_push_again_is_idempotent(registry: LocalRegistry, images: StandardImages) -> None:
    img = images["busybox:latest"].image
    assert push(registry.url, "busybox", "latest", img) == img.manifest_digest
    assert images["busybox:latest"].ref_by_digest.endswith("/busybox@" + img.manifest_digest)


@pytest.mark.registry
@pytest.mark.root
def test_umoci_applies_whiteouts_opaque_and_hardlink(images: StandardImages, tmp_path: Path):
    ref = images.ref("busybox:oci")
    Skopeo(tmp_path / "skopeo").copy(ref, f"oci:{tmp_path}/l:t")
    res = sh(f"umoci unpack --image {tmp_path}/l:t {tmp_path}/bundle")
    assert res.returncode == 0, res.stderr
    rootfs = tmp_path / "bundle" / "rootfs"

    def at(p: str) -> Path:
        return rootfs / p.lstrip("/")

    assert not at(L.ISSUE_PATH).exists()
    assert sorted(os.listdir(at(L.OPAQUE_DIR))) == [Path(L.OPAQUE_KEPT).name]
    assert at(L.HELLO_PATH).read_text() == L.HELLO_TEXT
    assert at(L.HARDLINK_PATH).stat().st_ino == at(L.HELLO_PATH).stat().st_ino
    assert at(L.MOTD_PATH).read_text() == L.MOTD_TEXT
    app = at(L.APP_DIR).stat()
    assert (app.st_uid, app.st_gid, stat.S_IMODE(app.st_mode)) == (1000, 1000, 0o750)
    assert os.readlink(at("/bin/sh")) == "busybox"


# --- image building -------------------------------------------------------------------------


def test_base_layer_extracts_with_gnu_tar(tmp_path: Path) -> None:
    (tmp_path / "layer.tar").write_bytes(L.base_layer_tar())
    out = tmp_path / "rootfs"
    out.mkdir()
    res = sh(f"tar -C {out} --numeric-owner -xpf {tmp_path}/layer.tar")
    assert res.returncode == 0, res.stderr
    assert (out / "bin" / "busybox").is_file()
    assert os.readlink(out / "bin" / "sh") == "busybox"
    assert stat.S_IMODE((out / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((out / "root").stat().st_mode) == 0o700
    assert not (out / "etc" / "hostname").exists()
    assert "app:x:1000:1000:app:/home/app:/bin/sh" in (out / "etc" / "passwd").read_text()
    assert "staff:x:50:app" in (out / "etc" / "group").read_text()
    if is_root():
        assert (out / "home" / "app").stat().st_uid == 1000
    assert sh(f"{out}/bin/busybox echo hi").stdout == b"hi\n"


def test_layers_are_deterministic() -> None:
    first = L.base_layer_tar.__wrapped__()
    assert first == L.base_layer_tar.__wrapped__()
    assert L.compress(first, "gzip") == L.compress(bytes(first), "gzip")
    with tarfile.open(fileobj=io.BytesIO(L.second_layer_tar())) as tf:
        names = tf.getnames()
        assert all(m.mtime == L.EPOCH for m in tf.getmembers())
    assert "etc/.wh.issue" in names
    assert "usr/share/doc/testbed/.wh..wh..opq" in names


def test_config_overrides_and_formats() -> None:
    img = busybox_image(
        1, fmt="oci", config={"User": "app", "Entrypoint": ["/bin/sh", "-c"], "Cmd": None,
                              "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}},
    )
    cfg = img.config_json
    assert cfg["config"]["User"] == "app"
    assert "Cmd" not in cfg["config"]
    assert cfg["rootfs"]["diff_ids"] == [la.diff_id for la in img.layers]
    assert (cfg["architecture"], cfg["os"]) == (host_platform()["architecture"], "linux")
    assert json.loads(busybox_image(1).manifest)["mediaType"] == DOCKER_MANIFEST
    with pytest.raises(ValueError):
        busybox_image(1, config={"Bogus": 1})
    with pytest.raises(ValueError):
        build_image([L.third_layer_tar()], fmt="docker", compression="zstd")


def test_multiarch_children_are_distinguishable() -> None:
    for fmt, media_type in (("oci", OCI_INDEX), ("docker", DOCKER_MANIFEST_LIST)):
        index = multiarch_index(fmt)
        assert index.manifest_media_type == media_type
        assert index.native.layers[0].diff_id == sha256_digest(L.base_layer_tar())
        plats = [json.dumps(c.platform, sort_keys=True) for c in index.children]
        assert len(set(plats)) == len(plats) == 3
        arm = index.child_for("arm", "v7")
        with tarfile.open(fileobj=io.BytesIO(arm.layers[0].tar)) as tf:
            marker = tf.extractfile(L.PLATFORM_MARKER.lstrip("/"))
            assert marker is not None and marker.read() == b"linux/arm/v7\n"


# --- probes, shell, environment cleanup -----------------------------------------------------


def test_probes_return_booleans() -> None:
    for fn in (is_root, overlay_works, runc_works, netns_works):
        assert isinstance(fn(), bool)


def test_sh_pipeline_pipefail_input_and_timeout() -> None:
    res = sh("tr a-z A-Z | cat; exit 3", input="hi\n")
    assert (res.returncode, res.stdout) == (3, b"HI\n")
    assert sh("false | true").returncode == 1
    assert sh("echo oops >&2").stderr == b"oops\n"
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        sh("sleep 30 | cat", timeout=0.5)
    assert time.monotonic() - start < 5


def test_podkit_env_contents(podkit_env: dict[str, str], tmp_path: Path) -> None:
    assert podkit_env["PODKIT_ROOT"] == str(tmp_path / "root")
    assert Path(podkit_env["PODKIT_RUNROOT"]).is_dir()
    assert podkit_env["PATH"].split(os.pathsep)[0] == str(venv_bin())
    assert venv_bin() == REPO_ROOT / ".venv" / "bin"


@pytest.mark.root
def test_cleanup_unmounts_even_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), podkit_environment(tmp_path) as env:
        inner = Path(env["PODKIT_ROOT"]) / "mnt"
        inner.mkdir()
        assert sh(f"mount -t tmpfs t {inner} && mount -t tmpfs t {inner}").returncode == 0
        (inner / "sub").mkdir()
        assert sh(f"mount -t tmpfs t {inner}/sub").returncode == 0
        assert len(mounts_under(tmp_path)) == 3
        raise RuntimeError("boom")
    assert mounts_under(tmp_path) == []


@pytest.mark.root
def test_cleanup_kills_only_conmon_and_runc_pids(tmp_path: Path) -> None:
    runroot = tmp_path / "runroot"
    (runroot / "c1").mkdir(parents=True)
    monitor = subprocess.Popen(["bash", "-c", "exec -a conmon sleep 60"])
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (runroot / "c1" / "conmon.pid").write_text(f"{monitor.pid}\n")
        (runroot / "c1" / "other.pid").write_text(str(bystander.pid))
        for _ in range(100):  # wait for the exec to rename argv[0]
            if Path(f"/proc/{monitor.pid}/cmdline").read_bytes().startswith(b"conmon"):
                break
            time.sleep(0.01)
        assert cleanup(tmp_path, runroot) == []
        assert monitor.wait(timeout=5) != 0
        assert bystander.poll() is None
    finally:
        for p in (monitor, bystander):
            p.kill()
            p.wait()


@pytest.mark.runc
def test_cleanup_deletes_runc_containers(tmp_path: Path) -> None:
    runroot = tmp_path / "runroot"
    state = runroot / "runc"
    bundle = make_busybox_bundle(tmp_path / "bundle", ["/bin/busybox", "sleep", "60"])
    cid = f"podkit-selftest-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "runc.err"
    # No pipes: the container's init inherits runc's stdio and would hold a pipe open.
    with open(log, "wb") as err:
        res = subprocess.run(
            ["runc", "--root", str(state), "create", "--bundle", str(bundle), cid],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=30,
        )
    try:
        assert res.returncode == 0, log.read_text()
        assert sh(f"runc --root {state} list -q").stdout.split() == [cid.encode()]
    finally:
        problems = cleanup(tmp_path, runroot)
    assert problems == []
    listed = subprocess.run(["runc", "--root", str(state), "list", "-q"],
                            capture_output=True, text=True, check=True)
    assert listed.stdout.split() == []


@pytest.mark.root
@pytest.mark.netns
def test_cleanup_deletes_listed_netns(tmp_path: Path) -> None:
    runroot = tmp_path / "runroot"
    runroot.mkdir()
    name = f"podkit-selftest-{uuid.uuid4().hex[:8]}"
    assert sh(f"ip netns add {name}").returncode == 0
    (runroot / "netns-names").write_text(name + "\n")
    assert cleanup(tmp_path, runroot) == []
    assert not Path("/run/netns", name).exists()


# --- registry lifecycle and the demo command ------------------------------------------------


@pytest.mark.registry
def test_local_registry_stop_removes_everything() -> None:
    reg = LocalRegistry().start()
    pid, state_dir = reg.pid, reg.state_dir
    assert pid is not None
    reg.stop()
    assert not Path(f"/proc/{pid}").exists() or b"docker-registry" not in Path(
        f"/proc/{pid}/cmdline").read_bytes()
    assert not state_dir.exists()


@pytest.mark.registry
def test_demo_serve_is_idempotent_and_stops(tmp_path: Path) -> None:
    def run(cmd: str) -> dict:
        res = subprocess.run(
            [sys.executable, "-m", "tests.testbed", cmd, "--state-dir", str(tmp_path)],
            cwd=REPO_ROOT, capture_output=True, timeout=60,
        )
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    try:
        first = run("serve")
        assert set(first["images"]) >= {"busybox:latest", "busybox:oci", "busybox:multiarch"}
        assert first["images"]["busybox:latest"] == busybox_image(1).manifest_digest
        again = run("serve")
        assert (again["pid"], again["url"]) == (first["pid"], first["url"])
    finally:
        stopped = run("stop")
    assert stopped["stopped"] is True
    assert not (tmp_path / "registry.json").exists()


def test_testbed_never_imports_podkit() -> None:
    for path in (REPO_ROOT / "tests" / "testbed").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.startswith("podkit")], f"{path} imports {names}"


@pytest.mark.root
@pytest.mark.registry
def test_podman_oracle_pulls_and_inits_in_its_own_namespace(podman, images) -> None:
    """The oracle pulls from the test registry, writes a bundle, and leaves the host's
    /run/runc untouched (its runc state lives in the oracle's namespace)."""
    before = set(os.listdir("/run/runc")) if os.path.isdir("/run/runc") else set()
    ref = images.ref("busybox:latest").removeprefix("docker://")
    image_id = podman.pull(ref)
    assert len(image_id) == 64
    podman.run("create", "--name", "oracle-probe", "--network", "none", ref, "true")
    podman.run("init", "oracle-probe")
    config = podman.bundle_config("oracle-probe")
    assert config["process"]["args"] == ["true"]
    after = set(os.listdir("/run/runc")) if os.path.isdir("/run/runc") else set()
    assert after == before
