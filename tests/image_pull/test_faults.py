"""pod-image-pull against a registry that fails: retries, resumed downloads, kill -9, memory.

Every test runs the executable against the real docker-registry, through the
fault-injecting proxy of ``faults.py`` where a fault is needed. Waits are kept short
with ``--retry-delay 0`` and a small ``--stall-timeout``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from tests.image_pull.faults import Fault, FaultProxy
from tests.testbed.images import BuiltImage, build_image
from tests.testbed.layers import LayerBuilder
from tests.testbed.push import push

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

SCHEMA = "urn:podkit:image-pull:image"
MiB = 1024 * 1024
BIG_LAYER = 96 * MiB
FAST = ("--tls-verify=false", "--retry-delay", "0")


# --- helpers ----------------------------------------------------------------------------

@pytest.fixture
def env(podkit_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """podkit_env with HOME and XDG dirs inside tmp_path, and empty registries.conf and
    an accept-anything policy there (see :func:`command`): no host or user config is read."""
    home = tmp_path / "home"
    for sub in ("config", "run", "cache", "registries.conf.d"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "registries.conf").write_text("")
    (home / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    clean = {k: v for k, v in podkit_env.items()
             if not k.startswith(("CONTAINERS_", "REGISTRY_AUTH", "DOCKER_"))}
    return {**clean, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_RUNTIME_DIR": str(home / "run"), "XDG_CACHE_HOME": str(home / "cache")}


def command(env: dict[str, str], *args: str) -> list[str]:
    """The pod-image-pull command line, pointed at the test's own configuration."""
    home = Path(env["HOME"])
    return ["pod-image-pull", "--registries-conf", str(home / "registries.conf"),
            "--registries-conf-dir", str(home / "registries.conf.d"),
            "--signature-policy", str(home / "policy.json"), *args]


@pytest.fixture
def proxy(images) -> Iterator[FaultProxy]:
    with FaultProxy(images.registry_url) as p:
        yield p


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(env, *args), env=env, capture_output=True, timeout=timeout)


def ok_doc(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    doc = json.loads(result.stdout)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    return doc


def error_of(result: subprocess.CompletedProcess) -> dict:
    assert result.stdout == b""
    lines = [ln for ln in result.stderr.decode().splitlines() if ln.startswith('{"error"')]
    assert len(lines) == 1, result.stderr.decode()
    return json.loads(lines[0])["error"]


def progress_texts(result: subprocess.CompletedProcess) -> list[str]:
    events = [json.loads(ln) for ln in result.stderr.decode().splitlines()
              if ln.startswith('{"progress"')]
    return [e["progress"]["task"] for e in events]


def root_of(env: dict[str, str]) -> Path:
    return Path(env["PODKIT_ROOT"])


def stored(env: dict[str, str]) -> set[str]:
    folder = root_of(env) / "blobs" / "sha256"
    return {"sha256:" + p.name for p in folder.iterdir()} if folder.is_dir() else set()


def temp_files(env: dict[str, str]) -> list[Path]:
    folder = root_of(env) / "blobs" / "tmp"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def partial_of(env: dict[str, str], digest: str) -> Path:
    """Where a resumable download of ``digest`` is kept (named by the digest)."""
    return root_of(env) / "blobs" / "tmp" / f"sha256-{digest[7:]}.partial"


def assert_store_consistent(env: dict[str, str], image: BuiltImage) -> None:
    """What any pull, even a killed one, may leave: blobs that verify, temp files that are
    a prefix of a real blob, and the manifest only once everything it names is there."""
    known = {**image.blobs, image.manifest_digest: image.manifest}
    folder = root_of(env) / "blobs" / "sha256"
    for path in folder.iterdir() if folder.is_dir() else []:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
    for path in temp_files(env):
        owner = [d for d in known if path.name.startswith((f"sha256-{d[7:]}", d[7:23]))]
        assert owner, f"a temporary file of no blob: {path.name}"
        assert known[owner[0]].startswith(path.read_bytes()), f"{path.name} is no prefix"
    if image.manifest_digest in stored(env):
        assert set(image.blobs) <= stored(env)


def random_image(*sizes: int) -> BuiltImage:
    """An uncompressed OCI image with one layer of random bytes per size."""
    tars = [LayerBuilder().file(f"/data/random-{i}.bin", os.urandom(size)).tar()
            for i, size in enumerate(sizes)]
    return build_image(tars, fmt="oci", compression="none")


@pytest.fixture(scope="module")
def big(registry) -> BuiltImage:
    """big:latest, one 96 MiB layer of random bytes (pushed once per worker)."""
    image = random_image(BIG_LAYER)
    push(registry.url, "big", "latest", image)
    return image


@pytest.fixture(scope="module")
def layered(registry) -> BuiltImage:
    """layered:latest, six layers of 2 MiB random bytes each."""
    image = random_image(*[2 * MiB] * 6)
    push(registry.url, "layered", "latest", image)
    return image


# --- retries ----------------------------------------------------------------------------

def test_500s_then_success_is_retried(images, proxy, env):
    built = images["busybox:oci"].image
    layer = built.layers[0].digest
    proxy.add(Fault("status", match=layer, times=2, status=500),
              Fault("status", match="/manifests/", times=1, status=503))
    doc = ok_doc(run(env, *FAST, "--progress", "json", f"docker://{proxy.url}/busybox:oci"))
    assert [r.status for r in proxy.requests(layer)] == [500, 500, 200]
    assert [r.status for r in proxy.requests("/manifests/")][:2] == [503, 200]
    assert doc["image"]["digest"] == built.manifest_digest
    assert set(built.blobs) | {built.manifest_digest} <= stored(env)


def test_retries_are_reported_as_progress(images, proxy, env):
    layer = images["busybox:oci"].image.layers[0].digest
    proxy.add(Fault("status", match=layer, times=2, status=502))
    result = run(env, *FAST, "--progress", "json", f"docker://{proxy.url}/busybox:oci")
    ok_doc(result)
    retries = [t for t in progress_texts(result) if "retrying" in t]
    assert len(retries) == 2 and all("HTTP 502" in t for t in retries)
    assert "(attempt 2 of 4)" in retries[0] and "(attempt 3 of 4)" in retries[1]


def test_429_waits_as_long_as_retry_after_says(images, proxy, env):
    layer = images["busybox:oci"].image.layers[0].digest
    proxy.add(Fault("status", match=layer, status=429, headers={"Retry-After": "1"}))
    ok_doc(run(env, *FAST, f"docker://{proxy.url}/busybox:oci"))
    first, second = proxy.requests(layer)
    assert (first.status, second.status) == (429, 200)
    assert second.started - first.ended >= 0.95


def test_always_500_exits_7_naming_the_attempts(images, proxy, env):
    built = images["busybox:oci"].image
    layer = built.layers[0].digest
    proxy.add(Fault("status", match=layer, times=None, status=500))
    result = run(env, *FAST, "--retry", "2", f"docker://{proxy.url}/busybox:oci")
    assert result.returncode == 7
    error = error_of(result)
    assert error["type"] == "RemoteError"
    assert "HTTP 500" in error["message"] and "gave up after 3 attempts" in error["message"]
    assert len(proxy.requests(layer)) == 3
    assert layer not in stored(env) and built.manifest_digest not in stored(env)
    assert not partial_of(env, layer).exists()


def test_manifest_always_503_exits_7(images, proxy, env):
    proxy.add(Fault("status", match="/manifests/", times=None, status=503))
    result = run(env, *FAST, "--retry", "1", f"docker://{proxy.url}/busybox:oci")
    assert result.returncode == 7
    assert "gave up after 2 attempts" in error_of(result)["message"]
    assert len(proxy.requests("/manifests/")) == 2
    assert stored(env) == set()


# --- resumed downloads ------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["reset", "drop"])
def test_connection_lost_mid_blob_resumes_with_a_range(images, proxy, env, cut):
    built = images["busybox:oci"].image
    layer = max(built.layers, key=lambda la: la.size)
    after = 256 * 1024
    assert layer.size > 2 * after
    proxy.add(Fault(cut, match=layer.digest, after=after))
    ok_doc(run(env, *FAST, f"docker://{proxy.url}/busybox:oci"))
    first, second = proxy.requests(layer.digest)
    assert (first.status, first.range, first.sent) == (200, None, after)
    assert (second.status, second.range) == (206, f"bytes={after}-")
    assert second.sent == layer.size - after
    assert (root_of(env) / "blobs" / "sha256" / layer.digest[7:]).read_bytes() == layer.data
    assert temp_files(env) == []


def test_stalled_blob_times_out_and_resumes(images, proxy, env):
    built = images["busybox:oci"].image
    layer = max(built.layers, key=lambda la: la.size)
    proxy.add(Fault("stall", match=layer.digest, after=128 * 1024, seconds=300))
    began = time.monotonic()
    ok_doc(run(env, *FAST, "--stall-timeout", "1s", f"docker://{proxy.url}/busybox:oci"))
    assert time.monotonic() - began < 60  # not the stall's 300s
    first, second = proxy.requests(layer.digest)
    assert first.sent == 128 * 1024
    assert (second.status, second.range) == (206, f"bytes={128 * 1024}-")
    assert layer.digest in stored(env)


def test_registry_without_ranges_starts_the_blob_over(images, proxy, env):
    built = images["busybox:oci"].image
    layer = max(built.layers, key=lambda la: la.size)
    proxy.add(Fault("no-range", match=layer.digest, times=None),
              Fault("drop", match=layer.digest, after=300_000))
    ok_doc(run(env, *FAST, f"docker://{proxy.url}/busybox:oci"))
    second = proxy.requests(layer.digest)[1]
    assert second.range == "bytes=300000-" and second.status == 200
    assert second.sent == layer.size
    assert (root_of(env) / "blobs" / "sha256" / layer.digest[7:]).read_bytes() == layer.data


# --- content that lies ------------------------------------------------------------------

def test_blob_with_wrong_bytes_exits_6_and_stores_nothing(images, proxy, env):
    built = images["busybox:oci"].image
    layer = built.layers[0].digest
    proxy.add(Fault("corrupt", match=layer, times=None))
    result = run(env, *FAST, f"docker://{proxy.url}/busybox:oci")
    assert result.returncode == 6
    error = error_of(result)
    assert error["type"] == "VerificationFailed" and layer in error["message"]
    assert layer not in stored(env) and built.manifest_digest not in stored(env)
    assert not partial_of(env, layer).exists()
    assert len(proxy.requests(layer)) == 1  # wrong content is not retried


def test_manifest_with_a_lying_digest_header_exits_6(images, proxy, env):
    proxy.add(Fault("digest", match="/manifests/", times=None))
    result = run(env, *FAST, f"docker://{proxy.url}/busybox:oci")
    assert result.returncode == 6
    assert "Docker-Content-Digest" in error_of(result)["message"]
    assert stored(env) == set() and temp_files(env) == []


def test_manifest_not_matching_the_digest_asked_for_exits_6(images, proxy, env):
    wanted = images["busybox:oci"].digest
    proxy.add(Fault("serve", match=f"/manifests/{wanted}", times=None,
                    path="/v2/busybox/manifests/latest"))
    result = run(env, *FAST, f"docker://{proxy.url}/busybox@{wanted}")
    assert result.returncode == 6
    assert error_of(result)["type"] == "VerificationFailed"
    assert stored(env) == set() and temp_files(env) == []


# --- parallel and concurrent pulls ------------------------------------------------------

@pytest.mark.parametrize("flag, expected", [(["--max-parallel", "2"], {2}), ([], {5, 6})])
def test_layers_download_in_parallel_up_to_max_parallel(layered, proxy, env, flag, expected):
    proxy.add(Fault("throttle", match="/blobs/", times=None, rate=2 * MiB))  # 1s a layer
    ok_doc(run(env, *FAST, *flag, f"docker://{proxy.url}/layered:latest"))
    assert proxy.max_in_flight in expected


def test_two_concurrent_pulls_fetch_each_blob_once(layered, proxy, env):
    proxy.add(Fault("throttle", match="/blobs/", times=None, rate=8 * MiB))
    ref = f"docker://{proxy.url}/layered:latest"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run(env, *FAST, ref), range(2)))
    docs = [ok_doc(r) for r in results]
    assert docs[0]["image"] == docs[1]["image"]
    assert any(d["changed"] for d in docs)
    for digest in layered.blobs:
        assert [r.status for r in proxy.requests(digest)] == [200], digest
    assert_store_consistent(env, layered)
    assert temp_files(env) == []


# --- kill -9 and memory -----------------------------------------------------------------

def kill_when_partial_reaches(env: dict[str, str], ref: str, path: Path, size: int) -> None:
    """Start a pull, SIGKILL it (by pid) once ``path`` holds ``size`` bytes."""
    proc = subprocess.Popen(command(env, *FAST, ref), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.stat().st_size >= size:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the pull ended before the kill: {proc.stderr.read()!r}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_pull_killed_mid_layer_resumes_with_a_range(big, proxy, env):
    layer = big.layers[0]
    ref = f"docker://{proxy.url}/big:latest"
    partial = partial_of(env, layer.digest)
    proxy.add(Fault("throttle", match=layer.digest, times=None, rate=32 * MiB))
    kept = []
    for threshold in (8 * MiB, 24 * MiB):
        kill_when_partial_reaches(env, ref, partial, threshold)
        assert_store_consistent(env, big)
        assert layer.digest not in stored(env) and big.manifest_digest not in stored(env)
        kept.append(partial.stat().st_size)
        assert kept[-1] >= threshold
    # The second run continued the first one's bytes instead of starting over.
    assert proxy.requests(layer.digest)[1].range == f"bytes={kept[0]}-"

    proxy.clear()
    doc = ok_doc(run(env, *FAST, ref))
    last = proxy.requests(layer.digest)[-1]
    assert (last.range, last.status, last.sent) == (f"bytes={kept[1]}-", 206,
                                                      layer.size - kept[1])
    path = Path(doc["image"]["layers"][0]["path"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest[7:]
    assert_store_consistent(env, big)
    assert temp_files(env) == []


def test_pull_killed_at_any_moment_leaves_a_consistent_store(images, proxy, env):
    built = images["busybox:oci"].image
    ref = f"docker://{proxy.url}/busybox:oci"
    proxy.add(Fault("throttle", match="/", times=None, rate=2 * MiB))
    for delay in (0.3, 0.45, 0.6, 0.75, 0.9, 1.1):
        proc = subprocess.Popen(command(env, *FAST, ref), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert_store_consistent(env, built)
    proxy.clear()
    doc = ok_doc(run(env, *FAST, ref))
    assert doc["image"]["digest"] == built.manifest_digest
    assert_store_consistent(env, built)
    assert set(built.blobs) | {built.manifest_digest} <= stored(env)
    assert temp_files(env) == []


MAXRSS_PROBE = """\
import resource, subprocess, sys
result = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(result.returncode)
"""


def test_memory_stays_flat_while_pulling_a_big_layer(big, registry, env, tmp_path):
    report = tmp_path / "maxrss"
    result = subprocess.run(
        [sys.executable, "-c", MAXRSS_PROBE, str(report),
         *command(env, *FAST, f"docker://{registry.url}/big:latest")],
        env=env, capture_output=True, timeout=120)
    ok_doc(result)
    maxrss_mib = int(report.read_text()) / 1024  # ru_maxrss is in KiB on Linux
    assert maxrss_mib < 100, f"pod-image-pull peaked at {maxrss_mib:.0f} MiB"
    assert big.layers[0].digest in stored(env)
