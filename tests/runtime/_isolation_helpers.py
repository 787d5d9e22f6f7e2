"""Helpers for the isolation tests: pipelines with bundle options, /proc status fields."""

from __future__ import annotations

import shlex
from pathlib import Path

from podkit_common import jsonio
from tests.testbed.shell import sh

#: Debian's podman 4.3.1 default_capabilities (/usr/share/containers/containers.conf).
DEBIAN_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
               "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def containers_conf(tmp_path: Path, caps: tuple[str, ...] = DEBIAN_CAPS) -> Path:
    """A containers.conf of our own (tests never read the host's /etc/containers)."""
    path = tmp_path / "containers.conf"
    listed = ", ".join(f'"{c}"' for c in caps)
    path.write_text(f"[containers]\ndefault_capabilities = [{listed}]\n")
    return path


def env_with_conf(podkit_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The env with our own containers.conf, and an empty hooks dir that ``bundle`` and
    ``run`` pass unless the test gives its own (the host's hooks.d are never read)."""
    empty = tmp_path / "no-hooks.d"
    empty.mkdir(exist_ok=True)
    return {**podkit_env, "CONTAINERS_CONF": str(containers_conf(tmp_path)),
            "TEST_EMPTY_HOOKS_DIR": str(empty)}


def _with_hooks_dir(opts: list[str], env: dict[str, str]) -> list[str]:
    if "--hooks-dir" in opts or "TEST_EMPTY_HOOKS_DIR" not in env:
        return opts
    return ["--hooks-dir", env["TEST_EMPTY_HOOKS_DIR"], *opts]


def created(ref: str, env: dict[str, str], name: str = "ctr") -> bytes:
    """The document after pull | import | create (stdout of the pipeline)."""
    return create(imported(ref, env), env, name)


def imported(ref: str, env: dict[str, str]) -> bytes:
    """The document after pull | import."""
    proc = sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import",
              env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def create(image_doc: bytes, env: dict[str, str], name: str) -> bytes:
    """A new container from an imported image's document."""
    proc = sh(f"pod-storage create --name {name}", env=env, input=image_doc)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def bundle(doc: bytes, env: dict[str, str], opts: list[str], script: str = "true"):
    """pod-runtime bundle OPTS -- sh -c SCRIPT on ``doc``."""
    argv = " ".join(shlex.quote(o) for o in _with_hooks_dir(opts, env))
    return sh(f"pod-runtime bundle {argv} -- sh -c {shlex.quote(script)}", env=env, input=doc)


def run(doc: bytes, env: dict[str, str], opts: list[str], script: str):
    """bundle | netsetup none | run; the container's output is on stderr."""
    argv = " ".join(shlex.quote(o) for o in _with_hooks_dir(opts, env))
    return sh(f"pod-runtime bundle {argv} -- sh -c {shlex.quote(script)}"
              " | pod-netsetup attach --network none | pod-runtime run", env=env, input=doc)


def status_fields(text: str) -> dict[str, str]:
    """`Key:\tvalue` lines of /proc/self/status as printed inside the container."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp",
                           "NoNewPrivs"):
            out[key] = value.strip()
    return out


def final(proc) -> dict:
    return jsonio.loads(proc.stdout)
