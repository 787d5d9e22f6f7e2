"""`pod run -it` in a real pseudo-terminal: conmon gets the pty master over its console
socket, our terminal goes raw while attached and comes back after, SIGWINCH reaches the
container through conmon's ctl FIFO, and the shell's exit status is ours."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import termios
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

#: generous ceilings so a loaded machine does not fail the tests (never asserted on)
PROMPT_WAIT = 120.0


@pytest.fixture(autouse=True)
def _needs_conmon() -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")


class PtySession:
    """A child process on the slave side of a fresh pty; we hold the master."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24,
                 cols: int = 80) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec, never return into pytest
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buf = b""
        self.status: int | None = None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, pattern: bytes, timeout: float = PROMPT_WAIT) -> re.Match[bytes]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; got {self.buf[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the slave side
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {pattern!r}; got {self.buf[-2000:]!r}")
                self.buf += chunk

    def resize(self, rows: int, cols: int) -> None:
        """What a terminal emulator does: set the size, the kernel SIGWINCHes the
        foreground process group (pod)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def wait(self, timeout: float = PROMPT_WAIT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if ready:
                    self.buf += os.read(self.fd, 4096)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"pod did not exit; output {self.buf[-2000:]!r}")

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def session_factory():
    made: list[PtySession] = []

    def make(argv: list[str], env: dict[str, str], **kw) -> PtySession:
        s = PtySession(argv, env, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_pod_run_it_echoes_resizes_and_returns_the_exit_status(images, podkit_env,
                                                                 session_factory) -> None:
    env = {**podkit_env, "TERM": "xterm", "PS1": "PROMPT# "}
    s = session_factory(["pod", "run", "--tls-verify=false", "-it", "--name", "tty1",
                         images.ref("busybox:latest"), "sh"], env, rows=24, cols=80)
    s.expect(rb"# ")
    s.send(b"echo $((6*7))\r")
    s.expect(rb"\r\n42\r\n")  # the tty echoed the line, then the shell printed 42
    s.send(b"stty size\r")
    s.expect(rb"\r\n24 80\r\n")  # the initial size reached the container
    s.resize(40, 132)
    # SIGWINCH -> pod -> `1 40 132` on conmon's ctl FIFO -> TIOCSWINSZ on the pty
    deadline = time.monotonic() + PROMPT_WAIT
    while True:
        s.send(b"stty size\r")
        m = s.expect(rb"\r\n(\d+ \d+)\r\n")
        if m.group(1) == b"40 132" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert m.group(1) == b"40 132"
    s.send(b"exit 3\r")
    assert s.wait() == 3


def test_terminal_is_raw_while_attached_and_restored_after(images, podkit_env,
                                                           session_factory) -> None:
    env = {**podkit_env, "TERM": "xterm", "PS1": "PROMPT# "}
    ref = images.ref("busybox:latest")
    s = session_factory(["sh", "-c", "echo before=$(stty -g); "
                         f"pod run --tls-verify=false -it {ref} sh; "
                         "echo rc=$? after=$(stty -g)"], env)
    before = s.expect(rb"before=(\S+)").group(1)
    s.expect(rb"# ")
    # tcgetattr on the master reports the slave's modes: pod made them raw
    lflag = termios.tcgetattr(s.fd)[3]
    assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
    s.send(b"exit 0\r")
    m = s.expect(rb"rc=(\d+) after=(\S+)")
    assert m.group(1) == b"0"
    assert m.group(2) == before  # every mode back as it was
    assert s.wait() == 0


def test_ctrl_c_goes_to_the_container_not_to_pod(images, podkit_env, session_factory) -> None:
    env = {**podkit_env, "TERM": "xterm", "PS1": "PROMPT# "}
    s = session_factory(["pod", "run", "--tls-verify=false", "-it",
                         images.ref("busybox:latest"), "sh"], env)
    s.expect(rb"# ")
    # not a bare `sleep`: busybox runs it inside the shell, pid 1, which ignores SIGINT
    s.send(b"sh -c 'sleep 1000; echo not-interrupted'\r")
    s.expect(rb"sleep 1000; echo not-interrupted'\r\n")
    # The container's pty turns ^C into SIGINT for the job; the shell lives. A ^C typed
    # before the shell handed the terminal to the job is lost, so type it until it works.
    for _ in range(60):
        s.send(b"\x03")
        try:
            s.expect(rb"\^C\r\n.*# ", timeout=2)
            break
        except AssertionError:
            continue
    assert b"not-interrupted" not in s.buf
    s.send(b"echo alive-$((40+2))\r")
    s.expect(rb"alive-42")
    s.send(b"exit 5\r")
    assert s.wait() == 5


def test_resize_message_is_conmons_ctl_line() -> None:
    from podkit_runtime._tty import resize_message

    assert resize_message(40, 132) == b"1 40 132\n"


def test_terminal_for_a_pipe_changes_nothing(tmp_path) -> None:
    from podkit_runtime._tty import terminal_for

    r, w = os.pipe()
    try:
        with terminal_for(True, r, tmp_path / "ctl", w) as took:
            assert took is False
    finally:
        os.close(r)
        os.close(w)


def test_attach_and_exec_it_to_a_detached_tty_container(images, podkit_env,
                                                        session_factory) -> None:
    env = {**podkit_env, "TERM": "xterm", "PS1": "PROMPT# "}
    s = session_factory(["pod", "run", "--tls-verify=false", "-dit", "--name", "bg",
                         images.ref("busybox:latest"), "sh"], env)
    assert s.wait() == 0
    try:
        a = session_factory(["pod", "attach", "bg"], env, rows=30, cols=100)
        a.send(b"\r")  # a fresh prompt for the attached terminal
        a.expect(rb"# ")
        a.send(b"echo $((6*7))\r")
        a.expect(rb"\r\n42\r\n")
        a.send(b"stty size\r")
        a.expect(rb"\r\n30 100\r\n")  # attach sent our size
        a.send(b"\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
        assert a.wait() == 0
        e = session_factory(["pod", "exec", "-it", "bg", "sh"], env, rows=33, cols=77)
        e.expect(rb"# ")
        e.send(b"stty size; tty\r")
        e.expect(rb"\r\n33 77\r\n/dev/pts/\d+\r\n")
        e.send(b"exit 4\r")
        assert e.wait() == 4
    finally:
        from tests.testbed.shell import sh

        sh("pod rm -f -t 0 bg", env=podkit_env)


def test_terminal_restored_when_the_container_is_killed(images, podkit_env,
                                                        session_factory) -> None:
    env = {**podkit_env, "TERM": "xterm", "PS1": "PROMPT# "}
    ref = images.ref("busybox:latest")
    s = session_factory(["sh", "-c", "echo before=$(stty -g); "
                         f"pod run --tls-verify=false -it --name victim {ref} sh; "
                         "echo rc=$? after=$(stty -g)"], env)
    before = s.expect(rb"before=(\S+)").group(1)
    s.expect(rb"# ")
    from tests.testbed.shell import sh

    assert sh("pod kill victim", env=podkit_env).returncode == 0
    m = s.expect(rb"rc=(\d+) after=(\S+)")
    assert m.group(1) == b"137"
    assert m.group(2) == before
    assert s.wait() == 0
    sh("pod rm -f victim", env=podkit_env)
