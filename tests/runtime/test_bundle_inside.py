"""Real containers from `pod-runtime bundle` options, checked from inside: the user and
groups, env, cwd, hostname, mounts and their ro flags, volumes, --read-only, --init, and
images that try to steer mounts out of their rootfs.

Each test runs the installed executables through bash like a user:
pull | import | create | bundle OPTIONS -- sh -c SCRIPT | netsetup attach --network none | run
(the container's output arrives on `pod-runtime run`'s stderr).
"""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from tests.testbed import layers
from tests.testbed.images import build_image
from tests.testbed.push import push
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_runtime"])
OCI_SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


@functools.cache
def oci_config_validator():  # type: ignore[no-untyped-def]
    """The official OCI runtime-spec config schema (Debian's
    golang-github-opencontainers-specs-dev), its relative $refs served locally."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    if not (OCI_SCHEMA_DIR / "config-schema.json").is_file():
        pytest.skip("needs the OCI runtime-spec schema (golang-github-opencontainers-specs-dev)")
    registry = Registry().with_resources(
        (f.name, Resource.from_contents(jsonio.loads(f.read_bytes()), default_specification=DRAFT4))
        for f in OCI_SCHEMA_DIR.glob("*.json"))
    schema = jsonio.loads((OCI_SCHEMA_DIR / "config-schema.json").read_bytes())
    return jsonschema.Draft4Validator(schema, registry=registry)


class Box:
    """One image pulled and imported into the test's roots; containers made from it."""

    def __init__(self, ref: str, env: dict[str, str]) -> None:
        self.env = env
        proc = sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import",
                  env=env)
        assert proc.returncode == 0, proc.stderr.decode()
        self.image_doc = proc.stdout
        self.count = 0

    def container(self) -> bytes:
        self.count += 1
        proc = sh(f"pod-storage create --name c{self.count}", env=self.env,
                  input=self.image_doc)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    def bundle(self, opts: str, script: str = "true"):  # type: ignore[no-untyped-def]
        return sh(f"pod-runtime bundle {opts} -- sh -c {shlex.quote(script)}", env=self.env,
                  input=self.container())

    def run(self, opts: str, script: str) -> tuple[dict, str]:
        """Bundle and run; the final document and what the container printed."""
        made = self.bundle(opts, script)
        assert made.returncode == 0, made.stderr.decode()
        bundle_doc = jsonio.loads(made.stdout)
        SCHEMAS.validate(bundle_doc, "urn:podkit:runtime:bundle")
        config = jsonio.loads(Path(bundle_doc["bundle"]["config_path"]).read_bytes())
        assert [e.message for e in oci_config_validator().iter_errors(config)] == []
        proc = sh("pod-netsetup attach --network none | pod-runtime run", env=self.env,
                  input=made.stdout)
        assert proc.returncode == 0, proc.stderr.decode()
        return jsonio.loads(proc.stdout), proc.stderr.decode()

    def bundles(self) -> list[str]:
        d = Path(self.env["PODKIT_RUNROOT"]) / "bundles"
        return sorted(os.listdir(d)) if d.is_dir() else []


@pytest.fixture
def box(images, podkit_env) -> Box:
    return Box(images.ref("busybox:oci"), podkit_env)


def _mountinfo(out: str) -> dict[str, list[str]]:
    """mount point -> [per-mount options, fs type, super options] from mountinfo lines."""
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        sep = fields.index("-")
        found[fields[4]] = [fields[5], fields[sep + 1], fields[sep + 3]]
    return found


def test_user_groups_and_group_add(box):
    _, out = box.run("--user app --group-add 4242 --group-add root",
                     'echo "id:$(id -u):$(id -g):$(id -G)"')
    line = next(x for x in out.splitlines() if x.startswith("id:"))
    uid, gid, groups = line.split(":")[1:]
    assert (uid, gid) == ("1000", "1000")
    assert {"50", "4242", "0"} <= set(groups.split())  # staff from /etc/group, then added


def test_user_with_group_and_numeric_user(box):
    _, out = box.run("--user 1234:staff", 'echo "id:$(id -u):$(id -g)"; echo "home:$HOME"')
    assert "id:1234:50" in out and "home:/" in out


@pytest.mark.parametrize(("opts", "message"), [
    ("--user nosuch", "unable to find user nosuch: no matching entries in passwd file"),
    ("--user app:nogroup", "unable to find group nogroup: no matching entries in group file"),
    ("--group-add nogroup", "unable to find group nogroup: no matching entries in group file"),
    ("-v /no/such/dir:/data", "statfs /no/such/dir: no such file or directory"),
    ("-v fresh:/fresh -v /anon -v /no/such/dir:/data",
     "statfs /no/such/dir: no such file or directory"),
])
def test_unknown_users_groups_and_sources_leave_nothing(box, opts, message):
    proc = box.bundle(opts)
    assert proc.returncode == errors.NotFound.exit_code, proc.stderr
    err = jsonio.loads(proc.stderr.splitlines()[-1])["error"]
    assert err["message"] == message
    assert box.bundles() == []
    assert sh("pod-runtime volume ls", env=box.env).stdout == b""


def test_env_file_env_hostname_and_workdir(box, tmp_path):
    env_file = tmp_path / "vars.env"
    env_file.write_text("# comment\n\nFROM_FILE=a b \"c\"\nOVERRIDDEN=file\nFROM_HOST\n"
                        "NOT_ON_HOST\n")
    box.env["FROM_HOST"] = "hostvalue"
    box.env.pop("NOT_ON_HOST", None)
    script = ('echo "cwd:$(pwd)"; echo "own:$(stat -c %u:%g .)"; echo "hn:$(hostname)";'
              ' env | sort')
    _, out = box.run(f"--env-file {env_file} -e OVERRIDDEN=flag --hostname web1 "
                     "--workdir /srv/new/dir --user app", script)
    lines = out.splitlines()
    assert 'FROM_FILE=a b "c"' in lines and "OVERRIDDEN=flag" in lines
    assert "FROM_HOST=hostvalue" in lines and not any(x.startswith("NOT_ON_HOST") for x in lines)
    assert "HOSTNAME=web1" in lines and "hn:web1" in lines
    assert "cwd:/srv/new/dir" in lines and "own:1000:1000" in lines


def test_bind_tmpfs_and_mount_options_are_what_mountinfo_shows(box, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("from the host\n")
    single = tmp_path / "single.txt"
    single.write_text("one file\n")
    opts = (f"-v {src}:/ro-data:ro,z -v {src}:/rw-data:rw,Z,rshared "
            f"--mount type=bind,src={single},dst=/etc/single.txt,readonly "
            "--tmpfs /scratch:size=1m,mode=1770 --mount type=tmpfs,dst=/t2,tmpfs-size=2m "
            "--shm-size 3m")
    script = ("cat /proc/self/mountinfo; cat /ro-data/hello /etc/single.txt;"
              " touch /ro-data/x 2>/dev/null && echo ro-writable;"
              " touch /rw-data/from-ctr && echo rw-ok; touch /scratch/f && echo tmpfs-ok")
    _, out = box.run(opts, script)
    mi = _mountinfo(out)
    assert mi["/ro-data"][0].startswith("ro") and mi["/rw-data"][0].startswith("rw")
    assert mi["/etc/single.txt"][0].startswith("ro")
    assert mi["/scratch"][1] == "tmpfs" and "size=1024k" in mi["/scratch"][2]
    assert "mode=1770" in mi["/scratch"][2] and "nosuid" in mi["/scratch"][0]
    assert "size=2048k" in mi["/t2"][2]
    assert "size=3072k" in mi["/dev/shm"][2]
    assert "from the host" in out and "one file" in out
    assert "ro-writable" not in out and "rw-ok" in out and "tmpfs-ok" in out
    assert (src / "from-ctr").exists()


def test_named_volume_survives_and_rm_refuses_while_used(box):
    first, _ = box.run("-v keep:/vol", "echo kept > /vol/file")
    second, out = box.run("-v keep:/vol:ro", "cat /vol/file; touch /vol/x || echo refused")
    assert "kept" in out and "refused" in out
    assert first["bundle"]["volumes"] == second["bundle"]["volumes"] == ["keep"]
    inspect = sh("pod-runtime volume inspect keep", env=box.env)
    rec = jsonio.loads(inspect.stdout)["volume"]
    SCHEMAS.validate(jsonio.loads(inspect.stdout), "urn:podkit:runtime:volume-result")
    assert sorted(rec["users"]) == sorted([first["container"]["id"], second["container"]["id"]])
    refused = sh("pod-runtime volume rm keep", env=box.env)
    assert refused.returncode == errors.Conflict.exit_code
    assert b"volume is being used" in refused.stderr
    for doc in (first, second):
        assert sh(f"pod rm {doc['container']['id']}", env=box.env).returncode == 0
    assert jsonio.loads(sh("pod-runtime volume inspect keep", env=box.env).stdout)[
        "volume"]["users"] == []
    assert Path(rec["Mountpoint"], "file").read_text() == "kept\n"
    assert sh("pod-runtime volume rm keep", env=box.env).returncode == 0


def test_read_only_rootfs_refuses_writes_but_tmpfs_and_volumes_take_them(box):
    script = ("touch /rootfile 2>/dev/null && echo root-writable;"
              " touch /scratch/a && echo tmpfs-ok; touch /vol/a && echo vol-ok;"
              " grep ' / / ' /proc/self/mountinfo")
    _, out = box.run("--read-only --tmpfs /scratch -v rw:/vol", script)
    assert "root-writable" not in out
    assert "tmpfs-ok" in out and "vol-ok" in out
    assert " / / ro" in out


def test_init_makes_catatonit_pid_1(box):
    script = ("tr '\\0' ' ' < /proc/1/cmdline; echo; echo \"me:$$\";"
              " grep ' /run/podman-init ' /proc/self/mountinfo")
    made, out = box.run("--init", script)
    assert made["bundle"]["args"][:2] == ["/run/podman-init", "--"]
    assert any(x.startswith("/run/podman-init -- sh -c") for x in out.splitlines())
    assert "me:1" not in out  # the shell is not pid 1 any more
    assert " /run/podman-init ro," in out


def test_init_without_catatonit_is_a_clear_error(box, tmp_path):
    proc = box.bundle(f"--init --init-path {tmp_path}/no-catatonit")
    assert proc.returncode == errors.NotFound.exit_code
    assert b"container-init binary" in proc.stderr
    assert box.bundles() == []


@pytest.fixture
def custom(registry, podkit_env):
    """Push an image built from busybox layers plus one extra layer; return a Box."""
    def make(tag: str, extra: layers.LayerBuilder | None = None, **config) -> Box:
        tars = [layers.base_layer_tar(), layers.second_layer_tar()]
        if extra is not None:
            tars.append(extra.tar())
        img = build_image(tars, config=config or None)
        push(registry.url, "bundle-inside", tag, img)
        return Box(f"docker://{registry.url}/bundle-inside:{tag}", podkit_env)
    return make


def test_image_volumes_get_anonymous_volumes_copied_up(custom):
    box = custom("vol", Volumes={"/data": {}})
    made, out = box.run("", "ls /data; echo new > /data/new; grep ' /data ' /proc/self/mountinfo")
    assert "hello.txt" in out or os.path.basename(layers.HELLO_PATH) in out
    names = made["bundle"]["volumes"]
    assert len(names) == 1 and len(names[0]) == 64
    rec = jsonio.loads(sh(f"pod-runtime volume inspect {names[0]}", env=box.env).stdout)["volume"]
    assert rec["Anonymous"] is True and rec["NeedsCopyUp"] is False
    data = Path(rec["Mountpoint"])
    assert (data / "new").read_text() == "new\n"
    assert (data / os.path.basename(layers.HELLO_PATH)).read_text() == layers.HELLO_TEXT
    # --image-volume ignore: no volume; the image's own /data is used.
    again, _ = box.run("--image-volume ignore", "true")
    assert again["bundle"]["volumes"] == []
    # podman's `rm --volumes`: the anonymous volume goes with its container.
    assert sh(f"pod rm --volumes {made['container']['id']}", env=box.env).returncode == 0
    assert sh(f"pod-runtime volume exists {names[0]}", env=box.env).returncode == 1


def test_a_symlinked_dev_cannot_steer_mounts_onto_the_host(custom, tmp_path):
    sentinel = tmp_path / "sentinel-dev"
    sentinel.mkdir()
    extra = layers.LayerBuilder().symlink("/dev", str(sentinel))
    box = custom("devlink", extra)
    proc = box.bundle("")
    assert proc.returncode == errors.UnsafeContent.exit_code, proc.stderr
    assert b"/dev is a symbolic link" in proc.stderr
    assert box.bundles() == []
    assert os.listdir(sentinel) == []


def test_symlinks_below_dev_and_proc_are_hidden_by_the_kernel_mounts(custom, tmp_path):
    """/dev/shm -> host dir in a real /dev: the fresh /dev tmpfs hides it, so it runs
    and nothing reaches the host directory."""
    sentinel = tmp_path / "sentinel-shm"
    sentinel.mkdir()
    extra = (layers.LayerBuilder().symlink("/dev/shm", str(sentinel))
             .symlink("/proc/self", str(sentinel)))
    box = custom("shmlink", extra)
    _, out = box.run("", "echo x > /dev/shm/f && echo wrote; test -L /dev/shm || echo dir")
    assert "wrote" in out and "dir" in out
    assert os.listdir(sentinel) == []


def test_a_symlinked_mount_destination_stays_inside_the_rootfs(custom, tmp_path):
    """/escape -> /abs/host/dir and /up -> ../../../abs/host/dir2: both resolve inside
    the rootfs (cf. runc CVE-2021-30465); the host directories stay untouched."""
    absolute, relative = tmp_path / "sentinel-abs", tmp_path / "sentinel-rel"
    for d in (absolute, relative):
        d.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("mounted\n")
    extra = (layers.LayerBuilder().symlink("/escape", str(absolute))
             .symlink("/up", "../../../../../../.." + str(relative)))
    box = custom("destlink", extra)
    made, out = box.run(f"-v {src}:/escape -v {src}:/up/sub:ro",
                        "cat /escape/marker /up/sub/marker")
    assert out.count("mounted") == 2
    config = jsonio.loads(Path(made["bundle"]["config_path"]).read_bytes())
    dests = [m["destination"] for m in config["mounts"]]
    assert str(absolute) in dests and f"{relative}/sub" in dests
    assert os.listdir(absolute) == [] and os.listdir(relative) == []


def test_bundling_a_container_again_replaces_its_bundle(box):
    doc = box.container()
    first = sh("pod-runtime bundle -v /anon -- true", env=box.env, input=doc)
    assert first.returncode == 0, first.stderr
    anon = jsonio.loads(first.stdout)["bundle"]["volumes"]
    second = sh("pod-runtime bundle -v kept:/data -- true", env=box.env, input=doc)
    assert second.returncode == 0, second.stderr
    assert jsonio.loads(second.stdout)["bundle"]["volumes"] == ["kept"]
    assert box.bundles() == [jsonio.loads(doc)["container"]["id"]]
    # The first bundle's anonymous volume went with it; a failed third leaves the second.
    assert sh(f"pod-runtime volume exists {anon[0]}", env=box.env).returncode == 1
    third = sh("pod-runtime bundle --user nosuch -- true", env=box.env, input=doc)
    assert third.returncode == errors.NotFound.exit_code
    config = jsonio.loads(Path(jsonio.loads(second.stdout)["bundle"]["config_path"]).read_bytes())
    assert "/data" in [m["destination"] for m in config["mounts"]]


def test_pod_run_takes_the_same_options(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    (tmp_path / "e.env").write_text("GREETING=hi\n")
    script = ('echo "$GREETING $(id -u) $(id -G)"; tr "\\0" " " < /proc/1/cmdline; echo;'
              " echo x > /named/f; echo y > /anon/f; grep -c ' /scratch ' /proc/self/mountinfo")
    proc = sh(f"pod run --rm --tls-verify=false --env-file {tmp_path}/e.env --user app "
              "--group-add 4242 --init -v named:/named -v /anon --tmpfs /scratch "
              f"--read-only {ref} sh -c {shlex.quote(script)}", env=podkit_env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "hi 1000 " in out and "4242" in out
    assert "/run/podman-init -- sh -c" in out and out.splitlines()[-1] == "1"
    # --rm took the anonymous volume with it and released the named one.
    listed = sh("pod-runtime volume ls", env=podkit_env).stdout
    left = [jsonio.loads(x) for x in listed.splitlines()]
    assert [(v["Name"], v["users"]) for v in left] == [("named", [])]
    assert Path(left[0]["Mountpoint"], "f").read_text() == "x\n"


def test_process_and_mounts_agree_with_podman(box, podman, images, tmp_path):
    """The same options through `podman create` + `podman init` and through our bundle:
    process args, user, groups, env and every user mount (type, options, bind source)
    agree. Deliberate differences: volume sources live under each tool's own root, and
    our env says container=podkit."""
    ref = images.ref("busybox:oci").removeprefix("docker://")
    podman.pull(ref)
    src = tmp_path / "src"
    src.mkdir()
    single = tmp_path / "single"
    single.write_text("x")
    env_file = tmp_path / "e.env"
    env_file.write_text("FROM_FILE=1\n# comment\nB=2\n")
    opts = ["--init", "--user", "app", "--group-add", "4242", "--env-file", str(env_file),
            "-e", "B=3", "--hostname", "same",
            "-v", f"{src}:/ro-data:ro,z", "-v", f"{src}:/rw:rshared,nosuid", "-v", "named:/vol",
            "-v", "/anon", "--mount", f"type=bind,src={single},dst=/etc/single,readonly",
            "--tmpfs", "/scratch:size=1m,mode=1770",
            "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2m", "--shm-size", "3m"]
    podman.run("create", "--network", "none", "--name", "side", *opts, ref, "sh", "-c", "true")
    podman.run("init", "side")
    theirs = podman.bundle_config("side")
    made = box.bundle(" ".join(shlex.quote(o) for o in opts))
    assert made.returncode == 0, made.stderr
    ours = jsonio.loads(Path(jsonio.loads(made.stdout)["bundle"]["config_path"]).read_bytes())

    assert ours["process"]["args"] == theirs["process"]["args"]
    for key in ("uid", "gid"):
        assert ours["process"]["user"][key] == theirs["process"]["user"][key]
    assert ours["process"]["user"]["additionalGids"] == theirs["process"]["user"][
        "additionalGids"]

    def env(cfg):
        return {e for e in cfg["process"]["env"] if not e.startswith("container=")}
    assert env(ours) == env(theirs)
    assert ours["hostname"] == theirs["hostname"] == "same"

    def user_mounts(cfg):
        out = {}
        for m in cfg["mounts"]:
            if m["destination"] in ("/ro-data", "/rw", "/vol", "/anon", "/etc/single",
                                    "/scratch", "/t2", "/run/podman-init", "/dev/shm"):
                source = m["source"]
                if "/volumes/" in source:
                    source = "VOLUME"
                elif m["destination"] == "/dev/shm":
                    source = "per-container tmpfs"
                elif m["destination"] == "/run/podman-init":
                    source = os.path.realpath(source)
                out[m["destination"]] = (m["type"], source, sorted(m["options"]))
        return out
    assert user_mounts(ours) == user_mounts(theirs)
    assert len(user_mounts(ours)) == 9


def _mounted_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(path)]


def test_dev_shm_is_a_per_container_tmpfs_gone_with_the_bundle(box):
    bundles = box.env["PODKIT_RUNROOT"] + "/bundles/"
    made, out = box.run("--shm-size 2m", "grep ' /dev/shm ' /proc/self/mountinfo;"
                        " echo data > /dev/shm/f")
    cid = made["container"]["id"]
    assert "size=2048k" in out and "nosuid" in out
    assert _mounted_under(bundles) == [f"{bundles}{cid}/shm"]
    assert Path(bundles, cid, "shm", "f").read_text() == "data\n"  # outlives the container
    assert box.bundle("--shm-size 2m --user nosuch").returncode == errors.NotFound.exit_code
    assert box.bundle("-v keep-it:/x -v /nope:/y").returncode == errors.NotFound.exit_code
    assert _mounted_under(bundles) == [f"{bundles}{cid}/shm"]  # failures left no mount
    assert sh(f"pod rm {cid}", env=box.env).returncode == 0
    assert _mounted_under(bundles) == []
