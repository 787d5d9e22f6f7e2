"""Run a podkit executable's CLI inside the test process: stdin bytes in, exit code,
stdout and stderr bytes out. The same ``run_app``/``run_guarded`` path the installed
executables take (argv rewriting, typer, the error envelope), without a fork per call,
so hypothesis can afford hundreds of examples."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
from dataclasses import dataclass

from podkit_common import errors

#: executable -> the module whose ``main()`` the console script ends in (typer's path).
MAINS = {
    "pod-image-pull": "podkit_image_pull.cli",
    "pod-storage": "podkit_storage.cli",
    "pod-runtime": "podkit_runtime.cli",
    "pod-netsetup": "podkit_netsetup.cli",
    "pod": "podkit_pod.cli",
}

#: The exit codes the README's table allows for a failure we reported on purpose
#: (1 is "internal error": a bug, never allowed here).
DOCUMENTED_FAILURES = {cls.exit_code for cls in (
    errors.UsageError, errors.InvalidDocument, errors.NotFound, errors.Conflict,
    errors.VerificationFailed, errors.RemoteError, errors.AuthenticationFailed,
    errors.UnsafeContent, errors.RuntimeFailure, errors.ResourceExhausted,
    errors.PermissionDenied, errors.NotImplementedYet, errors.Timeout)}


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: bytes

    def envelope(self) -> dict:
        """The one error line on stderr, parsed (fails the test when it is not there)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert lines, f"exit {self.code} with nothing on stderr"
        doc = json.loads(lines[-1])
        assert set(doc) == {"error"}, doc
        return doc["error"]


def run_inproc(tool: str, argv: list[str], stdin: bytes = b"") -> Outcome:
    """``tool argv...`` in-process with ``stdin``; never raises for the tool's failures."""
    main = importlib.import_module(MAINS[tool]).main
    fin = io.TextIOWrapper(io.BytesIO(stdin))
    fout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    ferr = io.TextIOWrapper(io.BytesIO(), write_through=True)
    old = sys.argv
    sys.argv = [tool, *argv]
    code: object = 0
    try:
        with contextlib.redirect_stdout(fout), contextlib.redirect_stderr(ferr), \
                _stdin(fin):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.argv = old
    fout.flush()
    ferr.flush()
    if code is None:
        code = 0
    assert isinstance(code, int), f"exit with {code!r}"
    return Outcome(code, fout.buffer.getvalue(), ferr.buffer.getvalue())


@contextlib.contextmanager
def _stdin(stream):
    old = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = old


def assert_clean_outcome(out: Outcome, *, allowed: set[int] | None = None) -> None:
    """Success with one JSON document (or JSON lines) on stdout, or a documented
    failure: nothing on stdout, the JSON envelope last on stderr, never a traceback."""
    assert b"Traceback (most recent call last)" not in out.stderr, out.stderr.decode(
        errors="replace")
    if out.code == 0:
        for line in out.stdout.splitlines():
            if line.strip():
                json.loads(line)
        return
    codes = DOCUMENTED_FAILURES if allowed is None else allowed
    err = out.envelope()
    assert err["type"] != "InternalError", err
    assert out.code in codes, (out.code, err)
    assert set(err) >= {"tool", "type", "message", "hint"}, err
    assert out.stdout == b"", out.stdout
