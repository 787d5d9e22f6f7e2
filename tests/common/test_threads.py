"""podkit_common.threads: start a function in a thread, join it."""

from __future__ import annotations

import time

import pytest

from podkit_common.threads import start


def test_join_waits_for_the_function_and_may_be_called_again():
    seen: list[str] = []
    join = start(lambda a, b: (time.sleep(0.05), seen.append(a + b)), "x", "y")
    join()
    assert seen == ["xy"]
    join()  # a second join returns at once
    assert seen == ["xy"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_function_still_lets_join_return():
    def boom() -> None:
        raise ValueError("boom")

    start(boom)()  # reported on stderr by _thread, never a hang
