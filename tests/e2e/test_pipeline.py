"""The walking skeleton, as a user types it: registry -> pull -> import -> create ->
bundle -> run through real shell pipes, and the same through `pod run`."""

from __future__ import annotations

import shlex

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from tests.testbed import layers
from tests.testbed.shell import sh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.overlay, pytest.mark.runc,
              pytest.mark.registry]

ALL = SchemaSet(["podkit_image_pull", "podkit_storage", "podkit_runtime", "podkit_netsetup"])
SCRIPT = 'echo "out:$(cat /etc/hostname)"; echo err >&2; cat /etc/motd 2>/dev/null; exit 3'


def pipeline(ref: str, name: str, command: str) -> str:
    return (f"pod-image-pull --tls-verify=false {shlex.quote(ref)}"
            " | pod-storage import"
            f" | pod-storage create --name {name}"
            f" | pod-runtime bundle -- sh -c {shlex.quote(command)}"
            " | pod-netsetup attach --network none"
            " | pod-runtime run")


@pytest.mark.parametrize("image", ["busybox:latest", "busybox:oci", "busybox:zstd"])
def test_shell_pipeline_runs_a_container_from_the_registry(images, podkit_env, image):
    proc = sh(pipeline(images.ref(image), "pipe", SCRIPT), env=podkit_env)
    assert proc.returncode == 3, proc.stderr.decode()
    final = jsonio.loads(proc.stdout)
    assert final["state"]["exit_code"] == 3 and final["state"]["status"] == "exited"
    assert final["changed"] is True
    hostname = final["container"]["id"][:12]
    assert f"out:{hostname}".encode() in proc.stderr
    assert b"err" in proc.stderr
    # The final document holds everything done, and each section matches its schema.
    ALL.validate(final, "urn:podkit:image-pull:image")
    ALL.validate(final, "urn:podkit:storage:stored-image")
    ALL.validate(final, "urn:podkit:storage:container")
    ALL.validate(final, "urn:podkit:runtime:bundle")
    ALL.validate(final, "urn:podkit:netsetup:network")
    ALL.validate(final, "urn:podkit:runtime:state")
    motd = {"busybox:latest": "", "busybox:oci": layers.MOTD_TEXT,
            "busybox:zstd": layers.MOTD_TEXT_LAYER3}[image]  # the top layer's /etc/motd wins
    assert motd.encode() in proc.stderr


def test_the_rootfs_shows_every_layer_applied_in_order(images, podkit_env):
    """Whiteouts hide layer 1's files, opaque dirs hide their old entries, owners kept."""
    check = " && ".join([
        f"test ! -e {layers.ISSUE_PATH}",
        *(f"test ! -e {p}" for p in layers.OPAQUE_HIDDEN),
        f"test -e {layers.OPAQUE_KEPT}",
        f'test "$(cat {layers.HARDLINK_PATH})" = "$(cat {layers.HELLO_PATH})"',
        f'test "$(stat -c %u:%g:%a {layers.APP_DIR})" = 1000:1000:750',
        'test "$(stat -c %a /tmp)" = 1777',
        "echo all-good",
    ])
    proc = sh(pipeline(images.ref("busybox:oci"), "layers", check), env=podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"all-good" in proc.stderr


def test_pod_run_gives_the_same_as_the_pipeline(images, podkit_env):
    ref = images.ref("busybox:oci")
    piped = sh(pipeline(ref, "piped", SCRIPT), env=podkit_env)
    plain_ref = ref.removeprefix("docker://")
    direct = sh(f"pod run --rm --name direct --tls-verify=false {plain_ref} "
                f"sh -c {shlex.quote(SCRIPT)}", env=podkit_env)
    assert piped.returncode == direct.returncode == 3
    # Same container output; pod run puts stdout on stdout like podman.
    hostname = jsonio.loads(piped.stdout)["container"]["id"][:12]
    piped_lines = piped.stderr.decode().replace(hostname, "HOST").splitlines()
    assert direct.stdout.decode().splitlines()[0].startswith("out:")
    direct_out = [line if not line.startswith("out:") else "out:HOST"
                  for line in direct.stdout.decode().splitlines()]
    assert sorted(direct_out + direct.stderr.decode().splitlines()) == sorted(piped_lines)
    # --rm removed its container; the pipeline's stays until removed.
    listed = sh("pod-storage containers", env=podkit_env)
    names = [jsonio.loads(line)["name"] for line in listed.stdout.splitlines()]
    assert names == ["piped"]
    assert sh("pod rm piped", env=podkit_env).returncode == 0


def test_pulling_and_importing_again_changes_nothing(images, podkit_env):
    ref = shlex.quote(images.ref("busybox:oci"))
    first = sh(f"pod-image-pull --tls-verify=false {ref} | pod-storage import", env=podkit_env)
    again = sh(f"pod-image-pull --tls-verify=false {ref} | pod-storage import", env=podkit_env)
    assert first.returncode == again.returncode == 0, again.stderr
    assert jsonio.loads(first.stdout)["changed"] is True
    assert jsonio.loads(again.stdout)["changed"] is False


def test_pod_run_exit_codes_follow_podman(images, podkit_env):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    ok = sh(f"pod run --rm --tls-verify=false {ref} true", env=podkit_env)
    assert ok.returncode == 0, ok.stderr
    missing = sh(f"pod run --rm --tls-verify=false {ref} /no/such/command", env=podkit_env)
    assert missing.returncode == errors.EXIT_RUN_NOT_FOUND, missing.stderr
    noexec = sh(f"pod run --rm --tls-verify=false {ref} /etc", env=podkit_env)
    assert noexec.returncode == errors.EXIT_RUN_CANNOT_INVOKE, noexec.stderr
    own = sh("pod run --rm --tls-verify=false 127.0.0.1:1/nothing:here true", env=podkit_env)
    assert own.returncode == errors.EXIT_RUN_OWN_ERROR
    assert jsonio.loads(own.stderr.splitlines()[-1])["error"]["tool"] == "pod"
    # Nothing of the failed runs is left behind.
    assert sh("pod-storage containers", env=podkit_env).stdout == b""


def test_a_taken_name_is_a_conflict(images, podkit_env):
    ref = shlex.quote(images.ref("busybox:latest"))
    doc = sh(f"pod-image-pull --tls-verify=false {ref} | pod-storage import", env=podkit_env)
    assert doc.returncode == 0
    first = sh("pod-storage create --name twin", env=podkit_env, input=doc.stdout)
    second = sh("pod-storage create --name twin", env=podkit_env, input=doc.stdout)
    assert first.returncode == 0
    assert second.returncode == errors.Conflict.exit_code
    assert b"already in use" in second.stderr
    assert sh("pod-storage rm twin", env=podkit_env).returncode == 0


def test_network_none_has_only_loopback_and_host_shares_the_hosts(images, podkit_env):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    count = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"
    none = sh(f"pod run --rm --tls-verify=false {ref} sh -c {shlex.quote(count)}",
              env=podkit_env)
    assert none.returncode == 0, none.stderr
    assert none.stdout.split() == [b"lo"]
    host = sh(f"pod run --rm --network host --tls-verify=false {ref} sh -c {shlex.quote(count)}",
              env=podkit_env)
    with open("/proc/net/dev", "rb") as fh:
        ours = sorted(line.split(b":")[0].strip() for line in fh.read().splitlines()[2:])
    assert sorted(host.stdout.split()) == ours


def test_a_missing_cni_network_is_an_own_error(images, podkit_env):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = sh(f"pod run --rm --network nosuchnet --tls-verify=false {ref} true", env=podkit_env)
    assert proc.returncode == errors.EXIT_RUN_OWN_ERROR
    assert jsonio.loads(proc.stderr.splitlines()[-1])["error"]["type"] == "NotFound"
    assert sh("pod-storage containers", env=podkit_env).stdout == b""
