"""The pure config builder: podman's rules for args, env, user, mounts."""

from __future__ import annotations

import os

import pytest

from podkit_common import errors
from podkit_runtime import BundleOptions, User, build_config, process_args
from podkit_runtime._spec import with_network
from podkit_runtime._users import read_rootfs_file, resolve_user

IMAGE = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/srv"}
CTR = {"id": "a" * 64, "name": "web", "rootfs": "/r/merged", "image_name": "x/busybox:latest"}


@pytest.mark.parametrize(("image", "opts", "args"), [
    ({"Cmd": ["sh"]}, BundleOptions(), ["sh"]),
    ({"Cmd": ["sh"]}, BundleOptions(command=("echo", "hi")), ["echo", "hi"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, BundleOptions(), ["/ep", "a"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, BundleOptions(command=("b",)), ["/ep", "b"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, BundleOptions(entrypoint=("/x",)), ["/x"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, BundleOptions(entrypoint=(), command=("ls",)),
     ["ls"]),
])
def test_args_follow_podman_override_rules(image, opts, args):
    assert process_args(image, opts) == args


def test_no_command_at_all_is_a_usage_error():
    with pytest.raises(errors.UsageError):
        process_args({}, BundleOptions())


def test_config_env_cwd_hostname_and_mounts():
    cfg = build_config(IMAGE, CTR, User(uid=0, gid=0, home="/root"),
                       BundleOptions(env=("A=2", "B=3")),
                       bundle_files={"/etc/hosts": "/b/hosts"}, cgroups_path="/podkit/x")
    env = cfg["process"]["env"]
    assert env[:2] == ["PATH=/bin", "A=2"]
    assert "B=3" in env and f"HOSTNAME={'a' * 12}" in env and "HOME=/root" in env
    assert cfg["process"]["cwd"] == "/srv"
    assert cfg["hostname"] == "a" * 12
    dests = [m["destination"] for m in cfg["mounts"]]
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/hosts"} <= set(dests)
    assert cfg["root"] == {"path": "/r/merged", "readonly": False}
    assert "CAP_SYS_ADMIN" not in cfg["process"]["capabilities"]["bounding"]


def test_image_without_path_gets_the_default_and_tty_gets_term():
    cfg = build_config({"Cmd": ["sh"]}, CTR, User(), BundleOptions(tty=True),
                       bundle_files={}, cgroups_path="/p")
    env = cfg["process"]["env"]
    assert any(e.startswith("PATH=/usr/local/sbin") for e in env)
    assert "TERM=xterm" in env and cfg["process"]["terminal"] is True


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\n")
    return tmp_path


@pytest.mark.parametrize(("spec", "uid", "gid", "extra", "home"), [
    (None, 0, 0, (), "/root"),
    ("app", 1000, 1000, (50,), "/home/app"),
    ("1000", 1000, 1000, (50,), "/home/app"),
    ("app:staff", 1000, 50, (), "/home/app"),
    ("4242", 4242, 0, (), "/"),
    ("4242:7", 4242, 7, (), "/"),
])
def test_user_resolution(rootfs, spec, uid, gid, extra, home):
    assert resolve_user(rootfs, spec) == User(uid=uid, gid=gid, additional_gids=extra, home=home)


def test_unknown_user_name_is_not_found(rootfs):
    with pytest.raises(errors.NotFound, match="unable to find user nobody2"):
        resolve_user(rootfs, "nobody2")


def test_passwd_symlinked_out_of_the_rootfs_is_not_followed(tmp_path):
    outside = tmp_path / "host-passwd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink(outside, root / "etc/passwd")
    assert read_rootfs_file(root, "etc/passwd") == b""
    with pytest.raises(errors.NotFound):
        resolve_user(root, "evil")


def test_passwd_that_is_a_device_does_not_hang(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink("/dev/zero", root / "etc/passwd")
    assert resolve_user(root, None).uid == 0
    (root / "etc/passwd").unlink()
    if os.geteuid() == 0:
        os.mknod(root / "etc/passwd", 0o644 | 0o020000, os.makedev(1, 5))  # char dev = zero
        assert read_rootfs_file(root, "etc/passwd") == b""


@pytest.mark.parametrize(("network", "expected"), [
    (None, [{"type": "network"}]),
    ({"mode": "none", "netns": None}, [{"type": "network"}]),
    ({"mode": "host", "netns": None}, []),
    ({"mode": "bridge", "netns": "/run/netns/x"}, [{"type": "network", "path": "/run/netns/x"}]),
])
def test_network_namespace_follows_the_network_section(network, expected):
    cfg = build_config(IMAGE, CTR, User(), BundleOptions(), bundle_files={}, cgroups_path="/p")
    out = with_network(cfg, network)
    assert [ns for ns in out["linux"]["namespaces"] if ns["type"] == "network"] == expected
    assert {ns["type"] for ns in out["linux"]["namespaces"]} >= {"pid", "ipc", "uts", "mount"}
