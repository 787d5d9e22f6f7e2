"""The podkit error model: one exception tree and one exit-code table for every tool.

    PodkitError                      exit 1  (base; also "internal error")
    ├── UsageError                   exit 2  bad command line
    ├── InvalidDocument              exit 3  malformed JSON or a schema violation
    ├── NotFound                     exit 4  image, blob, container, ... does not exist
    ├── Conflict                     exit 5  exists already, in use, wrong state
    ├── VerificationFailed           exit 6  digest, diff_id or signature mismatch
    ├── RemoteError                  exit 7  registry unreachable or broken answer
    │   └── AuthenticationFailed     exit 8  credentials refused or missing
    ├── UnsafeContent                exit 9  hostile input refused (path escape, ...)
    ├── RuntimeFailure               exit 10 runc / conmon / CNI plugin failed
    ├── ResourceExhausted            exit 11 no space left, size limit reached
    ├── PermissionDenied             exit 12 needs root or a capability we lack
    ├── NotImplementedYet            exit 13 the feature is not built yet
    └── Timeout                      exit 14 gave up waiting (lock, process, remote)

Interrupted by SIGINT: exit 130.  ``pod run`` (like ``podman run``) uses 125 for its
own errors, 126 when the command cannot be invoked, 127 when it is not found, and
otherwise the container's exit code.

Every failure is reported as one JSON line on stderr::

    {"error": {"tool": "pod-storage", "type": "InvalidDocument", "message": "...", "hint": "..."}}
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERRUPTED = 130
EXIT_RUN_OWN_ERROR = 125
EXIT_RUN_CANNOT_INVOKE = 126
EXIT_RUN_NOT_FOUND = 127


class PodkitError(Exception):
    """Base of every error a podkit tool reports on purpose."""

    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    @property
    def type_name(self) -> str:
        return type(self).__name__


class UsageError(PodkitError):
    exit_code = 2
    default_hint = "see --help"


class InvalidDocument(PodkitError):
    exit_code = 3
    default_hint = "pipe in the document the previous stage printed; see `schema`"


class NotFound(PodkitError):
    exit_code = 4


class Conflict(PodkitError):
    exit_code = 5


class VerificationFailed(PodkitError):
    exit_code = 6
    default_hint = "the content does not match its digest; nothing was stored"


class RemoteError(PodkitError):
    exit_code = 7


class AuthenticationFailed(RemoteError):
    exit_code = 8


class UnsafeContent(PodkitError):
    exit_code = 9
    default_hint = "the input tried to reach outside its root; nothing outside was touched"


class RuntimeFailure(PodkitError):
    exit_code = 10


class ResourceExhausted(PodkitError):
    exit_code = 11


class PermissionDenied(PodkitError):
    exit_code = 12
    default_hint = "run as root"


class NotImplementedYet(PodkitError):
    exit_code = 13


class Timeout(PodkitError):
    exit_code = 14


#: The table the README documents: exit code -> error type.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "PodkitError / internal error",
    **{cls.exit_code: cls.__name__ for cls in (
        UsageError, InvalidDocument, NotFound, Conflict, VerificationFailed, RemoteError,
        AuthenticationFailed, UnsafeContent, RuntimeFailure, ResourceExhausted,
        PermissionDenied, NotImplementedYet, Timeout,
    )},
    130: "interrupted (SIGINT)",
}


def from_os_error(exc: OSError, doing: str) -> PodkitError:
    """Turn an OSError into the podkit error a user can act on, keeping what we were doing."""
    import errno

    text = f"{doing}: {exc.strerror or exc}"
    if exc.filename is not None:
        text = f"{doing}: {exc.filename}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(text, hint="free some space; the failed step left nothing behind")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(text)
    if exc.errno == errno.ENOENT:
        return NotFound(text)
    if exc.errno == errno.EEXIST:
        return Conflict(text)
    return PodkitError(text)


def envelope(tool: str, exc: BaseException) -> dict:
    """The one-line JSON error document written to stderr."""
    if isinstance(exc, PodkitError):
        return {"error": {"tool": tool, "type": exc.type_name, "message": exc.message,
                          "hint": exc.hint}}
    return {"error": {"tool": tool, "type": "InternalError",
                      "message": f"{type(exc).__name__}: {exc}",
                      "hint": "this is a bug in podkit; rerun with PODKIT_DEBUG=1 for a traceback"}}


def exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, PodkitError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return 1
