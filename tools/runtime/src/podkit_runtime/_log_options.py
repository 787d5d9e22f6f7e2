"""podman's ``--log-driver`` and ``--log-opt`` for create/run (pure parsing).

``k8s-file`` (the default) is conmon's own log file; ``none`` keeps nothing (conmon
``-l none``) and ``logs`` then fails like podman's. ``max-size=N`` becomes conmon's
``--log-size-max``: conmon truncates the file when it would grow past N bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from podkit_common import errors

LOG_DRIVERS = ("k8s-file", "none")


@dataclass(frozen=True)
class LogConfig:
    driver: str = "k8s-file"
    size_max: int | None = None


def parse_log_options(driver: str | None, opts: Iterable[str] = ()) -> LogConfig:
    """``--log-driver`` and ``--log-opt KEY=VALUE`` values as a :class:`LogConfig`."""
    from podkit_runtime._parse_units import parse_size

    driver = driver or "k8s-file"
    if driver not in LOG_DRIVERS:
        raise errors.UsageError(f"unsupported log driver {driver!r}",
                                hint="one of " + ", ".join(LOG_DRIVERS))
    size_max = None
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            raise errors.UsageError(f"invalid log option {opt!r}", hint="KEY=VALUE")
        if key == "max-size":
            size_max = parse_size(value, "log-opt max-size")
            if size_max <= 0:
                raise errors.UsageError(f"invalid log option {opt!r}: size must be positive")
        elif key in ("path", "tag"):
            raise errors.NotImplementedYet(f"log option {key} is not supported yet")
        else:
            raise errors.UsageError(f"unknown log option {key!r}", hint="max-size=N")
    return LogConfig(driver, size_max)


def no_logs_error() -> errors.PodkitError:
    """podman's error for ``logs`` of a container using the none driver."""
    return errors.UsageError("this container is using the 'none' log driver, cannot read "
                             "logs: this container is not logging output",
                             hint="create it with --log-driver k8s-file")
