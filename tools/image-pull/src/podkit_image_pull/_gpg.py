"""Verify GPG "simple signing" signatures with the ``gpg`` executable.

Only the keys a policy requirement names are trusted: they are imported into a fresh,
temporary GNUPGHOME that holds nothing else and is removed afterwards. The user's own
keyring is never read, no agent or dirmngr is started (``--no-autostart``), and no key
is fetched from anywhere. gpg's machine-readable status lines (``--status-file``) decide,
never its human messages::

    with GpgKeyring([key_bytes]) as keyring:
        payload, fingerprint = keyring.verify(signature_blob)   # or SignatureRejected

A signature is accepted only with exactly one ``NEWSIG``, a ``GOODSIG`` and a
``VALIDSIG`` whose primary-key fingerprint is one of the imported keys, and none of
``BADSIG``, ``ERRSIG``, ``EXPSIG``, ``EXPKEYSIG``, ``REVKEYSIG``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading

from podkit_common.errors import InvalidDocument, NotFound, PodkitError, Timeout

#: The signed payload is a small JSON document; a signature that inflates beyond this is hostile.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
GPG_TIMEOUT = 60.0
_BAD_STATUS = ("BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG")
#: Longest temporary directory to put a GNUPGHOME in (+ "/podkit-gpg-XXXXXXXX/S.gpg-agent.extra").
_MAX_TEMP_PREFIX = 60


class SignatureRejected(Exception):
    """This one signature is not acceptable; the message says why (a policy collects them)."""


class GpgKeyring:
    """A throwaway keyring holding exactly the given public keys (armored or binary)."""

    def __init__(self, keys: list[bytes], *, what: str = "signedBy keys",
                 gpg: str | None = None) -> None:
        self.what = what
        self.gpg = gpg or shutil.which("gpg") or ""
        if not self.gpg:
            raise NotFound("verify GPG signatures: the gpg executable is not installed",
                           hint="install gnupg (apt-get install gnupg)")
        self.home = tempfile.mkdtemp(prefix="podkit-gpg-", dir=_short_tempdir())
        try:
            self.fingerprints = self._import(keys)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the temporary GNUPGHOME."""
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> GpgKeyring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _argv(self, *args: str) -> list[str]:
        return [self.gpg, "--homedir", self.home, "--batch", "--no-tty", "--no-options",
                "--no-autostart", "--no-auto-key-retrieve", "--no-permission-warning", *args]

    def _env(self) -> dict[str, str]:
        # Nothing from the caller's gpg setup (GNUPGHOME, agent sockets) leaks in.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                "GNUPGHOME": self.home}

    def _import(self, keys: list[bytes]) -> set[str]:
        for number, key in enumerate(keys, 1):
            path = os.path.join(self.home, f"key-{number}")
            with open(path, "wb") as fh:
                fh.write(key)
            result = self._run(self._argv("--quiet", "--import", path))
            if result.returncode != 0:
                raise InvalidDocument(
                    f"import {self.what} (key {number}) into gpg: "
                    f"{_last_line(result.stderr)}",
                    hint="the policy's key must be an OpenPGP public key (armored or binary)")
        listing = self._run(self._argv("--with-colons", "--fixed-list-mode", "--list-keys"))
        fingerprints: set[str] = set()
        previous = ""
        for line in listing.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if fields[0] == "fpr" and previous == "pub" and len(fields) > 9:
                fingerprints.add(fields[9].upper())
            if fields[0] in ("pub", "sub", "uid", "uat"):
                previous = fields[0]
        if not fingerprints:
            raise InvalidDocument(f"{self.what}: no public keys were imported",
                                  hint="check keyPath/keyPaths/keyData in the policy")
        return fingerprints

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  env=self._env(), timeout=GPG_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise Timeout(f"{self.what}: gpg did not finish within {GPG_TIMEOUT:.0f}s") from None
        except OSError as exc:
            raise PodkitError(f"{self.what}: cannot run {self.gpg}: {exc}") from exc

    def verify(self, blob: bytes) -> tuple[bytes, str]:
        """Check ``blob`` (an OpenPGP signed message); return (payload, primary fingerprint)."""
        fd, sig_path = tempfile.mkstemp(dir=self.home, prefix="sig-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        status_path = sig_path + ".status"
        argv = self._argv("--status-file", status_path, "--output", "-", "--decrypt", sig_path)
        try:
            payload, returncode, stderr = self._run_limited(argv)
            with open(status_path, encoding="utf-8", errors="replace") as fh:
                status = [line.split()[1:] for line in fh if line.startswith("[GNUPG:] ")]
        finally:
            for path in (sig_path, status_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return payload, self._judge(status, returncode, stderr)

    def _run_limited(self, argv: list[str]) -> tuple[bytes, int, bytes]:
        """Run gpg reading at most MAX_PAYLOAD_BYTES of output, within GPG_TIMEOUT."""
        with tempfile.TemporaryFile() as err, subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                env=self._env()) as proc:
            expired = threading.Event()

            def kill() -> None:
                expired.set()
                proc.kill()

            timer = threading.Timer(GPG_TIMEOUT, kill)
            timer.start()
            try:
                assert proc.stdout is not None
                payload = proc.stdout.read(MAX_PAYLOAD_BYTES + 1)
                if len(payload) > MAX_PAYLOAD_BYTES:
                    proc.kill()
                    raise SignatureRejected(
                        f"the signed payload is larger than {MAX_PAYLOAD_BYTES} bytes")
                returncode = proc.wait()
            finally:
                timer.cancel()
            if expired.is_set():
                raise Timeout(f"{self.what}: gpg did not verify a signature within "
                              f"{GPG_TIMEOUT:.0f}s")
            err.seek(0)
            return payload, returncode, err.read(64 * 1024)

    def _judge(self, status: list[list[str]], returncode: int, stderr: bytes) -> str:
        words = [fields[0] for fields in status if fields]
        for bad in _BAD_STATUS:
            if bad in words:
                fields = next(f for f in status if f and f[0] == bad)
                raise SignatureRejected(_explain(bad, fields))
        if words.count("NEWSIG") != 1:
            if "NEWSIG" not in words:
                raise SignatureRejected("not a signed message (no signature found by gpg)"
                                        + _stderr_tail(stderr))
            raise SignatureRejected("more than one signature in one signature blob")
        valid = [fields for fields in status if fields and fields[0] == "VALIDSIG"]
        if returncode != 0 or "GOODSIG" not in words or len(valid) != 1:
            raise SignatureRejected(f"gpg did not verify it (exit {returncode})"
                                    + _stderr_tail(stderr))
        fields = valid[0]
        primary = (fields[10] if len(fields) > 10 else fields[1]).upper()
        if primary not in self.fingerprints:
            raise SignatureRejected(f"signed by key {primary}, which the policy does not trust")
        return primary


def _short_tempdir() -> str | None:
    """A temporary directory whose path leaves room for gpg's socket names.

    gpg derives socket paths from its home (unless /run/user/UID exists); past the 108
    bytes of a socket address it fails even with --no-autostart, so a long $TMPDIR
    falls back to /tmp.
    """
    default = tempfile.gettempdir()
    if len(default) <= _MAX_TEMP_PREFIX:
        return None
    for candidate in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _explain(word: str, fields: list[str]) -> str:
    key = fields[1] if len(fields) > 1 else "?"
    if word == "ERRSIG":
        reason = fields[6] if len(fields) > 6 else ""
        if reason == "9":
            return f"signed by key {key}, which is not among the policy's keys"
        return f"gpg could not check the signature by key {key} (error {reason or '?'})"
    return {
        "BADSIG": f"BAD signature by key {key}: the signed content was altered",
        "EXPSIG": f"the signature by key {key} has expired",
        "EXPKEYSIG": f"signed by key {key}, which has expired",
        "REVKEYSIG": f"signed by key {key}, which has been revoked",
    }[word]


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "failed"


def _stderr_tail(stderr: bytes) -> str:
    text = _last_line(stderr)
    return f": {text}" if text != "failed" else ""
