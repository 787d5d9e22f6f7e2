"""The pure half of mounts and process options: podman's -v/--mount/--tmpfs/--shm-size
syntax, the config.json entries they become, --env-file, --group-add and --init; plus
the in-rootfs path resolution (a plain directory tree, no root needed)."""

from __future__ import annotations

import os

import pytest

from podkit_common import errors
from podkit_runtime import BundleOptions, User, build_config
from podkit_runtime import _mounts as M
from podkit_runtime import _process_opts as P
from podkit_runtime import _rootfs_paths as R

CTR = {"id": "b" * 64, "name": "web", "rootfs": "/r/merged"}


@pytest.mark.parametrize(("spec", "kind", "source", "dest", "options"), [
    ("/h:/c", "bind", "/h", "/c", ("rw", "rprivate", "rbind")),
    ("/h:/c:ro", "bind", "/h", "/c", ("ro", "rprivate", "rbind")),
    ("/h:/c:ro,z,rshared,bind", "bind", "/h", "/c", ("ro", "rshared", "bind")),
    ("/h:/c:Z,nosuid,nodev,noexec", "bind", "/h", "/c",
     ("rw", "rprivate", "rbind", "nosuid", "nodev", "noexec")),
    ("./rel:/c", "bind", "./rel", "/c", ("rw", "rprivate", "rbind")),
    ("data:/c", "volume", "data", "/c", ("rw", "rprivate", "rbind")),
    ("data:/c/../d/:ro", "volume", "data", "/d", ("ro", "rprivate", "rbind")),
    ("/c", "volume", None, "/c", ("rw", "rprivate", "rbind")),
    ("/c:ro", "volume", None, "/c", ("ro", "rprivate", "rbind")),
])
def test_volume_syntax(spec, kind, source, dest, options):
    got = M.parse_volume(spec)
    assert (got.kind, got.source, got.destination, got.options) == (kind, source, dest, options)


@pytest.mark.parametrize(("spec", "exc", "text"), [
    ("/h:rel:ro", errors.UsageError, "must be an absolute path"),
    ("/h:/c:ro,rw", errors.UsageError, "cannot set both"),
    ("/h:/c:bogus", errors.UsageError, "invalid option type 'bogus'"),
    ("/h:/c:U", errors.NotImplementedYet, "the U option"),
    ("/h:/c:O", errors.NotImplementedYet, "overlay volumes"),
    ("/h:/c:shared,slave", errors.UsageError, "only one propagation"),
    ("bad name!:/c", errors.UsageError, "neither an absolute path nor a valid volume name"),
    ("a:b:c:d", errors.UsageError, "incorrect volume format"),
])
def test_bad_volumes_are_refused_clearly(spec, exc, text):
    with pytest.raises(exc, match=text):
        M.parse_volume(spec)


def test_mount_syntax_with_podmans_keys():
    bind = M.parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave,"
                         "relabel=shared")
    assert (bind.kind, bind.source, bind.destination) == ("bind", "/h", "/c")
    assert bind.options == ("ro", "rslave", "rbind")
    assert M.parse_mount("type=bind,src=/h,dst=/c,ro=false,bind-nonrecursive").options == (
        "rw", "rprivate", "bind")
    tmp = M.parse_mount("type=tmpfs,destination=/t,tmpfs-size=2m,tmpfs-mode=1770")
    assert tmp.kind == "tmpfs" and tmp.options[0] == "size=2m" and "mode=1770" in tmp.options
    vol = M.parse_mount("type=volume,src=v1,dst=/v,volume-nocopy")
    assert (vol.kind, vol.source, vol.copy_up) == ("volume", "v1", False)
    assert M.parse_mount("type=volume,dst=/anon").source is None


@pytest.mark.parametrize(("spec", "exc"), [
    ("src=/h,dst=/c", errors.UsageError),
    ("type=bind,dst=/c", errors.UsageError),
    ("type=bind,src=rel,dst=/c", errors.UsageError),
    ("type=tmpfs,src=/x,dst=/c", errors.UsageError),
    ("type=tmpfs,dst=/c,tmpfs-mode=9", errors.UsageError),
    ("type=tmpfs,dst=/c,tmpfs-size=12q", errors.UsageError),
    ("type=bind,src=/h,dst=/c,colour=red", errors.UsageError),
    ("type=devpts,dst=/c", errors.NotImplementedYet),
    ("type=bind,src=/h,dst=/c,U=true", errors.NotImplementedYet),
])
def test_bad_mounts(spec, exc):
    with pytest.raises(exc):
        M.parse_mount(spec)


def test_tmpfs_defaults_follow_podman_and_user_options_win():
    assert M.parse_tmpfs("/t").options == ("rw", "rprivate", "nosuid", "nodev", "tmpcopyup")
    opts = M.parse_tmpfs("/t:size=64m,mode=1777,noexec,ro,notmpcopyup").options
    assert opts[0] == "size=64m" and "mode=1777" in opts and "noexec" in opts
    assert "ro" in opts and "rw" not in opts and "tmpcopyup" not in opts
    assert M.parse_tmpfs("/t:size=1.5g").options[0] == f"size={3 << 29}"


def test_duplicate_destinations_are_refused():
    with pytest.raises(errors.UsageError, match="duplicate mount destination"):
        M.parse_all(["/a:/c"], [], ["/c"])


def test_image_volumes_not_covered_by_user_mounts():
    specs = M.image_volume_specs(["/data", "/cache", "rel"], ["/cache"], "bind")
    assert [(s.kind, s.destination, s.source) for s in specs] == [("volume", "/data", None)]
    assert M.image_volume_specs(["/data"], [], "tmpfs")[0].kind == "tmpfs"
    assert M.image_volume_specs(["/data"], [], "ignore") == []
    with pytest.raises(errors.UsageError):
        M.image_volume_specs([], [], "copy")


@pytest.mark.parametrize(("text", "size"), [
    ("64m", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("100", 100), ("2MB", 2 << 20)])
def test_sizes(text, size):
    assert M.parse_size(text, "--shm-size") == size


def test_config_carries_user_mounts_shm_size_and_init():
    user_mounts = [M.oci_mount(M.parse_volume("/h:/etc/hosts:ro"), "/h"),
                   M.oci_mount(M.parse_volume("v:/a/b/c"), "/vol/v/_data"),
                   M.oci_mount(M.parse_volume("v2:/a"), "/vol/v2/_data"),
                   M.oci_mount(M.parse_tmpfs("/dev/shm:size=1m"), None)]
    opts = BundleOptions(command=("sh",), init=True, init_path="/usr/bin/catatonit",
                         shm_size="128m")
    cfg = build_config({}, CTR, User(), opts, bundle_files={"/etc/hosts": "/b/hosts"},
                       cgroups_path="/p", user_mounts=user_mounts)
    mounts = cfg["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests.count("/etc/hosts") == 1 and dests.count("/dev/shm") == 1
    hosts = next(m for m in mounts if m["destination"] == "/etc/hosts")
    assert hosts["source"] == "/h" and "ro" in hosts["options"]
    assert dests.index("/a") < dests.index("/a/b/c")  # parents first
    shm = next(m for m in mounts if m["destination"] == "/dev/shm")
    assert shm["type"] == "tmpfs" and "size=1m" in shm["options"]  # the user's wins
    vol = next(m for m in mounts if m["destination"] == "/a")
    assert {"nosuid", "nodev", "rbind"} <= set(vol["options"])
    init = next(m for m in mounts if m["destination"] == "/run/podman-init")
    assert init == {"destination": "/run/podman-init", "type": "bind",
                    "source": "/usr/bin/catatonit", "options": ["bind", "ro", "rprivate"]}
    assert cfg["process"]["args"] == ["/run/podman-init", "--", "sh"]
    plain = build_config({}, CTR, User(), BundleOptions(command=("sh",), shm_size="128m"),
                         bundle_files={}, cgroups_path="/p")
    shm = next(m for m in plain["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={128 << 20}" in shm["options"]
    assert plain["process"]["args"] == ["sh"]
    with pytest.raises(errors.UsageError):
        build_config({}, CTR, User(), BundleOptions(command=("sh",), shm_size="lots"),
                     bundle_files={}, cgroups_path="/p")


def test_env_file_format_like_podman():
    text = "# c\n\n  A=1\nB= spaced = \"q\"\nHOSTVAR\nMISSING\nEMPTY=\n"
    got = P.parse_env_file(text, {"HOSTVAR": "h"}, source="f")
    assert got == ["A=1", 'B= spaced = "q"', "HOSTVAR=h", "EMPTY="]
    with pytest.raises(errors.InvalidDocument, match="contains whitespaces"):
        P.parse_env_file("BAD KEY=1\n", {}, source="f")
    with pytest.raises(errors.InvalidDocument, match="missing variable name"):
        P.parse_env_file("=1\n", {}, source="f")


def test_env_files_read_in_order_and_missing_is_not_found(tmp_path):
    (tmp_path / "a").write_text("X=1\nY=1\n")
    (tmp_path / "b").write_text("Y=2\n")
    assert P.read_env_files([str(tmp_path / "a"), str(tmp_path / "b")], {}) == [
        "X=1", "Y=1", "Y=2"]
    with pytest.raises(errors.NotFound):
        P.read_env_files([str(tmp_path / "nope")], {})


def test_env_file_then_env_in_the_config():
    opts = BundleOptions(command=("sh",), env=("Y=3",))
    from podkit_common.records import replace

    merged = replace(opts, env=("X=1", "Y=2", *opts.env))
    env = build_config({"Env": ["X=0"]}, CTR, User(), merged, bundle_files={},
                       cgroups_path="/p")["process"]["env"]
    assert "X=1" in env and "Y=3" in env and "Y=2" not in env


def test_group_add():
    rows = [["root", "x", "0", ""], ["staff", "x", "50", "app"]]
    assert P.group_ids(["staff", "7", "staff", "root"], rows) == [50, 7, 0]
    with pytest.raises(errors.NotFound, match="unable to find group nope"):
        P.group_ids(["nope"], rows)
    with pytest.raises(errors.NotImplementedYet):
        P.group_ids(["keep-groups"], rows)


def test_find_init(tmp_path):
    fake = tmp_path / "catatonit"
    fake.write_bytes(b"#!/bin/sh\n")
    fake.chmod(0o755)
    assert P.find_init(str(fake)) == str(fake)
    fake.chmod(0o644)
    with pytest.raises(errors.NotFound, match="not found or not executable"):
        P.find_init(str(fake))


@pytest.fixture
def tree(tmp_path):
    """A rootfs with symlinks that point out of it, and a sentinel outside."""
    root = tmp_path / "rootfs"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "file").write_text("x")
    os.symlink(str(outside), root / "abs")                 # absolute, out of the rootfs
    os.symlink("../../../../" + str(outside), root / "rel")  # relative, climbing out
    os.symlink("real", root / "inside")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("/etc/../../../../..", root / "up")
    return root, outside


@pytest.mark.parametrize(("path", "expected"), [
    ("/abs", "OUT"), ("/abs/x/y", "OUT/x/y"), ("/rel/z", "OUT/z"), ("/inside/a", "/real/a"),
    ("/../../..", "/"), ("/up/q", "/q"), ("/real/./../real", "/real"),
])
def test_paths_resolve_inside_the_rootfs(tree, path, expected):
    root, outside = tree
    got = R.ensure(str(root), path, "dir")
    expected = expected.replace("OUT", str(outside))  # the host path, now inside the rootfs
    assert got.path == expected
    assert got.host_path == str(root) + (expected if expected != "/" else "")
    assert os.path.isdir(got.host_path) and not os.path.islink(got.host_path)
    assert os.listdir(outside) == []


def test_resolution_errors_and_files(tree):
    root, outside = tree
    with pytest.raises(errors.UnsafeContent, match="too many levels"):
        R.ensure(str(root), "/loop1/x", "dir")
    with pytest.raises(errors.InvalidDocument, match="is not a directory"):
        R.ensure(str(root), "/file/x", "dir")
    made = R.ensure(str(root), "/abs/some/file.txt", "file", owner=(1000, 1000))
    assert os.path.isfile(made.host_path) and os.stat(made.host_path).st_uid == 1000
    assert R.resolve(str(root), "/missing/../x") == R.Resolved("/x", str(root / "x"),
                                                              False, False)
    assert os.listdir(outside) == []


def test_symlinked_kernel_paths_are_refused(tree):
    root, outside = tree
    R.refuse_symlinked_kernel_paths(str(root))  # no /dev at all: fine
    os.symlink(str(outside), root / "dev")
    with pytest.raises(errors.UnsafeContent, match="/dev is a symbolic link"):
        R.refuse_symlinked_kernel_paths(str(root))
    os.unlink(root / "dev")
    (root / "dev").mkdir()
    os.symlink(str(outside), root / "dev" / "shm")  # hidden under the /dev tmpfs: fine
    R.refuse_symlinked_kernel_paths(str(root))
    os.symlink("/etc/../..", root / "proc")
    with pytest.raises(errors.UnsafeContent, match="/proc is a symbolic link"):
        R.refuse_symlinked_kernel_paths(str(root))
