"""`pod-runtime cp` / `pod cp` against a real running container (conmon + runc on an
overlay rootfs): podman's semantics for files, directories, SRC/. and tar streams, and
the escapes of CVE-2018-15664 / CVE-2019-10152 — symlinks in the container pointing at
a sentinel directory in tmp_path (the stand-in for the host) must never let cp read or
write it."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.schemas import SchemaSet
from tests.runtime.test_lifecycle import loads, prepare, run_cli, save

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_runtime"])
SECRET = b"host secret, never to be read or changed\n"


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


@pytest.fixture
def running(images, podkit_env, tmp_path):
    """A running container and its rootfs (on the host, to plant symlinks as the
    container's own processes could)."""
    doc = prepare(images, podkit_env, "cpctr", "sleep", "1000")
    out = loads(run_cli(f"pod-runtime run -d --input {save(doc, tmp_path)}", podkit_env))
    assert out["state"]["status"] == "running"
    yield Path(doc["container"]["rootfs"])
    run_cli("pod-runtime rm -f -t 0 cpctr", podkit_env)


@pytest.fixture
def sentinel(tmp_path) -> Path:
    d = tmp_path / "host"
    d.mkdir()
    (d / "sentinel").write_bytes(SECRET)
    return d


def cp(env, src: str, dest: str, **kw):
    return run_cli(f"pod-runtime cp {src} {dest}", env, **kw)


def ok(proc) -> dict:
    doc = loads(proc)
    SCHEMAS.validate(doc, "urn:podkit:runtime:copy")
    return doc


def test_file_in_and_out(running, podkit_env, tmp_path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello\n")
    os.chmod(src, 0o640)
    ok(cp(podkit_env, src, "cpctr:/tmp/"))  # into an existing directory
    assert (running / "tmp/hello.txt").read_bytes() == b"hello\n"
    assert (running / "tmp/hello.txt").stat().st_mode & 0o777 == 0o640
    ok(cp(podkit_env, src, "cpctr:/tmp/renamed"))  # to a new file name
    assert (running / "tmp/renamed").read_bytes() == b"hello\n"
    # seen from inside the container too
    proc = run_cli("pod-runtime exec cpctr cat /tmp/renamed", podkit_env)
    assert proc.returncode == 0 and proc.stderr.endswith(b"hello\n")
    out = tmp_path / "out"
    out.mkdir()
    ok(cp(podkit_env, "cpctr:/etc/hostname", out))
    assert (out / "hostname").read_bytes() == (running / "etc/hostname").read_bytes()
    ok(cp(podkit_env, "cpctr:/etc/hostname", out / "hn"))
    assert (out / "hn").is_file()


def test_directories_and_contents(running, podkit_env, tmp_path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"A")
    (tree / "sub" / "b").write_bytes(b"B")
    os.symlink("a", tree / "link")
    ok(cp(podkit_env, tree, "cpctr:/opt"))  # /opt absent: created as a copy of tree
    assert (running / "opt/sub/b").read_bytes() == b"B"
    assert os.readlink(running / "opt/link") == "a"
    ok(cp(podkit_env, tree, "cpctr:/opt"))  # /opt exists now: into /opt/tree
    assert (running / "opt/tree/a").read_bytes() == b"A"
    (running / "srv/x").mkdir(parents=True)
    ok(cp(podkit_env, f"{tree}/.", "cpctr:/srv/x"))  # SRC/. : the contents
    assert (running / "srv/x/a").read_bytes() == b"A"
    assert not (running / "srv/x/tree").exists()
    back = tmp_path / "back"
    back.mkdir()
    ok(cp(podkit_env, "cpctr:/opt/sub", back))
    assert (back / "sub/b").read_bytes() == b"B"
    ok(cp(podkit_env, "cpctr:/opt/sub/.", back))
    assert (back / "b").read_bytes() == b"B"


def test_tar_streams(running, podkit_env, tmp_path) -> None:
    proc = cp(podkit_env, "cpctr:/etc", "-")
    assert proc.returncode == 0, proc.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        names = tar.getnames()
    assert "etc/hostname" in names and "etc/passwd" in names
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("fromtar/f")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"xyz"))
    archive = tmp_path / "in.tar"
    archive.write_bytes(buf.getvalue())
    ok(cp(podkit_env, "-", "cpctr:/tmp", input=archive.read_bytes()))
    assert (running / "tmp/fromtar/f").read_bytes() == b"xyz"


def test_missing_source_is_not_found(running, podkit_env, tmp_path) -> None:
    proc = cp(podkit_env, "cpctr:/no/such", tmp_path)
    assert proc.returncode == 4, proc.stderr.decode()


@pytest.mark.parametrize("link", ["abs", "dotdot"])
def test_symlink_escapes_never_touch_the_host(running, podkit_env, tmp_path, sentinel,
                                              link) -> None:
    target = str(sentinel) if link == "abs" else "../" * 40 + str(sentinel).lstrip("/")
    os.symlink(target, running / "evil")
    os.symlink("/", running / "rootlink")
    # out: reading through the link must not read the host's sentinel
    out = tmp_path / "out"
    out.mkdir()
    proc = cp(podkit_env, "cpctr:/evil/sentinel", out)
    assert proc.returncode != 0
    assert not (out / "sentinel").exists()
    proc = cp(podkit_env, f"cpctr:/rootlink{sentinel}/sentinel", out)
    assert proc.returncode != 0 and not (out / "sentinel").exists()
    # in: writing through the link must not change the sentinel or create files there
    payload = tmp_path / "sentinel"
    payload.write_bytes(b"overwritten!\n")
    cp(podkit_env, payload, "cpctr:/evil/sentinel")
    cp(podkit_env, payload, "cpctr:/evil/")
    cp(podkit_env, payload, f"cpctr:/rootlink{sentinel}/new")
    assert (sentinel / "sentinel").read_bytes() == SECRET
    assert sorted(os.listdir(sentinel)) == ["sentinel"]


def test_tar_stream_escapes_are_refused(running, podkit_env, tmp_path, sentinel) -> None:
    for members in (["../../../../../../../../../../" + str(sentinel).lstrip("/") + "/x"],
                    ["linkdir->" + str(sentinel), "linkdir/x"]):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for m in members:
                if "->" in m:
                    name, target = m.split("->")
                    info = tarfile.TarInfo(name)
                    info.type, info.linkname = tarfile.SYMTYPE, target
                    tar.addfile(info)
                else:
                    info = tarfile.TarInfo(m)
                    info.size = 4
                    tar.addfile(info, io.BytesIO(b"evil"))
        archive = tmp_path / "evil.tar"
        archive.write_bytes(buf.getvalue())
        proc = cp(podkit_env, "-", "cpctr:/tmp", input=archive.read_bytes())
        assert proc.returncode != 0
        assert sorted(os.listdir(sentinel)) == ["sentinel"]
        assert (sentinel / "sentinel").read_bytes() == SECRET


def test_a_stopped_container_can_be_copied_from(running, podkit_env, tmp_path) -> None:
    loads(run_cli("pod-runtime stop -t 0 cpctr", podkit_env))
    out = tmp_path / "o"
    out.mkdir()
    ok(cp(podkit_env, "cpctr:/etc/passwd", out))
    assert b"root:" in (out / "passwd").read_bytes()


def test_parse_end() -> None:
    from podkit_runtime._cp import parse_end

    assert parse_end("c:/x").container == "c"
    assert parse_end("./a:b").container is None
    assert parse_end("-").stream
    assert jsonio.loads(jsonio.dumps({"a": 1})) == {"a": 1}


def _mounted(path: Path) -> bool:
    target = os.fsencode(os.path.realpath(path))
    return any(line.split(b" ")[4] == target
               for line in Path("/proc/self/mountinfo").read_bytes().splitlines())


def test_pod_cp_running_and_stopped(images, podkit_env, tmp_path) -> None:
    ref = images.ref("busybox:latest")
    proc = run_cli(f"pod run -d --tls-verify=false --name podcp {ref} sleep 1000", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    try:
        src = tmp_path / "f"
        src.write_bytes(b"via pod\n")
        assert run_cli(f"pod cp {src} podcp:/root/f", podkit_env).returncode == 0
        proc = run_cli("pod exec podcp cat /root/f", podkit_env)
        assert proc.stdout == b"via pod\n"
        assert run_cli("pod stop -t 0 podcp", podkit_env).returncode == 0
        from podkit_storage import load_container
        from tests.runtime.test_lifecycle import roots_of

        rootfs = Path(load_container(roots_of(podkit_env), "podcp")["rootfs"])
        out = tmp_path / "back"
        proc = run_cli(f"pod cp podcp:/root/f {out}", podkit_env)  # stopped: mounted for it
        assert proc.returncode == 0, proc.stderr.decode()
        assert out.read_bytes() == b"via pod\n"
        assert not _mounted(rootfs)  # and released again
    finally:
        run_cli("pod rm -f podcp", podkit_env)
