"""podman's ``--log-driver`` and ``--log-opt`` for create/run (pure parsing).

``k8s-file`` (the default; ``json-file`` is podman's alias for it) is conmon's own log
file; ``none`` keeps nothing (conmon ``-l none``) and ``logs`` then fails like podman's.
``passthrough`` (conmon ``-l passthrough``) hands the caller's own stdin, stdout and
stderr to the container: no log, no attach socket, and, like podman and conmon, never
on a terminal (a container holding our tty could push input into it with TIOCSTI).
``max-size=N`` becomes conmon's ``--log-size-max``: conmon truncates the file when it
would grow past N bytes.
"""

from __future__ import annotations

from podkit_common import errors
from podkit_common.records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable

LOG_DRIVERS = ("k8s-file", "json-file", "none", "passthrough")
#: drivers whose output conmon writes to the k8s-file log
FILE_DRIVERS = ("k8s-file", "json-file")


@record(frozen=True)
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


def conmon_log_arg(driver: str, log_path: str) -> str:
    """conmon's ``-l`` value for a driver (podman's oci_conmon_common.go mapping)."""
    return driver if driver in ("none", "passthrough") else f"k8s-file:{log_path}"


def check_passthrough(driver: str, tty: bool, fds: Iterable[int]) -> None:
    """podman's rule for ``--log-driver passthrough``: not with a tty, and not when any
    of the standard streams it would hand over is a terminal."""
    import os

    if driver != "passthrough":
        return
    if tty or any(os.isatty(fd) for fd in fds):
        raise errors.UsageError("the '--log-driver passthrough' option cannot be used on a TTY",
                                hint="redirect stdin, stdout and stderr, or use k8s-file")


def no_logs_error(driver: str = "none") -> errors.PodkitError:
    """podman's error for ``logs`` of a container that keeps no log."""
    return errors.UsageError(f"this container is using the '{driver}' log driver, cannot "
                             "read logs: this container is not logging output",
                             hint="create it with --log-driver k8s-file")
