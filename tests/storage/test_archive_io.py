"""Images and filesystems in and out of the store, podkit on both ends: save (docker-archive,
oci-archive, several images) loaded back through the puller with the same ids and layers,
export of a container's filesystem, import-tarball (with --change, compressed, from
stdin), and the failures a user meets (missing image, unwritable output, a truncated
archive, a hostile tar)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from podkit_storage._archive_save import matched_name, normalise_tag, oci_manifest
from podkit_storage._import_tarball import apply_changes
from tests.testbed import layers
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.registry]

SCHEMAS = SchemaSet(["podkit_storage"])


# -- helpers -----------------------------------------------------------------------------


def pull(env: dict, ref: str) -> dict:
    proc = sh(f"pod-image-pull --tls-verify=false {shlex.quote(ref)} | pod-storage import",
              env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return jsonio.loads(proc.stdout)["image"]


def load(env: dict, archive_ref: str) -> dict:
    proc = sh(f"pod-image-pull {shlex.quote(archive_ref)} | pod-storage import", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = jsonio.loads(proc.stdout)
    SCHEMAS.validate(doc, "urn:podkit:storage:stored-image")
    return doc["image"]


def storage(env: dict, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["pod-storage", *args], capture_output=True, env=env, input=input)


def ok(env: dict, *args: str, schema: str | None = None, input: bytes | None = None) -> dict:
    proc = storage(env, *args, input=input)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = jsonio.loads(proc.stdout)
    if schema:
        SCHEMAS.validate(doc, schema)
    return doc


def other_root(env: dict, tmp_path: Path, name: str) -> dict:
    return {**env, "PODKIT_ROOT": str(tmp_path / name / "root"),
            "PODKIT_RUNROOT": str(tmp_path / name / "run")}


def error_of(proc: subprocess.CompletedProcess) -> dict:
    return jsonio.loads(proc.stderr.strip().splitlines()[-1])["error"]


def tar_listing(data: bytes | Path) -> dict[str, tuple]:
    """name -> (type, mode, uid, gid, link target or content sha256, device, xattrs) of a
    tar: what two tars of the same filesystem must agree on. Names lose ``./`` and a
    trailing ``/``; a hard link is listed as the file it names, so which of two names
    carries the data does not matter."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    out: dict[str, tuple] = {}
    hashes: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
        for m in members:
            if m.isfile():
                hashes[_norm(m.name)] = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
        for m in members:
            name = _norm(m.name)
            if not name:
                continue
            xattrs = tuple(sorted((k, v) for k, v in m.pax_headers.items()
                                  if k.startswith("SCHILY.xattr.")))
            if m.islnk():
                kind, what = "file", hashes.get(_norm(m.linkname))
            elif m.isfile():
                kind, what = "file", hashes[name]
            elif m.issym():
                kind, what = "symlink", m.linkname
            elif m.isdir():
                kind, what = "dir", None
            elif m.ischr() or m.isblk():
                kind, what = ("chr" if m.ischr() else "blk"), (m.devmajor, m.devminor)
            elif m.isfifo():
                kind, what = "fifo", None
            else:
                kind, what = str(m.type), None
            out[name] = (kind, m.mode & 0o7777, m.uid, m.gid, what, xattrs)
    return out


def _norm(name: str) -> str:
    return name.removeprefix("./").strip("/")


def tree_listing(root: Path) -> dict[str, tuple]:
    """The same listing, walked straight from a directory (the oracle for export)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            keys = sorted(k for k in os.listxattr(p, follow_symlinks=False)
                          if not k.startswith("trusted.overlay."))
            xattrs = tuple((f"SCHILY.xattr.{k}",
                            os.getxattr(p, k, follow_symlinks=False).decode(
                                "utf-8", "surrogateescape")) for k in keys)
            m = st.st_mode
            if stat.S_ISREG(m):
                kind, what = "file", hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(m):
                kind, what = "symlink", os.readlink(p)
            elif stat.S_ISDIR(m):
                kind, what = "dir", None
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                kind = "chr" if stat.S_ISCHR(m) else "blk"
                what = (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISFIFO(m):
                kind, what = "fifo", None
            else:
                continue
            out[rel] = (kind, stat.S_IMODE(m), st.st_uid, st.st_gid, what, xattrs)
    return out


def build_tar(entries: list[tuple], compress: bool = False) -> bytes:
    """A tar from (name, kind, extra) rows: file (data), dir, symlink (target), link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra, *mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = layers.EPOCH
            info.mode = mode[0] if mode else (0o755 if kind == "dir" else 0o644)
            if kind == "file":
                info.size = len(extra)
                tar.addfile(info, io.BytesIO(extra))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "link": tarfile.LNKTYPE}[kind]
            info.linkname = extra or ""
            tar.addfile(info)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


# -- save, then load back through the puller ----------------------------------------------


@pytest.mark.parametrize("image", ["busybox:latest", "busybox:oci", "busybox:zstd"])
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_saved_image_loads_back_with_the_same_id_and_layers(images, podkit_env, tmp_path,
                                                            image, fmt):
    pulled = pull(podkit_env, images.ref(image))
    out = tmp_path / "image.tar"
    doc = ok(podkit_env, "save", "--format", fmt, "-o", str(out), images.ref(image),
             schema="urn:podkit:storage:archive")
    name = pulled["name"]
    assert doc["archive"]["images"] == [{"id": pulled["id"], "names": [name],
                                         "layers": [la["diff_id"] for la in pulled["layers"]]}]
    assert doc["archive"]["size"] == out.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]

    fresh = other_root(podkit_env, tmp_path, "fresh")
    loaded = load(fresh, f"{fmt}:{out}")
    assert loaded["id"] == pulled["id"]
    assert loaded["name"] == name
    assert [la["diff_id"] for la in loaded["layers"]] == \
        [la["diff_id"] for la in pulled["layers"]]
    # The layers unpack to the same trees as the pulled ones.
    for mine, theirs in zip(loaded["layers"], pulled["layers"], strict=True):
        assert tree_listing(Path(mine["diff_path"])) == tree_listing(Path(theirs["diff_path"]))


def test_docker_archive_is_written_like_podman_writes_it(images, podkit_env, tmp_path):
    pulled = pull(podkit_env, images.ref("busybox:oci"))
    out = tmp_path / "d.tar"
    # By id: no name of its own; without -m, further arguments are more names for it.
    ok(podkit_env, "save", "-o", str(out), pulled["id"][:12], "mytag:v2", "example.com/x")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        manifest = jsonio.loads(tar.extractfile("manifest.json").read())
        config = tar.extractfile(f"{pulled['id']}.json").read()
    layer_files = [f"{la['diff_id'][7:]}.tar" for la in pulled["layers"]]
    assert manifest == [{"Config": f"{pulled['id']}.json",
                         "RepoTags": ["localhost/mytag:v2", "example.com/x:latest"],
                         "Layers": layer_files}]
    assert hashlib.sha256(config).hexdigest() == pulled["id"]
    assert names == {"manifest.json", f"{pulled['id']}.json", *layer_files}
    # Layers are plain tars whose sha256 is their diff_id, as podman writes them.
    with tarfile.open(out) as tar:
        for la, member in zip(pulled["layers"], layer_files, strict=True):
            data = tar.extractfile(member).read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == la["diff_id"]


def test_save_is_deterministic_and_streams_to_stdout(images, podkit_env, tmp_path):
    pull(podkit_env, images.ref("busybox:latest"))
    ref = images.ref("busybox:latest")
    ok(podkit_env, "save", "-o", str(tmp_path / "a.tar"), ref)
    ok(podkit_env, "save", "-o", str(tmp_path / "b.tar"), ref)
    streamed = storage(podkit_env, "save", ref)  # -o - is the default
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    # Only the tar on stdout: no JSON document before or after it.
    assert streamed.stdout == (tmp_path / "a.tar").read_bytes()


def test_multi_image_archive_loads_every_image_with_pod_load(images, podkit_env, tmp_path):
    a = pull(podkit_env, images.ref("busybox:latest"))
    b = pull(podkit_env, images.ref("busybox:oci"))
    out = tmp_path / "multi.tar"
    doc = ok(podkit_env, "save", "-m", "-o", str(out), images.ref("busybox:latest"),
             images.ref("busybox:oci"), schema="urn:podkit:storage:archive")
    assert [i["id"] for i in doc["archive"]["images"]] == [a["id"], b["id"]]
    with tarfile.open(out) as tar:
        shared = [n for n in tar.getnames() if n == f"{a['layers'][0]['diff_id'][7:]}.tar"]
    assert len(shared) == 1  # the layer both images have is written once

    fresh = other_root(podkit_env, tmp_path, "fresh")
    proc = subprocess.run(["pod", "load", "-i", str(out)], capture_output=True, env=fresh)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == [f"Loaded image: {a['name']}",
                                                 f"Loaded image: {b['name']}"]
    listed = {r["id"]: r["names"] for r in
              (jsonio.loads(line) for line in storage(fresh, "images").stdout.splitlines())}
    assert listed == {a["id"]: [a["name"]], b["id"]: [b["name"]]}


def test_pod_save_and_load_through_a_pipe(images, podkit_env, tmp_path):
    pulled = pull(podkit_env, images.ref("busybox:oci"))
    fresh = other_root(podkit_env, tmp_path, "fresh")
    for fmt in ("docker-archive", "oci-archive"):
        proc = sh(f"pod save --format {fmt} {shlex.quote(pulled['name'])}"
                  f" | PODKIT_ROOT={shlex.quote(fresh['PODKIT_ROOT'])}"
                  f" PODKIT_RUNROOT={shlex.quote(fresh['PODKIT_RUNROOT'])} pod load",
                  env=podkit_env)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode() == f"Loaded image: {pulled['name']}\n"
        assert ok(fresh, "image", pulled["name"])["image"]["id"] == pulled["id"]


# -- failures -------------------------------------------------------------------------


def test_save_of_a_missing_image_is_not_found_and_writes_nothing(podkit_env, tmp_path):
    proc = storage(podkit_env, "save", "-o", str(tmp_path / "x.tar"), "no/such:image")
    assert proc.returncode == errors.NotFound.exit_code
    assert proc.stdout == b""
    assert error_of(proc)["type"] == "NotFound"
    assert not (tmp_path / "x.tar").exists()


def test_save_to_an_unwritable_place_fails_cleanly(images, podkit_env, tmp_path):
    pull(podkit_env, images.ref("busybox:latest"))
    proc = storage(podkit_env, "save", "-o", str(tmp_path / "missing" / "x.tar"),
                   images.ref("busybox:latest"))
    assert proc.returncode == errors.NotFound.exit_code, proc.stderr.decode()
    assert "missing" in error_of(proc)["message"]
    (tmp_path / "adir").mkdir()
    proc = storage(podkit_env, "save", "-o", str(tmp_path / "adir"),
                   images.ref("busybox:latest"))
    assert proc.returncode != 0 and proc.stdout == b""
    assert list((tmp_path / "adir").iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_truncated_archive_is_refused_and_leaves_nothing(images, podkit_env, tmp_path):
    pull(podkit_env, images.ref("busybox:oci"))
    out = tmp_path / "full.tar"
    ok(podkit_env, "save", "-o", str(out), images.ref("busybox:oci"))
    data = out.read_bytes()
    with tarfile.open(out) as tar:
        offsets = {m.name: m.offset_data for m in tar.getmembers()}
    fresh = other_root(podkit_env, tmp_path, "fresh")
    # Cut inside a layer's data, and inside manifest.json (written last).
    for cut in (len(data) // 2, offsets["manifest.json"] + 10):
        short = tmp_path / f"short-{cut}.tar"
        short.write_bytes(data[:cut])
        proc = sh(f"pod-image-pull docker-archive:{short} | pod-storage import", env=fresh)
        assert proc.returncode != 0
        err = jsonio.loads(proc.stderr.splitlines()[0])["error"]
        assert err["tool"] == "pod-image-pull" and "archive" in err["message"], err
        proc = subprocess.run(["pod", "load", "-i", str(short)], capture_output=True, env=fresh)
        assert proc.returncode == errors.EXIT_RUN_OWN_ERROR and proc.stdout == b""
    root = Path(fresh["PODKIT_ROOT"])
    assert storage(fresh, "images").stdout == b""
    blobs = root / "blobs" / "sha256"
    assert not blobs.exists() or list(blobs.iterdir()) == []


def test_pod_load_takes_a_gzip_compressed_archive(images, podkit_env, tmp_path):
    pulled = pull(podkit_env, images.ref("busybox:latest"))
    out = tmp_path / "image.tar"
    ok(podkit_env, "save", "-o", str(out), pulled["name"])
    packed = tmp_path / "image.tar.gz"
    packed.write_bytes(gzip.compress(out.read_bytes()))
    fresh = other_root(podkit_env, tmp_path, "fresh")
    proc = subprocess.run(["pod", "load", "-i", str(packed)], capture_output=True, env=fresh)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == f"Loaded image: {pulled['name']}\n"
    assert ok(fresh, "image", pulled["name"])["image"]["id"] == pulled["id"]
    assert not list(Path(fresh["PODKIT_RUNROOT"]).glob(".tmp-load-*"))


def test_pod_load_of_something_that_is_no_archive(podkit_env, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(build_tar([("hello", "file", b"hi\n")]))
    proc = subprocess.run(["pod", "load", "-i", str(junk)], capture_output=True, env=podkit_env)
    assert proc.returncode == errors.EXIT_RUN_OWN_ERROR and proc.stdout == b""
    assert "neither a docker-archive" in error_of(proc)["message"]


# -- export ---------------------------------------------------------------------------


def test_export_writes_the_merged_filesystem_without_whiteouts(images, podkit_env, tmp_path):
    pull(podkit_env, images.ref("busybox:oci"))
    c = ok(podkit_env, "create", "--name", "exp", "--image", images.ref("busybox:oci"))
    rootfs = Path(c["container"]["rootfs"])
    # What a container does to its filesystem: every kind of entry export must keep.
    (rootfs / "etc/motd").unlink()                                 # a whiteout in upper
    (rootfs / "new").mkdir(mode=0o700)
    (rootfs / "new/suid").write_bytes(b"#!/bin/sh\n")
    os.chown(rootfs / "new/suid", 1000, 50)
    os.chmod(rootfs / "new/suid", 0o4755)
    os.link(rootfs / "new/suid", rootfs / "new/suid-link")
    os.symlink("../etc/passwd", rootfs / "new/passwd-link")
    os.mknod(rootfs / "new/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(rootfs / "new/fifo")
    os.setxattr(rootfs / "new/suid", "user.podkit", b"\x00\xffbinary")
    os.setxattr(rootfs / "new/suid", "security.capability",
                bytes.fromhex("0100000200200000000000000000000000000000"))
    before = tree_listing(rootfs)

    out = tmp_path / "fs.tar"
    doc = ok(podkit_env, "export", "-o", str(out), "exp", schema="urn:podkit:storage:export")
    listing = tar_listing(out)
    assert doc["export"]["entries"] == len(before)
    assert listing == before
    assert "etc/motd" not in listing
    assert not [n for n in listing if ".wh." in n]
    assert listing["new/suid"][1:4] == (0o4755, 1000, 50)
    assert dict(listing["new/suid"][5])["SCHILY.xattr.security.capability"]
    assert listing["new/null"][0] == "chr" and listing["new/fifo"][0] == "fifo"
    with tarfile.open(out) as tar:
        kinds = {m.name: m.type for m in tar.getmembers()}
    assert tarfile.LNKTYPE in (kinds["new/suid"], kinds["new/suid-link"])
    # Streamed to stdout: the same tar, and no document.
    streamed = storage(podkit_env, "export", "exp")
    assert streamed.returncode == 0 and tar_listing(streamed.stdout) == listing
    # The container is left as it was (mounted, one user).
    assert ok(podkit_env, "mount", "exp")["container"]["rootfs"] == str(rootfs)


def test_export_never_follows_a_symlink_out_of_the_rootfs(images, podkit_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("host secret\n")
    pull(podkit_env, images.ref("busybox:latest"))
    c = ok(podkit_env, "create", "--name", "sly", "--image", images.ref("busybox:latest"))
    rootfs = Path(c["container"]["rootfs"])
    os.symlink(str(outside), rootfs / "escape")
    os.symlink("../../..", rootfs / "climb")
    out = tmp_path / "fs.tar"
    ok(podkit_env, "export", "-o", str(out), "sly")
    listing = tar_listing(out)
    assert listing["escape"][0:1] == ("symlink",) and listing["escape"][4] == str(outside)
    assert listing["climb"][4] == "../../.."
    assert not [n for n in listing if n.startswith(("escape/", "climb/"))]
    assert b"host secret" not in out.read_bytes()


def test_export_then_import_tarball_gives_the_same_filesystem(images, podkit_env, tmp_path):
    pull(podkit_env, images.ref("busybox:oci"))
    ok(podkit_env, "create", "--name", "src", "--image", images.ref("busybox:oci"))
    out = tmp_path / "fs.tar"
    ok(podkit_env, "export", "-o", str(out), "src")
    doc = ok(podkit_env, "import-tarball", str(out), "copied",
             schema="urn:podkit:storage:stored-image")
    assert doc["image"]["name"] == "localhost/copied:latest"
    layer = doc["image"]["layers"][0]
    assert layer["diff_id"] == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    c = ok(podkit_env, "create", "--name", "dst", "--image", "copied")
    assert tree_listing(Path(c["container"]["rootfs"])) == tar_listing(out)
    # The store holds a consistent image: `check` finds nothing to say.
    check = storage(podkit_env, "check")
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


# -- import-tarball -------------------------------------------------------------------


def test_import_tarball_from_stdin_gzip_with_changes(podkit_env, tmp_path):
    data = build_tar([("bin", "dir", None), ("bin/tool", "file", b"tool\n", 0o755),
                      ("bin/alias", "symlink", "tool"), ("bin/hard", "link", "bin/tool"),
                      ("etc", "dir", None), ("etc/conf", "file", b"x=1\n", 0o600)],
                     compress=True)
    doc = ok(podkit_env, "import-tarball", "-", "example.com/team/app:v1",
             "--change", "CMD /bin/tool --serve", "--change", 'ENTRYPOINT ["/bin/env"]',
             "--change", "ENV=MODE=prod", "--change", "WORKDIR /srv",
             "--change", "USER 1000:1000", "--change", "EXPOSE 8080",
             "--change", "LABEL team=core", "--message", "from a tarball",
             input=data, schema="urn:podkit:storage:stored-image")
    image = doc["image"]
    assert image["name"] == "example.com/team/app:v1"
    assert image["layers"][0]["media_type"].endswith("tar+gzip")
    assert image["layers"][0]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert image["layers"][0]["diff_id"] == \
        "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    config = image["config"]
    assert config["config"] == {"Cmd": ["/bin/sh", "-c", "/bin/tool --serve"],
                                "Entrypoint": ["/bin/env"], "Env": ["MODE=prod"],
                                "WorkingDir": "/srv", "User": "1000:1000",
                                "ExposedPorts": {"8080/tcp": {}}, "Labels": {"team": "core"}}
    assert config["history"][0]["comment"] == "from a tarball"
    # Blobs stored: the config's digest is the id, and inspect sees it all.
    blob = Path(podkit_env["PODKIT_ROOT"], "blobs/sha256", image["id"])
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == image["id"]
    inspected = ok(podkit_env, "inspect", "example.com/team/app:v1")
    assert inspected["inspect"]["Config"]["Cmd"] == ["/bin/sh", "-c", "/bin/tool --serve"]
    diff = Path(image["layers"][0]["diff_path"])
    assert (diff / "bin/tool").read_bytes() == b"tool\n"
    assert os.readlink(diff / "bin/alias") == "tool"
    assert (diff / "bin/hard").stat().st_ino == (diff / "bin/tool").stat().st_ino
    assert stat.S_IMODE((diff / "etc/conf").stat().st_mode) == 0o600
    # The same tar again is the same image (same config only if created matches): at
    # least the layer is shared, never unpacked twice.
    again = ok(podkit_env, "import-tarball", "-", input=data)
    assert again["image"]["layers"][0]["chain_id"] == image["layers"][0]["chain_id"]
    assert again["image"]["name"] is None


@pytest.mark.parametrize("hostile", [
    [("../escaped", "file", b"pwned\n")],
    [("a", "dir", None), ("a/../../escaped", "file", b"pwned\n")],
    [("link", "symlink", "../.."), ("link/escaped", "file", b"pwned\n")],
    [("hard", "link", "../../sentinel")],
], ids=["dotdot", "nested-dotdot", "through-symlink", "hardlink-out"])
def test_import_tarball_refuses_a_hostile_tar(podkit_env, tmp_path, hostile):
    sentinel = tmp_path / "sentinel"
    sentinel.write_text("untouched\n")
    data = build_tar([("ok", "file", b"fine\n"), *hostile])
    proc = storage(podkit_env, "import-tarball", "-", "hostile", input=data)
    assert proc.returncode == errors.UnsafeContent.exit_code, proc.stderr.decode()
    assert proc.stdout == b""
    assert sentinel.read_text() == "untouched\n"
    assert not (tmp_path / "escaped").exists()
    assert not (Path(podkit_env["PODKIT_ROOT"]).parent / "escaped").exists()
    assert storage(podkit_env, "images").stdout == b""
    blobs = Path(podkit_env["PODKIT_ROOT"], "blobs", "sha256")
    assert list(blobs.iterdir()) == []


def test_import_tarball_sweeps_what_a_killed_import_left(podkit_env, tmp_path):
    tmp = Path(podkit_env["PODKIT_ROOT"], "blobs", "tmp")
    tmp.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp / f".tmp-import.{gone.pid}.r0000"
    alive = tmp / f".tmp-import.{os.getpid()}.r0000"  # a writer still running
    dead.write_bytes(b"half")
    alive.write_bytes(b"half")
    ok(podkit_env, "import-tarball", "-", input=build_tar([("a", "file", b"a")]))
    assert not dead.exists() and alive.exists()


def test_import_tarball_of_a_missing_file_or_bad_change(podkit_env, tmp_path):
    proc = storage(podkit_env, "import-tarball", str(tmp_path / "nope.tar"))
    assert proc.returncode == errors.NotFound.exit_code
    proc = storage(podkit_env, "import-tarball", "--change", "FROM scratch", "-",
                   input=build_tar([("a", "file", b"")]))
    assert proc.returncode == errors.UsageError.exit_code
    assert "FROM" in error_of(proc)["message"]


def test_apply_changes_follows_dockerfile_forms():
    base = {"Env": ["PATH=/bin", "MODE=dev"], "Labels": {"a": "1"}}
    out = apply_changes(base, ["ENV MODE prod", "LABEL b=2 'c=x y'", "EXPOSE 53/udp 80",
                               "VOLUME /data /logs", "CMD [\"a\", \"b\"]",
                               "ENTRYPOINT exec run", "STOPSIGNAL SIGTERM", "user=app"])
    assert out == {"Env": ["PATH=/bin", "MODE=prod"], "Labels": {"a": "1", "b": "2", "c": "x y"},
                   "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
                   "Volumes": {"/data": {}, "/logs": {}}, "Cmd": ["a", "b"],
                   "Entrypoint": ["/bin/sh", "-c", "exec run"], "StopSignal": "SIGTERM",
                   "User": "app"}
    assert base == {"Env": ["PATH=/bin", "MODE=dev"], "Labels": {"a": "1"}}  # not modified
    for bad in ("", "CMD", "ONBUILD RUN x", "LABEL novalue"):
        with pytest.raises(errors.UsageError):
            apply_changes({}, [bad])


def test_archive_names_follow_podman():
    record = {"names": ["127.0.0.1:5000/busybox:latest", "example.com/app@sha256:" + "a" * 64,
                        "localhost/tool:1"]}
    assert matched_name(record, "busybox") == "127.0.0.1:5000/busybox:latest"
    assert matched_name(record, "docker://127.0.0.1:5000/busybox:latest") == \
        "127.0.0.1:5000/busybox:latest"
    assert matched_name(record, "tool:1") == "localhost/tool:1"
    assert matched_name(record, "example.com/app@sha256:" + "a" * 64) is None  # no tag
    assert matched_name(record, "0123abcd") is None  # by id
    assert normalise_tag("app") == "localhost/app:latest"
    assert normalise_tag("team/app:2") == "localhost/team/app:2"
    assert normalise_tag("host:5000/app") == "host:5000/app:latest"
    assert normalise_tag("localhost/app:x") == "localhost/app:x"


def test_a_docker_manifest_becomes_an_oci_one_with_the_same_blobs(tmp_path):
    layer = tmp_path / "layer"
    layer.write_bytes(b"x" * 10)
    config = b'{"rootfs": {"type": "layers", "diff_ids": []}}'
    record = {"media_type": "application/vnd.docker.distribution.manifest.v2+json",
              "config_digest": "sha256:" + hashlib.sha256(config).hexdigest(),
              "layers": [{"digest": "sha256:" + "b" * 64, "path": str(layer),
                          "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip"}]}
    manifest = jsonio.loads(oci_manifest(record, config))
    assert manifest == {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": record["config_digest"], "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + "b" * 64, "size": 10}]}
    # An OCI manifest in the store is written as it is (same manifest digest).
    stored = tmp_path / "manifest"
    stored.write_bytes(b'{"schemaVersion":2}')
    record.update(media_type="application/vnd.oci.image.manifest.v1+json",
                  manifest_path=str(stored),
                  digest="sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest())
    assert oci_manifest(record, config) == stored.read_bytes()
