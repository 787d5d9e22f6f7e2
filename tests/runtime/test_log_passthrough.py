"""`--log-driver passthrough` against real conmon + runc: conmon hands the caller's own
fds to the container (the container's fd 1 *is* our pipe), nothing is logged, attach
and logs refuse like podman, and a terminal is refused (TIOCSTI); `json-file` is
podman's alias for k8s-file."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess

import pytest

from podkit_common import jsonio
from tests.runtime.test_lifecycle import loads, prepare, run_cli, save

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


def run_with_fds(argv: list[str], env: dict[str, str], stdin: int, stdout: int,
                 stderr: int) -> int:
    proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
    return proc.wait(timeout=120)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_the_container_writes_into_the_callers_own_pipe(images, podkit_env,
                                                        tmp_path) -> None:
    doc = prepare(images, podkit_env, "pt", "sh", "-c",
                  "readlink /proc/self/fd/2; echo to-stderr >&2; read line; "
                  "echo got $line; exit 3")
    path = save(doc, tmp_path, "pt.json")
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe()
    os.write(in_w, b"hello\n")
    os.close(in_w)
    out_fd = os.open(tmp_path / "out.json", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        rc = run_with_fds(["pod-runtime", "run", "-i", "--log-driver", "passthrough",
                           "--input", str(path)], podkit_env, in_r, out_fd, err_w)
    finally:
        os.close(out_fd)
        os.close(in_r)
        inode = os.fstat(err_w).st_ino
        os.close(err_w)
    err = read_all(err_r)
    assert rc == 3, err.decode()
    # pod-runtime keeps stdout for its document: the container got our stderr pipe
    # itself, not a pipe of conmon's
    lines = err.decode().splitlines()
    assert lines[0] == f"pipe:[{inode}]", lines
    assert "to-stderr" in lines and "got hello" in lines
    out = jsonio.loads((tmp_path / "out.json").read_bytes())
    assert out["state"]["exit_code"] == 3
    cid = out["container"]["id"]
    assert not (tmp_path / "root/runtime/containers" / cid / "ctr.log").exists()
    assert not (tmp_path / "runroot/runtime" / cid / "attach").exists()
    proc = run_cli("pod-runtime logs pt", podkit_env)
    assert proc.returncode == 2
    assert b"using the 'passthrough' log driver, cannot read logs" in proc.stderr
    run_cli("pod-runtime rm pt", podkit_env)


def test_pod_run_passthrough_gives_the_container_our_stdout(images, podkit_env) -> None:
    ref = images.ref("busybox:latest")
    proc = run_cli(f"pod run --rm --tls-verify=false --log-driver passthrough {ref} "
                   "sh -c 'readlink /proc/self/fd/1; echo out; exit 4' | cat", podkit_env)
    assert proc.returncode == 4, proc.stderr.decode()
    first, second = proc.stdout.decode().splitlines()
    assert first.startswith("pipe:[") and second == "out"
    assert run_cli("pod ps -a -q", podkit_env).stdout == b""  # --rm left nothing


def test_passthrough_is_refused_on_a_terminal(images, podkit_env, tmp_path) -> None:
    doc = prepare(images, podkit_env, "onatty", "true")
    path = save(doc, tmp_path, "tty.json")
    master, slave = pty.openpty()
    out_r, out_w = os.pipe()
    try:
        rc = run_with_fds(["pod-runtime", "run", "--log-driver", "passthrough", "-i",
                           "--input", str(path)], podkit_env, slave, out_w, out_w)
    finally:
        os.close(slave)
        os.close(out_w)
        os.close(master)
    err = read_all(out_r)
    assert rc == 2
    assert b"'--log-driver passthrough' option cannot be used on a TTY" in err
    # refused before anything was made
    assert run_cli("pod-runtime ps -a", podkit_env).stdout == b""


def test_attach_to_a_passthrough_container_is_refused(images, podkit_env,
                                                      tmp_path) -> None:
    doc = prepare(images, podkit_env, "quiet", "sleep", "1000")
    path = save(doc, tmp_path, "quiet.json")
    loads(run_cli(f"pod-runtime run -d --log-driver passthrough --input {path} "
                  "</dev/null 2>/dev/null", podkit_env))
    try:
        proc = run_cli("pod-runtime attach quiet </dev/null", podkit_env)
        assert proc.returncode == 2
        assert b"using the 'passthrough' log driver, cannot attach" in proc.stderr
    finally:
        run_cli("pod-runtime rm -f -t 0 quiet", podkit_env)


def test_json_file_is_an_alias_of_k8s_file(images, podkit_env, tmp_path) -> None:
    doc = prepare(images, podkit_env, "jf", "echo", "logged")
    path = save(doc, tmp_path, "jf.json")
    out = loads(run_cli(f"pod-runtime run --log-driver json-file --input {path}",
                        podkit_env))
    assert out["state"]["exit_code"] == 0
    proc = run_cli("pod-runtime logs jf", podkit_env)
    assert proc.returncode == 0 and proc.stdout == b"logged\n"
    run_cli("pod-runtime rm jf", podkit_env)


def test_conmon_argv_per_driver() -> None:
    from podkit_common.roots import resolve_roots
    from podkit_runtime._conmon import ConmonOptions, conmon_argv
    from podkit_runtime._state import ContainerPaths

    paths = ContainerPaths(resolve_roots("/r", "/rr"), "a" * 64)

    def log_arg(driver: str, **kw) -> tuple[str, bool]:
        argv = conmon_argv("conmon", "runc", paths, ConmonOptions("n", log_driver=driver,
                                                                  **kw), "pod-runtime")
        return argv[argv.index("-l") + 1], "-i" in argv

    assert log_arg("k8s-file") == (f"k8s-file:{paths.log}", False)
    assert log_arg("json-file") == (f"k8s-file:{paths.log}", False)
    assert log_arg("none", stdin=True) == ("none", True)
    assert log_arg("passthrough", stdin=True) == ("passthrough", False)  # no pipes


def test_pod_run_detached_passthrough_prints_no_id(images, podkit_env) -> None:
    """podman run -d --log-driver passthrough prints no id: stdout is the container's."""
    ref = images.ref("busybox:latest")
    proc = run_cli(f"pod run -d --name bg --tls-verify=false --log-driver passthrough {ref} "
                   "echo from-the-background | cat", podkit_env)
    try:
        # `cat` ends when the container, the last holder of the pipe, has exited
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout == b"from-the-background\n"
    finally:
        run_cli("pod rm -f bg", podkit_env)


def test_create_then_start_keeps_the_document_clean(images, podkit_env, tmp_path) -> None:
    """pod-runtime create hands conmon its stderr, never its stdout (the document)."""
    doc = prepare(images, podkit_env, "later", "sh", "-c", "echo out; echo err >&2")
    path = save(doc, tmp_path, "later.json")
    err = tmp_path / "create.err"
    created = run_cli(f"pod-runtime create --log-driver passthrough --input {path} "
                      f"2>{err}", podkit_env)
    assert created.returncode == 0, err.read_text()
    assert jsonio.loads(created.stdout)["state"]["status"] == "created"
    loads(run_cli("pod-runtime start later", podkit_env))
    waited = loads(run_cli("pod-runtime wait later", podkit_env))
    assert waited["state"]["exit_code"] == 0
    assert sorted(err.read_text().split()) == ["err", "out"]
    run_cli("pod-runtime rm later", podkit_env)


def test_pod_run_passthrough_hands_over_stdin_without_i(images, podkit_env) -> None:
    """podman gives conmon its own stdin whatever -i says; with passthrough the
    container reads it."""
    ref = images.ref("busybox:latest")
    proc = run_cli(f"echo typed-in | pod run --rm --tls-verify=false --log-driver "
                   f"passthrough {ref} cat | cat", podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"typed-in\n"
