"""Real signatures for the trust-policy tests, made with independent tools.

* :class:`GpgHome` generates keys with ``gpg --batch --gen-key`` in its own GNUPGHOME
  and signs with ``gpg --sign``; its gpg-agent is stopped on ``close`` through
  ``gpgconf --kill`` for that home only.
* :func:`skopeo_sign_copy` copies an image inside the test registry with
  ``skopeo copy --sign-by``, writing the lookaside signature where a registries.d file
  says (``lookaside-staging``); :func:`skopeo_standalone_sign` signs any manifest for any
  identity (``skopeo standalone-sign``).
* :class:`LookasideServer` serves a lookaside directory with ``python -m http.server`` on
  127.0.0.1, started and stopped by its pid.

Nothing here imports podkit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.testbed.procs import stop_pid
from tests.testbed.registry import free_port

SIMPLE_SIGNING_TYPE = "atomic container signature"


class GpgHome:
    """A private GNUPGHOME with generated signing keys (name -> fingerprint)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keys: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.path), "LC_ALL": "C"}

    def run(self, *args: str, input: bytes | None = None) -> bytes:
        result = subprocess.run(["gpg", "--batch", "--no-tty", *args], input=input,
                                capture_output=True, env=self.env(), timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"gpg {' '.join(args)}: {result.stderr.decode()[-800:]}")
        return result.stdout

    def generate(self, name: str, *, subkey: bool = False) -> str:
        """A new ed25519 key (with a separate signing subkey if ``subkey``)."""
        lines = ["%no-protection", "Key-Type: eddsa", "Key-Curve: ed25519",
                 "Key-Usage: sign" if not subkey else "Key-Usage: cert",
                 f"Name-Real: podkit test {name}", f"Name-Email: {name}@podkit.invalid",
                 "Expire-Date: 0"]
        if subkey:
            lines += ["Subkey-Type: eddsa", "Subkey-Curve: ed25519", "Subkey-Usage: sign"]
        lines.append("%commit")
        self.run("--gen-key", input=("\n".join(lines) + "\n").encode())
        listing = self.run("--with-colons", "--list-secret-keys", f"{name}@podkit.invalid")
        fpr = next(line.split(":")[9] for line in listing.decode().splitlines()
                   if line.startswith("fpr:"))
        self.keys[name] = fpr
        return fpr

    def export(self, name: str, path: Path, *, armor: bool = True) -> Path:
        path.write_bytes(self.run(*(["--armor"] if armor else []), "--export",
                                  self.keys[name]))
        return path

    def sign(self, name: str, data: bytes, *, compress: bool = True) -> bytes:
        """An OpenPGP signed message (what simple signing stores) over ``data``."""
        extra = [] if compress else ["--compress-algo", "none"]
        return self.run("--local-user", self.keys[name], *extra, "--sign", input=data)

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.path), "--kill", "all"],
                       capture_output=True, env=self.env(), timeout=30, check=False)


def simple_signing_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The JSON a simple-signing signature signs (what skopeo writes)."""
    import json

    return json.dumps({"critical": {"identity": {"docker-reference": docker_reference},
                                    "image": {"docker-manifest-digest": manifest_digest},
                                    "type": SIMPLE_SIGNING_TYPE},
                       "optional": {"creator": "podkit tests", "timestamp": 1700000000}}
                      ).encode()


def _skopeo_env(gpg: GpgHome, home: Path) -> dict[str, str]:
    # Nothing from the real user's containers config: HOME and XDG dirs are ours.
    return {**gpg.env(), "HOME": str(home), "XDG_RUNTIME_DIR": str(home),
            "XDG_CONFIG_HOME": str(home / ".config")}


def skopeo_sign_copy(gpg: GpgHome, key: str, src: str, dst: str, *, registries_d: Path,
                     work: Path) -> None:
    """``skopeo copy --sign-by`` from ``src`` to ``dst`` (docker:// references)."""
    policy = work / "skopeo-policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    result = subprocess.run(
        ["skopeo", "--policy", str(policy), "--registries.d", str(registries_d), "copy",
         "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by", gpg.keys[key],
         src, dst],
        capture_output=True, env=_skopeo_env(gpg, work), timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo copy --sign-by: {result.stderr.decode()[-800:]}")


def skopeo_standalone_sign(gpg: GpgHome, key: str, manifest: bytes, identity: str,
                           work: Path) -> bytes:
    """``skopeo standalone-sign``: a signature of ``manifest`` claiming ``identity``."""
    manifest_path, out = work / "standalone-manifest.json", work / "standalone.sig"
    manifest_path.write_bytes(manifest)
    result = subprocess.run(
        ["skopeo", "standalone-sign", str(manifest_path), identity, gpg.keys[key],
         "--output", str(out)],
        capture_output=True, env=_skopeo_env(gpg, work), timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo standalone-sign: {result.stderr.decode()[-800:]}")
    return out.read_bytes()


def lookaside_path(root: Path, repository: str, manifest_digest: str, number: int = 1) -> Path:
    """Where a lookaside signature of ``repository@digest`` lives under ``root``."""
    algo, hexpart = manifest_digest.split(":", 1)
    return root / f"{repository}@{algo}={hexpart}" / f"signature-{number}"


class LookasideServer:
    """``python -m http.server`` serving ``directory`` on 127.0.0.1 (stopped by pid)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
             "--directory", str(directory), str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=0.5, trust_env=False)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.close()
        raise RuntimeError("python -m http.server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)
        self.proc.wait(timeout=10)
