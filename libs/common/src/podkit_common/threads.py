"""A thread to join, on ``_thread``: ``threading``'s import (and its bookkeeping) costs a
cold start milliseconds, and the start paths need no more than start and join.

    join = start(fn, *args)   # fn(*args) runs in a new thread
    join()                    # returns once fn has returned (or raised)

What ``fn`` raises is not carried over (``_thread`` reports it on stderr): callers hand
results and failures back themselves. Unlike threading's, such a thread is not waited
for at interpreter exit, so every caller joins it before going on.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def start(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """Run ``fn(*args)`` in a new thread; the function that waits for it to end."""
    import _thread

    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            fn(*args)
        finally:
            done.release()

    _thread.start_new_thread(run, ())

    def join() -> None:
        done.acquire()
        done.release()  # a second join returns at once

    return join
