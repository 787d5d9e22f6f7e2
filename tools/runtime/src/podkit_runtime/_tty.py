"""Our terminal while attached to a container's tty (``run -t``, ``attach``, ``exec -t``).

conmon (``-t``) holds the pty master it received from runc over its console socket; the
container's pty does the echo and the line editing. So while attached, *our* terminal
must pass every byte through untouched (raw mode, like podman's ``term.MakeRaw``) and
come back exactly as it was afterwards, whatever ends the session (exit, detach keys,
an exception). A resize of our terminal (SIGWINCH) is forwarded the way podman does it
(``oci_conmon_common.go`` AttachResize): ``"1 <rows> <cols>\\n"`` written to conmon's
``ctl`` FIFO in the bundle, which conmon turns into TIOCSWINSZ on the master. The
initial size is sent the same way when the session starts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator

#: conmon's ctl FIFO event for a window resize (conmon src/ctrl.c WIN_RESIZE_EVENT)
WIN_RESIZE_EVENT = 1


def resize_message(rows: int, cols: int) -> bytes:
    """The line conmon's ctl FIFO expects for a resize (pure)."""
    return f"{WIN_RESIZE_EVENT} {rows} {cols}\n".encode()


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on ``fd``, or None when it is not a terminal."""
    import fcntl
    import struct
    import termios

    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return (rows, cols) if rows and cols else None


def send_resize(ctl: Path, rows: int, cols: int) -> bool:
    """Tell conmon the new size; False when nobody listens (conmon gone: not an error,
    the session is ending anyway)."""
    try:
        # O_NONBLOCK: opening a FIFO for writing with no reader would block forever.
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, resize_message(rows, cols))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def forward_size(fd: int, ctl: Path) -> bool:
    """Send the current size of our terminal on ``fd`` to conmon."""
    size = terminal_size(fd)
    return bool(size) and send_resize(ctl, *size)  # type: ignore[misc]


@contextlib.contextmanager
def attached_terminal(stdin_fd: int | None, ctl: Path, size_fd: int | None = None
                      ) -> Iterator[bool]:
    """Raw mode on ``stdin_fd`` (when it is a terminal), the initial size to ``ctl`` and
    SIGWINCH forwarded for the duration; everything restored on the way out. Yields
    whether a terminal was taken over (False: nothing to do, e.g. input from a pipe)."""
    # here, not at the top: every attached run imports this module, few have a tty
    import signal
    import termios
    import threading
    import tty

    fd = stdin_fd if stdin_fd is not None and os.isatty(stdin_fd) else None
    if fd is None and size_fd is not None and os.isatty(size_fd):
        fd = size_fd
    if fd is None:
        yield False
        return
    saved = termios.tcgetattr(fd)
    previous = None
    forward_size(fd, ctl)
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGWINCH, lambda *_: forward_size(fd, ctl))
    try:
        if fd == stdin_fd:
            tty.setraw(fd, termios.TCSANOW)
        yield True
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_for(tty: bool, stdin_fd: int | None, ctl: Path, size_fd: int | None = None
                 ) -> contextlib.AbstractContextManager[bool]:
    """:func:`attached_terminal` for a tty container, else a no-op (the hook the
    lifecycle's attached paths call)."""
    if not tty:
        return contextlib.nullcontext(False)
    return attached_terminal(stdin_fd, ctl, size_fd)
