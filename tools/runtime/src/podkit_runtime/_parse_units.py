"""Sizes and CPU counts the way podman's command line reads them (pure).

``parse_size`` follows go-units' RAMInBytes (binary multiples: "64m" is 64 MiB, "1.5g",
"512KiB", a bare number is bytes); ``parse_cpus`` turns "--cpus 0.5" into a CFS quota.
Errors are :class:`UsageError` with podman's message shape:
``invalid value for memory: invalid size: '12q'``.
"""

from __future__ import annotations

from podkit_common.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    import re

#: compiled at first use: importing re costs a cold start milliseconds (options only)
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str, ignore_case: bool = False) -> re.Pattern[str]:
    found = _PATTERNS.get(text)
    if found is None:
        import re

        found = _PATTERNS[text] = re.compile(text, re.IGNORECASE if ignore_case else 0)
    return found


_SIZE = r"^(\d+(?:\.\d+)?) ?([kmgtp])?(i?b)?$"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

#: The CFS period podman uses with --cpus (microseconds).
CPU_PERIOD = 100_000


def parse_size(value: str, what: str) -> int:
    """Bytes in ``value`` ("64m", "1g", "1024"); ``what`` names the option in errors."""
    m = _pattern(_SIZE, ignore_case=True).match(value.strip())
    if not m:
        raise UsageError(f"invalid value for {what}: invalid size: '{value}'",
                         hint="use a number with an optional unit: b, k, m, g (e.g. 64m)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def parse_int(value: str | int, what: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An integer option, within [minimum, maximum] when given."""
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise UsageError(f"invalid value for {what}: {value!r} is not an integer",
                         hint=f"give {what} as a whole number") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise UsageError(f"invalid value for {what}: {number} is out of range "
                         f"[{minimum}, {maximum}]", hint=f"give {what} within the range")
    return number


def parse_cpus(value: str) -> tuple[int, int]:
    """--cpus N.N as (quota, period) microseconds, like podman."""
    try:
        cpus = float(value)
    except ValueError:
        raise UsageError(f"invalid value for cpus: {value!r} is not a number",
                         hint="give --cpus as a decimal number of CPUs, e.g. 0.5") from None
    if cpus <= 0 or cpus != cpus or cpus == float("inf"):
        raise UsageError(f"invalid value for cpus: {value!r} must be a positive number",
                         hint="give --cpus as a decimal number of CPUs, e.g. 0.5")
    return int(cpus * CPU_PERIOD), CPU_PERIOD


_CPUSET = r"^\d+(-\d+)?(,\d+(-\d+)?)*$"


def parse_cpuset(value: str, what: str) -> str:
    """A cpuset list ("0-2,4"), checked for shape and ascending ranges."""
    if not _pattern(_CPUSET).match(value):
        raise UsageError(f"invalid value for {what}: {value!r}",
                         hint="use a list of numbers and ranges, e.g. 0-2,4")
    for part in value.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise UsageError(f"invalid value for {what}: range {part!r} is reversed",
                             hint="write ranges low-high")
    return value
