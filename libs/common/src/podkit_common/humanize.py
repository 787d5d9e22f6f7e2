"""Sizes and ages the way podman prints them (docker/go-units), and Go's time.String().

    human_size(2141770)            -> "2.14 MB"    (HumanSizeWithPrecision(n, 3))
    human_size(2152561, 4, "")     -> "2.153MB"    (HumanSize: podman image tree)
    human_duration(3 * 86400 * 365)-> "3 years"    (HumanDuration)
    time_ago(created)              -> "3 years ago" (podman's CREATED columns)
    go_time(created)               -> "2023-11-14 22:13:20 +0000 UTC"  ({{.CreatedAt}})
"""

from __future__ import annotations

import time

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _go_g(value: float, precision: int) -> str:
    """Go's %.Ng: like Python's, with a two-digit exponent."""
    text = f"{value:.{precision}g}"
    if "e" in text:
        base, exp = text.split("e")
        text = f"{base}e{exp[0]}{int(exp[1:]):02d}"
    return text


def human_size(n: float, precision: int = 3, sep: str = " ") -> str:
    """go-units' decimal size (``2.14 MB``); ``sep=""`` and precision 4 is HumanSize."""
    value = float(n)
    i = 0
    while value >= 1000 and i < len(_UNITS) - 1:
        value /= 1000
        i += 1
    return f"{_go_g(value, precision)}{sep}{_UNITS[i]}"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: ``Less than a second`` ... ``3 years``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def utc_seconds(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) as Unix seconds, or None; what
    ``calendar.timegm(time.strptime(...))`` gives, without importing calendar and
    datetime (strptime's) on the path of ``pod ps``."""
    if len(text) != 19 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt" \
            or text[13] != ":" or text[16] != ":":
        return None
    parts = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    if not all(p.isdigit() and p.isascii() for p in parts):
        return None
    y, m, d, hh, mm, ss = (int(p) for p in parts)
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (1 <= m <= 12 and 1 <= d <= _MONTH_DAYS[m - 1] + (m == 2 and leap)
            and hh <= 23 and mm <= 59 and ss <= 61):
        return None
    # Days from 1970-01-01 to the civil date (H. Hinnant's days_from_civil).
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hh * 3600 + mm * 60 + ss


def parse_time(stamp: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (``2023-11-14T22:13:20Z``, fractions
    and offsets allowed); None when absent or unreadable."""
    if not stamp:
        return None
    base = utc_seconds(stamp[:19])
    if base is None:
        return None
    rest = stamp[19:]
    frac = 0.0
    if rest.startswith("."):
        digits = ""
        for ch in rest[1:]:
            if not ch.isdigit():
                break
            digits += ch
        frac = float("0." + digits) if digits else 0.0
        rest = rest[1 + len(digits):]
    if rest and rest[0] in "+-" and len(rest) >= 6:
        sign = 1 if rest[0] == "+" else -1
        base -= sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
    return base + frac


def time_ago(stamp: str | float | None, now: float | None = None) -> str:
    """podman's CREATED column: ``3 years ago`` (``<none>`` without a time)."""
    then = stamp if isinstance(stamp, (int, float)) else parse_time(stamp)
    if then is None:
        return "<none>"
    return human_duration((time.time() if now is None else now) - then) + " ago"


def go_time(stamp: str | float | None) -> str:
    """Go's time.Time.String() in UTC: ``2023-11-14 22:13:20 +0000 UTC``."""
    then = stamp if isinstance(stamp, (int, float)) else parse_time(stamp)
    if then is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(then))
    frac = then - int(then)
    if frac:
        text += f"{frac:.9f}"[1:].rstrip("0")
    return text + " +0000 UTC"
