"""Credentials are never written down: not in the store, the runroot, the event log,
logs, documents or error messages. A registry that wants a password (Debian's
docker-registry, htpasswd, TLS with a test CA: tests/image_pull/authbed.py) is pulled
from with a wrong password, then the right one (--creds and --authfile), a container is
run from the image; then every byte under both roots and every output is searched for
the passwords in clear and in base64."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.image_pull.authbed import (
    auth_json,
    htpasswd_config,
    isolated_env,
    make_pki,
    push_client,
    started,
    tls_config,
    write_htpasswd,
)
from tests.pod.test_cli_containers import pod
from tests.testbed.push import push
from tests.testbed.registry import LocalRegistry
from tests.testbed.standard import STANDARD

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

USER, GOOD, WRONG = "carol", "Good-pw-4c1e9a7d", "Wrong-pw-b83f20e6"


def secrets() -> list[bytes]:
    out = []
    for pw in (GOOD, WRONG):
        for text in (pw, f"{USER}:{pw}"):
            raw = text.encode()
            out += [raw, base64.b64encode(raw).rstrip(b"="),
                    base64.urlsafe_b64encode(raw).rstrip(b"=")]
    return out


def files_with_secrets(*bases: Path) -> list[str]:
    hits = []
    for base in bases:
        for top, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(top, d))]
            for name in files:
                path = os.path.join(top, name)
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue  # sockets and fifos (a read would block), links
                data = Path(path).read_bytes()
                hits += [f"{path}: {s!r}" for s in secrets() if s in data]
    return hits


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    htpasswd = write_htpasswd(tmp_path_factory.mktemp("htpasswd") / "htpasswd",
                              {USER: GOOD})
    reg = LocalRegistry(extra_config={**tls_config(pki), **htpasswd_config(htpasswd)})
    with started(reg), push_client(pki, auth=(USER, GOOD)) as client:
        push(f"https://{reg.url}", "busybox", "latest", STANDARD["busybox:latest"](),
             client=client)
        yield reg.url, pki


def test_passwords_never_reach_disk_events_logs_or_messages(auth_registry, podkit_env,
                                                             tmp_path: Path) -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")
    url, pki = auth_registry
    env = {**isolated_env(tmp_path / "home-env"), **{k: v for k, v in podkit_env.items()
                                                     if k.startswith("PODKIT_")},
           "PATH": podkit_env["PATH"]}
    certs = str(pki.cert_dir(tmp_path / "certs"))
    ref = f"{url}/busybox:latest"
    outputs: list[str] = []

    def run(*args: str, code: int | None = 0):
        result = pod(env, *args)
        outputs.extend([result.stdout, result.stderr])
        if code is not None:
            assert result.returncode == code, (args, result.returncode, result.stderr)
        return result

    wrong = run("pull", "--cert-dir", certs, "--creds", f"{USER}:{WRONG}", ref, code=None)
    assert wrong.returncode != 0 and "error" in wrong.stderr  # refused, and said so
    run("pull", "--cert-dir", certs, "--creds", f"{USER}:{GOOD}", ref)
    authfile = tmp_path / "auth.json"  # outside the roots: the user's own file
    authfile.write_text(auth_json({url: (USER, GOOD)}))
    run("pull", "--cert-dir", certs, "--authfile", str(authfile), ref)
    bad_file = tmp_path / "bad-auth.json"
    bad_file.write_text(auth_json({url: (USER, WRONG)}))
    run("pull", "--cert-dir", certs, "--authfile", str(bad_file), f"{url}/busybox:nope",
        code=None)
    run("run", "--rm", ref, "true")
    run("run", "-d", "--name", "kept", ref, "sleep", "1000")
    try:
        run("image", "inspect", ref)
        run("inspect", "kept")
        run("info", "--format", "json")
        events = pod(env, "events", "--stream=false", "--format", "json")
        outputs.extend([events.stdout, events.stderr])
        # the pipeline stage on its own, with its document on stdout
        stage = subprocess_run(env, ["pod-image-pull", "--progress=none", "--cert-dir",
                                     certs, "--creds", f"{USER}:{GOOD}", f"docker://{ref}"])
        outputs.extend(stage)
        root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
        assert (root / "images").is_dir()  # the search below searched a real store
        assert files_with_secrets(root, runroot) == []
        said = "\n".join(outputs).encode()
        assert [s for s in secrets() if s in said] == []
    finally:
        pod(env, "rm", "-f", "-t", "0", "kept")


def subprocess_run(env: dict[str, str], argv: list[str]) -> list[str]:
    import subprocess

    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["image"]
    return [result.stdout, result.stderr]
