"""conmon's attach socket: a SOCK_SEQPACKET unix socket at ``<bundle>/attach``.

conmon -> client: one packet per read of the container's output, ``<stream byte>`` then
the bytes: 2 = stdout, 3 = stderr (a tty sends everything as 2).
client -> conmon: raw stdin bytes; ``shutdown(SHUT_WR)`` closes the container's stdin.
The socket closes when conmon exits, which is after the exit file and the exit command.
"""

from __future__ import annotations

import _socket  # the C module: socket.py's wrappers and enums are ~3 ms of a cold start
import contextlib
import os
import selectors
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STDOUT_STREAM = 2
STDERR_STREAM = 3
#: conmon reads at most 8192 bytes at a time; one more for the stream byte
PACKET = 8193
#: how long the attached side waits for output before looking for the exit file:
#: short right after output (a container that just printed often just exited), then
#: backing off so a quiet long-running container costs next to nothing
IDLE_FIRST = 0.002
IDLE_MAX = 0.25


def connect(path: Path) -> _socket.socket:
    """Connect to the attach socket through /proc/self/fd (sun_path holds 108 bytes)."""
    try:
        dirfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NotFound(f"attach socket {path} does not exist",
                              hint="is the container's conmon still running?") from None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)  # non-inheritable
    try:
        sock.connect(f"/proc/self/fd/{dirfd}")
    except OSError as exc:
        sock.close()
        raise errors.RuntimeFailure(f"connect to attach socket {path}: {exc}") from None
    finally:
        os.close(dirfd)
    return sock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[n:]


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str) -> bytes:
    """podman's --detach-keys: ``ctrl-<a-z@[\\]^_>`` or single characters, comma-separated;
    "" disables detaching."""
    out = bytearray()
    for part in (p.strip() for p in spec.split(",")) if spec else ():
        if part.lower().startswith("ctrl-") and len(part) == 6:
            ch = part[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
                continue
            if ch in _CTRL_PUNCT:
                out.append(_CTRL_PUNCT[ch])
                continue
        elif len(part) == 1:
            out.append(ord(part))
            continue
        raise errors.UsageError(f"invalid detach key {part!r}",
                                hint="e.g. ctrl-p,ctrl-q or ctrl-a,x; \"\" disables it")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in what the user types, across reads; bytes that turn
    out not to be the sequence are passed on unchanged (podman's CopyDetachable)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send to the container, whether the sequence was typed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            candidate = self.held + bytes([b])
            if self.keys.startswith(candidate):
                self.held = candidate
                if candidate == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            if self.keys.startswith(bytes([b])):  # the held bytes were not it; this may be
                out += self.held
                self.held = bytes([b])
                continue
            out += candidate
            self.held = b""
        return bytes(out), False


def _drain(sock: _socket.socket, stdout_fd: int, stderr_fd: int) -> None:
    """Copy what conmon has already sent, without waiting for more."""
    while True:
        try:
            packet = sock.recv(PACKET, _socket.MSG_DONTWAIT)
        except (BlockingIOError, ConnectionResetError):
            return
        if not packet:
            return
        _write_all(stderr_fd if packet[0] == STDERR_STREAM else stdout_fd, packet[1:])


def pump(sock: _socket.socket, stdout_fd: int, stderr_fd: int,
         stdin_fd: int | None = None, detach_keys: bytes = b"",
         finished: Callable[[], bool] | None = None) -> bool:
    """Copy the container's output to our fds (and our stdin to it) until conmon hangs up
    or ``finished()`` says the container is done (False), or the user types the detach
    keys (True).

    conmon sends the last output before it writes the exit file, but it keeps the socket
    open until its exit command has finished; ``finished`` (the exit file exists) lets
    an attached run end when the container does, not a process start-up later."""
    scanner = DetachScanner(detach_keys)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    if stdin_fd is not None:
        sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    idle = IDLE_FIRST
    try:
        while True:
            events = sel.select(idle if finished is not None else None)
            if not events:
                if finished is not None and finished():
                    _drain(sock, stdout_fd, stderr_fd)
                    return False
                idle = min(idle * 2, IDLE_MAX)
                continue
            idle = IDLE_FIRST
            for key, _ in events:
                if key.data == "stdin":
                    try:
                        data = os.read(stdin_fd, 8192)  # type: ignore[arg-type]
                    except OSError:
                        data = b""
                    if data:
                        data, detached = scanner.feed(data)
                        with contextlib.suppress(OSError):
                            if data:
                                sock.sendall(data)
                        if detached:
                            return True
                    else:
                        sel.unregister(stdin_fd)
                        with contextlib.suppress(OSError):
                            sock.shutdown(_socket.SHUT_WR)
                    continue
                try:
                    packet = sock.recv(PACKET)
                except ConnectionResetError:
                    packet = b""
                if not packet:
                    return False
                target = stderr_fd if packet[0] == STDERR_STREAM else stdout_fd
                _write_all(target, packet[1:])
    finally:
        sel.close()


def attach(roots: Roots, ref: str, *, stdio: tuple[int, int, int] = (0, 1, 2),
           stdin: bool = True, detach_keys: str | None = None) -> dict[str, Any]:
    """Attach to a running container through conmon's socket: its output to
    ``stdio[1]``/``stdio[2]``, ``stdio[0]`` to its stdin (if it was created with stdin),
    until it exits or the detach keys are typed. The document says ``detached``."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import document, sync, wait
    from podkit_runtime._state import ContainerPaths

    cid = _state.resolve(roots, ref)
    keys = parse_detach_keys(DEFAULT_DETACH_KEYS if detach_keys is None else detach_keys)
    record, seen = sync(roots, cid)
    if record.get("log_driver") == "passthrough":
        raise errors.UsageError("this container is using the 'passthrough' log driver, "
                                "cannot attach", hint="its output went to whoever started it")
    if seen.status not in ("running", "paused"):
        raise errors.Conflict(f"you can only attach to running containers: {record['name']} "
                              f"is {seen.status}", hint="start it first")
    sock = connect(ContainerPaths(roots, cid).attach_socket)
    from podkit_runtime._container_events import emit

    emit(roots, record, "attach")
    try:
        feed = stdio[0] if stdin and record.get("stdin") else None
        from podkit_runtime._tty import terminal_for

        with terminal_for(bool(record.get("tty")), feed,
                          ContainerPaths(roots, cid).ctl, stdio[1]):
            detached = pump(sock, stdio[1], stdio[2], feed, keys if feed is not None else b"")
    finally:
        sock.close()
    if detached:
        record, seen = sync(roots, cid)
        return {**document(record, seen, False), "detached": True}
    record, seen = wait(roots, cid)
    return {**document(record, seen, False), "detached": False}


attach_container = attach
