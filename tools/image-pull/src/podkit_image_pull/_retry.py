"""Trying a registry request again: which failures deserve it, how often, how long to wait.

    RemoteError                 exit 7
    └── RetryableError          another attempt may succeed: HTTP 408, 429 or 5xx (not
                                501/505), a connection reset or dropped mid-answer, a
                                connect timeout, a read that stalled for ``stall_timeout``

Both report themselves as ``RemoteError`` (the documented exit-code table). When the last
attempt fails too, a plain RemoteError names the count and the last cause; its
``attempts`` attribute holds the count.

:func:`call_with_retries` makes at most ``RetryPolicy.attempts`` attempts. Between them
it waits ``delay`` seconds when one is given (podman's ``--retry-delay``), else an
exponential backoff from ``backoff`` (doubled each time, capped at ``max_delay``) with
jitter, so six parallel downloads do not hammer a struggling registry in lockstep; a
``Retry-After`` answer is waited out (up to ``max_retry_after``).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from podkit_common.errors import RemoteError, UsageError
from podkit_common.records import field, record, replace

T = TypeVar("T")

#: HTTP answers that say "not now" rather than "no".
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RetryableError(RemoteError):
    """A registry failure another attempt may fix; ``retry_after`` is the server's wish."""

    def __init__(self, message: str, *, hint: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after

    @property
    def type_name(self) -> str:
        return "RemoteError"


def _gave_up(message: str, hint: str, attempts: int) -> RemoteError:
    error = RemoteError(message, hint=hint)
    error.attempts = attempts  # type: ignore[attr-defined]
    return error


def gave_up(exc: BaseException) -> bool:
    """Whether ``exc`` ended a retry loop (the last of several attempts failed)."""
    return getattr(exc, "attempts", None) is not None


@record(frozen=True)
class RetryPolicy:
    """How hard a pull tries: attempts per request, waits between them, network timeouts.

    ``attempts`` counts the first try (the default 4 is podman's ``--retry 3``).
    ``delay`` fixes the wait between attempts; None means exponential backoff starting
    at ``backoff`` seconds. ``stall_timeout`` is how long a connection may deliver no
    byte at all before it counts as failed (and is retried, resuming where it stopped);
    ``connect_timeout`` bounds opening one. ``report`` receives a line per retry.
    """

    attempts: int = 4
    delay: float | None = None
    backoff: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    stall_timeout: float = 30.0
    connect_timeout: float = 15.0
    report: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise UsageError(f"retry policy: attempts must be at least 1, not {self.attempts}")
        for name in ("backoff", "max_delay", "max_retry_after"):
            if getattr(self, name) < 0:
                raise UsageError(f"retry policy: {name} must not be negative")
        if self.delay is not None and self.delay < 0:
            raise UsageError("retry policy: delay must not be negative")
        for name in ("stall_timeout", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise UsageError(f"retry policy: {name} must be more than 0 seconds")

    @classmethod
    def from_options(cls, retries: int, delay: float | None,
                     stall_timeout: float) -> RetryPolicy:
        """The policy of podman's ``--retry N --retry-delay S`` and our ``--stall-timeout``."""
        return cls(attempts=retries + 1, delay=delay, stall_timeout=stall_timeout)

    def reporting_to(self, report: Callable[[str], None]) -> RetryPolicy:
        """This policy with ``report`` as its reporter, unless it already has one."""
        return self if self.report is not None else replace(self, report=report)

    def wait_before(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 for the first retry)."""
        if self.delay is not None:
            wait = self.delay
        else:
            ceiling = min(self.max_delay, self.backoff * 2 ** max(attempt - 2, 0))
            wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def call_with_retries(policy: RetryPolicy, attempt: Callable[[], T], *,
                      progress: Callable[[], int] | None = None) -> T:
    """Call ``attempt`` until it returns, retrying RetryableErrors as ``policy`` says.

    Any other exception ends it at once. ``progress`` (e.g. bytes stored so far) lets an
    attempt that moved forward before failing start a fresh count, so a long download
    over a flaky link is not abandoned for resets it recovered from; every attempt that
    fails without moving forward still counts.
    """
    failures = 0
    made = 0
    while True:
        mark = progress() if progress is not None else 0
        try:
            return attempt()
        except RetryableError as exc:
            made += 1
            moved = progress is not None and progress() != mark
            failures = 1 if moved else failures + 1
            if failures >= policy.attempts:
                raise _gave_up(f"{exc.message} (gave up after {_count(made)})",
                               exc.hint or "the registry keeps failing; retry later",
                               made) from None
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
                raise _gave_up(
                    f"{exc.message} (the registry asks to retry after {exc.retry_after:g}s; "
                    f"gave up after {_count(made)})",
                    "the registry is rate limiting or down for a while; retry later",
                    made) from None
            wait = policy.wait_before(failures + 1, exc.retry_after)
            if policy.report is not None:
                policy.report(f"{exc.message}; retrying in {wait:.1f}s "
                              f"(attempt {failures + 1} of {policy.attempts})")
            policy.sleep(wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in ``text``: a number of seconds or a Go-style ``2s``, ``500ms``, ``1m30s``."""
    value = text.strip()
    pos, total = 0, 0.0
    while pos < len(value):
        match = _DURATION_RE.match(value, pos)
        if match is None or (match.group(2) is None and (pos > 0 or match.end() < len(value))):
            raise UsageError(f"{what}: {text!r} is not a duration (e.g. 30, 2s, 500ms, 1m30s)")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not value:
        raise UsageError(f"{what}: an empty duration")
    return total


def _count(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"
