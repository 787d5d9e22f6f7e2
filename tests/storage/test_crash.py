"""kill -9 at random points of `pod-storage import` and `pod-storage create`: afterwards
`check` finds only repairable problems, `check --repair` makes the store clean, and the
next import or create succeeds with complete, correct content (compared with a clean
import in a second root)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_storage._content import content_summary
from tests.testbed.env import make_env
from tests.testbed.images import build_image
from tests.testbed.layers import LayerBuilder
from tests.testbed.push import push
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.registry]

ITERATIONS = 10
FILES_PER_LAYER = 600


def _layer(n: int) -> bytes:
    b = LayerBuilder()
    for i in range(FILES_PER_LAYER):
        b.file(f"/layer{n}/d{i % 50}/f{i}", f"layer {n} file {i}\n" * (1 + i % 7),
               mode=0o644 if i % 3 else 0o600, uid=i % 5, gid=i % 4)
    b.symlink(f"/layer{n}/link", f"d0/f{n}")
    b.file(f"/shared/from{n}", f"written by layer {n}\n")
    return b.tar()


@pytest.fixture(scope="module")
def big_image(registry, tmp_path_factory) -> dict:
    """A 3-layer image of 1800 small files, pushed and pulled once; its pull document."""
    img = build_image([_layer(1), _layer(2), _layer(3)])
    push(registry.url, "crash", "big", img)
    base = tmp_path_factory.mktemp("crash-pull")
    env = make_env(base / "root", base / "run")
    proc = sh(f"pod-image-pull --tls-verify=false docker://{registry.url}/crash:big", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)


def storage(env: dict, *args: str, doc: dict | None = None) -> subprocess.CompletedProcess:
    data = jsonio.dumps(doc) if doc is not None else None
    return subprocess.run(["pod-storage", *args], input=data, capture_output=True, env=env,
                          timeout=120)


def check(env: dict, *args: str) -> tuple[int, dict]:
    proc = storage(env, "check", *args)
    return proc.returncode, jsonio.loads(proc.stdout)


def killed(env: dict, args: list[str], doc: dict, delay: float) -> None:
    """Start pod-storage, SIGKILL it (by its pid) after ``delay`` seconds."""
    proc = subprocess.Popen(["pod-storage", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(jsonio.dumps(doc))
        proc.stdin.close()
    except BrokenPipeError:
        pass
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def tree(path: Path) -> list[tuple]:
    """(path, type, mode, uid, gid, content or link target) of everything under path."""
    out = []
    for dirpath, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            p = Path(dirpath, name)
            st = p.lstat()
            data = os.readlink(p) if p.is_symlink() else (
                p.read_bytes() if p.is_file() else None)
            out.append((str(p.relative_to(path)), st.st_mode, st.st_uid, st.st_gid, data))
    return out


def assert_repairable_then_clean(env: dict) -> None:
    code, report = check(env)
    assert code in (0, 5), report  # never 6: a kill must not leave damaged content
    assert all(p["repairable"] for p in report["problems"]), report
    code, report = check(env, "--repair")
    left = {p["kind"] for p in report["problems"] if not p["repaired"]}
    # Complete layers of an image whose record was not written yet are kept for reuse.
    assert left <= {"orphan-layer"}, report
    assert code == (5 if left else 0)


@pytest.fixture(scope="module")
def reference(big_image, tmp_path_factory) -> dict[str, str]:
    """chain id -> content digest, from a clean import into a root of its own."""
    base = tmp_path_factory.mktemp("crash-ref")
    env = make_env(base / "root", base / "run")
    proc = storage(env, "import", doc=big_image)
    assert proc.returncode == 0, proc.stderr
    return {la["chain_id"]: content_summary(la["diff_path"])["digest"]
            for la in jsonio.loads(proc.stdout)["image"]["layers"]}


@pytest.mark.timeout(900)  # 26 s on an idle 2-core machine; 10 kills, 3 checks each
def test_import_killed_at_random_points_is_repaired_and_redone(big_image, reference,
                                                               tmp_path):
    rng = random.Random(os.getpid())
    # Time one import, so the kills land all along it (start-up, unpack, records).
    env0 = make_env(tmp_path / "timing" / "root", tmp_path / "timing" / "run")
    start = time.monotonic()
    assert storage(env0, "import", doc=big_image).returncode == 0
    span = time.monotonic() - start
    for i in range(ITERATIONS):
        env = make_env(tmp_path / f"r{i}" / "root", tmp_path / f"r{i}" / "run")
        killed(env, ["import"], big_image, rng.uniform(0.1, span))
        assert_repairable_then_clean(env)
        proc = storage(env, "import", doc=big_image)
        assert proc.returncode == 0, proc.stderr
        layers = jsonio.loads(proc.stdout)["image"]["layers"]
        assert {la["chain_id"]: content_summary(la["diff_path"])["digest"]
                for la in layers} == reference
        code, report = check(env)
        assert (code, report["problems"]) == (0, []), report


@pytest.mark.overlay
@pytest.mark.timeout(900)  # 60 s on an idle 2-core machine; 10 kills, 3 checks each
def test_create_killed_at_random_points_is_repaired_and_redone(big_image, tmp_path,
                                                               podkit_env):
    rng = random.Random(os.getpid())
    doc = jsonio.loads(storage(podkit_env, "import", doc=big_image).stdout)
    clean = storage(podkit_env, "create", "--name", "reference", doc=doc)
    assert clean.returncode == 0, clean.stderr
    expected = tree(Path(jsonio.loads(clean.stdout)["container"]["rootfs"]))
    assert len(expected) > 3 * FILES_PER_LAYER
    for i in range(ITERATIONS):
        killed(podkit_env, ["create", "--name", f"c{i}"], doc, rng.uniform(0.05, 0.6))
        assert_repairable_then_clean(podkit_env)
        names = {jsonio.loads(line)["name"]
                 for line in storage(podkit_env, "containers").stdout.splitlines()}
        if f"c{i}" in names:  # the kill came after the record: a complete container
            assert storage(podkit_env, "rm", f"c{i}").returncode == 0
        proc = storage(podkit_env, "create", "--name", f"c{i}", doc=doc)
        assert proc.returncode == 0, proc.stderr
        rootfs = Path(jsonio.loads(proc.stdout)["container"]["rootfs"])
        assert tree(rootfs) == expected
        assert storage(podkit_env, "rm", f"c{i}").returncode == 0
    code, report = check(podkit_env)
    assert (code, report["problems"]) == (0, []), report
