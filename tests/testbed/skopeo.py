"""skopeo as an independent oracle, run so that it touches nothing of the host.

skopeo reads /etc/containers (policy, registries.conf), the user's auth files, and as
root writes a blob-info cache under /var/lib/containers/cache. Each call here gets its
own policy, registries.conf, registries.d, auth file, HOME and XDG directories under a
temporary directory, and (as root) runs in a private mount namespace where a tmpfs
covers /var/lib/containers, so the cache it writes vanishes with it.

It also builds the layouts and archives the transport tests read, with the same tool
podman users make them with.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.testbed.shell import sh

HAVE_SKOPEO = shutil.which("skopeo") is not None
needs_skopeo = pytest.mark.skipif(not HAVE_SKOPEO, reason="needs skopeo (the oracle)")


class Skopeo:
    """Runs ``skopeo`` with every configuration path inside ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        for sub in ("home", "config", "data", "run", "registries.d", "tmp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "run").chmod(0o700)
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.registries_conf = workdir / "registries.conf"
        self.registries_conf.write_text("")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir / "home"),
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "XDG_DATA_HOME": str(workdir / "data"),
            "XDG_RUNTIME_DIR": str(workdir / "run"),
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "CONTAINERS_CONF": str(workdir / "containers.conf"),
            "REGISTRY_AUTH_FILE": str(workdir / "auth.json"),
        }

    def command(self, *args: str) -> str:
        """The shell command line for ``skopeo ARGS`` (wrapped in a mount namespace as root)."""
        line = shlex.join(["skopeo", "--policy", str(self.policy), "--registries.d",
                           str(self.workdir / "registries.d"), "--tmpdir",
                           str(self.workdir / "tmp"), *args])
        if os.geteuid() != 0:
            return line  # unprivileged: the cache goes to XDG_DATA_HOME, ours
        # The tmpfs must cover the cache or skopeo does not run at all.
        cover = ("if [ -d /var/lib/containers ]; then mount -t tmpfs podkit-test "
                 "/var/lib/containers; else mount -t tmpfs podkit-test /var/lib; fi || exit 99")
        return (f"unshare --mount --propagation private -- sh -c "
                f"{shlex.quote(cover + '; exec ' + line)}")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = sh(self.command(*args), env=self.env, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr.decode(errors='replace')}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args).stdout)

    def copy(self, source: str, dest: str, *extra: str) -> None:
        self.run("copy", "-q", "--src-tls-verify=false", *extra, source, dest)


def isolated_env(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with HOME, XDG dirs, registries.conf and the auth file under ``folder``, so
    a podkit tool reads none of the host's containers configuration from those."""
    for sub in ("home", "config", "data", "run"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "run").chmod(0o700)
    (folder / "registries.conf").write_text("")
    return {**env, "HOME": str(folder / "home"), "XDG_CONFIG_HOME": str(folder / "config"),
            "XDG_DATA_HOME": str(folder / "data"), "XDG_RUNTIME_DIR": str(folder / "run"),
            "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf"),
            "REGISTRY_AUTH_FILE": str(folder / "auth.json")}


@dataclass(frozen=True)
class Archives:
    """Layouts and archives skopeo made from the standard images."""

    layout: Path  # oci: "tag" = busybox:oci, "latest" = busybox:latest, "multi" = multiarch --all
    oci_archive: Path  # oci-archive: "tag" = busybox:oci
    docker_archive: Path  # docker-archive: busybox:tag = busybox:oci
    docker_archive_v2s2: Path  # docker-archive: busybox:latest = busybox:latest

    def refs(self) -> dict[str, str]:
        """transport -> a reference of busybox:oci through it."""
        return {"oci": f"oci:{self.layout}:tag",
                "oci-archive": f"oci-archive:{self.oci_archive}:tag",
                "docker-archive": f"docker-archive:{self.docker_archive}:busybox:tag"}


def make_archives(skopeo: Skopeo, images, folder: Path) -> Archives:
    """Copy the standard images out of the test registry into layouts and archives."""
    arch = Archives(folder / "layout", folder / "oci.tar", folder / "docker.tar",
                    folder / "docker-v2s2.tar")
    skopeo.copy(images.ref("busybox:oci"), f"oci:{arch.layout}:tag")
    skopeo.copy(images.ref("busybox:latest"), f"oci:{arch.layout}:latest")
    skopeo.copy(images.ref("busybox:multiarch"), f"oci:{arch.layout}:multi", "--all")
    skopeo.copy(images.ref("busybox:oci"), f"oci-archive:{arch.oci_archive}:tag")
    skopeo.copy(images.ref("busybox:oci"), f"docker-archive:{arch.docker_archive}:busybox:tag")
    skopeo.copy(images.ref("busybox:latest"),
                f"docker-archive:{arch.docker_archive_v2s2}:busybox:latest")
    return arch
