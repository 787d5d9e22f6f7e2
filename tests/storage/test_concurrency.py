"""Dozens of real `pod-storage` processes at once against one root, as Ansible forks and
CI matrices run them: nothing is corrupted and nothing fails with a lock error, they
wait. Every process exits 0 or with the documented code of a real conflict (and its
JSON error envelope, never a traceback); afterwards the listings agree with each other
and with /proc/self/mountinfo, and `pod-storage check` is clean."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from tests.storage.test_store import _tar, image_doc
from tests.testbed.env import mounts_under
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.overlay]

SCHEMAS = SchemaSet(["podkit_storage"])
#: exit code -> error type of the envelope, for the codes a racing command may get.
ERROR_TYPES = {errors.NotFound.exit_code: "NotFound", errors.Conflict.exit_code: "Conflict"}
SWARM = 32


@dataclass
class Outcome:
    args: list[str]
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def doc(self) -> dict:
        return jsonio.loads(self.stdout)

    @property
    def lines(self) -> list[dict]:
        return [jsonio.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def error(self) -> dict:
        return jsonio.loads(self.stderr.splitlines()[-1])["error"]


def swarm(env: dict, jobs: list[tuple[list[str], bytes | None]], scratch: Path,
          allowed: dict[int, set[int]] | None = None) -> list[Outcome]:
    """Start every job at once (input and output through files, so none waits on a pipe
    of ours), wait for all, and check each ended cleanly: exit 0, or a code ``allowed``
    for its job index (default none) with the error envelope of that type, on stderr
    only; never a traceback, never a lock timeout."""
    scratch.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, (args, data) in enumerate(jobs):
        stdin = subprocess.DEVNULL
        if data is not None:
            (scratch / f"{i}.in").write_bytes(data)
            stdin = open(scratch / f"{i}.in", "rb")  # noqa: SIM115 - closed below
        out, err = open(scratch / f"{i}.out", "wb"), open(scratch / f"{i}.err", "wb")  # noqa: SIM115
        procs.append((subprocess.Popen(["pod-storage", *args], stdin=stdin, stdout=out,
                                       stderr=err, env=env), (stdin, out, err)))
    outcomes = []
    for i, (proc, files) in enumerate(procs):
        code = proc.wait(timeout=300)
        for f in files:
            if f is not subprocess.DEVNULL:
                f.close()
        outcomes.append(Outcome(jobs[i][0], code, (scratch / f"{i}.out").read_bytes(),
                                (scratch / f"{i}.err").read_bytes()))
    for i, o in enumerate(outcomes):
        what = f"pod-storage {' '.join(o.args)} -> {o.code}: {o.stderr.decode()[-2000:]}"
        assert b"Traceback" not in o.stderr, what
        if o.code == 0:
            assert o.stdout.strip(), what
            continue
        assert o.code in (allowed or {}).get(i, set()), what
        if o.args[0] == "check":  # its exit code says what the report on stdout found
            assert o.doc["problems"], what
            continue
        assert o.stdout == b"", what
        assert o.error["type"] == ERROR_TYPES[o.code] and o.error["message"], what
    return outcomes


def storage(env: dict, *args: str, doc: dict | None = None) -> Outcome:
    data = jsonio.dumps(doc) if doc is not None else None
    proc = subprocess.run(["pod-storage", *args], input=data, capture_output=True, env=env,
                          timeout=300)
    return Outcome(list(args), proc.returncode, proc.stdout, proc.stderr)


def assert_clean(env: dict) -> None:
    out = storage(env, "check")
    report = out.doc
    SCHEMAS.validate(report, "urn:podkit:storage:check")
    assert out.code == 0 and report["clean"] and report["problems"] == [], report


def containers(env: dict) -> list[dict]:
    out = storage(env, "containers")
    assert out.code == 0, out.stderr
    for line in out.lines:
        # A listing line is the "container" part of create's document.
        SCHEMAS.validate({"changed": False, "container": line}, "urn:podkit:storage:container")
    return out.lines


def images(env: dict) -> list[dict]:
    out = storage(env, "images")
    assert out.code == 0, out.stderr
    for line in out.lines:
        SCHEMAS.validate(line, "urn:podkit:storage:image-line")
    return out.lines


def overlay_mounts(env: dict) -> set[str]:
    """Container ids whose rootfs is a mount point now, from /proc/self/mountinfo."""
    mounts = Path(env["PODKIT_RUNROOT"]) / "mounts"
    return {p.name for p in mounts_under(mounts) if p.parent == mounts}


def leftovers(env: dict) -> list[str]:
    root = Path(env["PODKIT_ROOT"])
    return sorted(str(p.relative_to(root)) for d in ("layers", "images", "containers")
                  if (root / d).is_dir() for p in (root / d).iterdir()
                  if p.name.startswith(".tmp-"))


@pytest.fixture
def busybox(images, podkit_env) -> bytes:
    """busybox:latest pulled once with pod-image-pull into the test's root: its document."""
    proc = sh(f"pod-image-pull --tls-verify=false {images.ref('busybox:latest')}",
              env=podkit_env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def imported(env: dict, pulled: bytes) -> dict:
    out = storage(env, "import", doc=jsonio.loads(pulled))
    assert out.code == 0, out.stderr
    return out.doc


def small_image(tmp_path: Path, n: int) -> bytes:
    """An image document of a one-layer image of its own (no layer shared with others)."""
    doc = image_doc(tmp_path / f"img{n}", _tar(("data", None, None),
                                               (f"data/f{n}", f"image {n}\n".encode(), None)))
    doc["image"]["name"] = f"localhost/small{n}:1"
    return jsonio.dumps(doc)


# --- imports --------------------------------------------------------------------------


def test_dozens_of_imports_of_one_image_unpack_it_once(tmp_path, podkit_env, busybox):
    outs = swarm(podkit_env, [(["import"], busybox)] * SWARM, tmp_path / "swarm")
    docs = [o.doc for o in outs]
    for doc in docs:
        SCHEMAS.validate(doc, "urn:podkit:storage:stored-image")
    assert any(d["changed"] for d in docs)
    assert len({jsonio.dumps(d["image"]) for d in docs}) == 1  # every one says the same
    listed = images(podkit_env)
    assert [row["id"] for row in listed] == [docs[0]["image"]["id"]]
    chains = {la["chain_id"].split(":")[1] for la in docs[0]["image"]["layers"]}
    layers = Path(podkit_env["PODKIT_ROOT"]) / "layers"
    assert {p.name for p in layers.iterdir()} == chains
    assert leftovers(podkit_env) == []
    # Once more, serially: nothing left to do.
    again = {**jsonio.loads(busybox), "changed": False}
    assert storage(podkit_env, "import", doc=again).doc["changed"] is False
    assert_clean(podkit_env)


def test_imports_of_distinct_images_at_once_all_land(tmp_path, podkit_env):
    jobs = [(["import"], small_image(tmp_path, n)) for n in range(SWARM)]
    outs = swarm(podkit_env, jobs, tmp_path / "swarm")
    assert all(o.doc["changed"] for o in outs)
    listed = images(podkit_env)
    assert sorted(n for row in listed for n in row["names"]) == \
        sorted(f"localhost/small{n}:1" for n in range(SWARM))
    assert leftovers(podkit_env) == []
    assert_clean(podkit_env)


# --- containers -----------------------------------------------------------------------


def test_creates_with_distinct_and_clashing_names(tmp_path, podkit_env, busybox):
    doc = jsonio.dumps(imported(podkit_env, busybox))
    distinct = [(["create", "--name", f"c{i}"], doc) for i in range(SWARM // 2)]
    clash = [(["create", "--name", "clash"], doc) for _ in range(SWARM // 2)]
    conflict = {errors.Conflict.exit_code}
    outs = swarm(podkit_env, distinct + clash, tmp_path / "create",
                 allowed={i: conflict for i in range(len(distinct), SWARM)})
    assert all(o.code == 0 for o in outs[:len(distinct)])
    winners = [o for o in outs[len(distinct):] if o.code == 0]
    assert len(winners) == 1
    losers = [o for o in outs[len(distinct):] if o.code != 0]
    assert all("clash" in o.error["message"] for o in losers)
    listed = containers(podkit_env)
    assert sorted(c["name"] for c in listed) == sorted([f"c{i}" for i in range(len(distinct))]
                                                       + ["clash"])
    by_name = {c["name"]: c for c in listed}
    assert by_name["clash"]["id"] == winners[0].doc["container"]["id"]
    assert all(c["mounted"] for c in listed)
    assert overlay_mounts(podkit_env) == {c["id"] for c in listed}
    names = Path(podkit_env["PODKIT_ROOT"]) / "containers" / "names"
    assert sorted(p.name for p in names.iterdir()) == sorted(by_name)
    assert leftovers(podkit_env) == []
    assert_clean(podkit_env)


def _mount_counts(env: dict) -> dict[str, int]:
    state = Path(env["PODKIT_RUNROOT"]) / "storage"
    if not state.is_dir():
        return {}
    return {p.stem: jsonio.loads(p.read_bytes())["mount_count"] for p in state.iterdir()
            if p.suffix == ".json"}


def test_mounts_umounts_and_rms_at_once_keep_counts_and_mounts_in_step(tmp_path, podkit_env,
                                                                       busybox):
    doc = jsonio.dumps(imported(podkit_env, busybox))
    made = swarm(podkit_env, [(["create", "--name", f"m{i}"], doc) for i in range(8)],
                 tmp_path / "create")
    ids = [o.doc["container"]["id"] for o in made]
    # Each container starts with one user (create); four more mount it at once.
    swarm(podkit_env, [(["mount", cid], None) for cid in ids for _ in range(4)],
          tmp_path / "mount")
    assert _mount_counts(podkit_env) == {cid: 5 for cid in ids}
    assert overlay_mounts(podkit_env) == set(ids)
    # Five umounts for the first half (down to zero: unmounted), two for the rest.
    half = ids[:4]
    jobs = [(["umount", cid], None) for cid in ids for _ in range(5 if cid in half else 2)]
    outs = swarm(podkit_env, jobs, tmp_path / "umount")
    assert Counter(o.doc["container"]["mount_count"] for o in outs) == Counter(
        {4: 8, 3: 8, 2: 4, 1: 4, 0: 4})
    assert _mount_counts(podkit_env) == {cid: 3 for cid in ids[4:]}
    assert overlay_mounts(podkit_env) == set(ids[4:])
    listed = {c["id"]: c for c in containers(podkit_env)}
    assert {cid for cid, c in listed.items() if c["mounted"]} == set(ids[4:])
    assert_clean(podkit_env)
    # Every container removed by two rms at once (and mounted again meanwhile):
    # exactly one rm of each wins, the other finds it gone.
    jobs = []
    for cid in ids:
        jobs += [(["rm", cid], None), (["rm", cid], None), (["mount", cid], None)]
    not_found = {errors.NotFound.exit_code}
    outs = swarm(podkit_env, jobs, tmp_path / "rm",
                 allowed={i: not_found for i in range(len(jobs))})
    for k in range(len(ids)):
        rms = outs[3 * k: 3 * k + 2]
        assert sorted(o.code for o in rms) == [0, errors.NotFound.exit_code], rms
    assert containers(podkit_env) == []
    assert overlay_mounts(podkit_env) == set()
    assert _mount_counts(podkit_env) == {}
    runroot_mounts = Path(podkit_env["PODKIT_RUNROOT"]) / "mounts"
    assert not runroot_mounts.exists() or list(runroot_mounts.iterdir()) == []
    assert_clean(podkit_env)


# --- images: tag, untag, rmi, prune ---------------------------------------------------


def test_tag_untag_rmi_and_prune_at_once(tmp_path, podkit_env, busybox):
    base = imported(podkit_env, busybox)["image"]
    assert storage(podkit_env, "create", "--name", "user", "--no-mount",
                   doc={"changed": False, "image": base}).code == 0
    dangling = jsonio.loads(small_image(tmp_path, 1))
    dangling_id = storage(podkit_env, "import", doc=dangling).doc["image"]["id"]
    assert storage(podkit_env, "untag", dangling_id).code == 0
    unused = storage(podkit_env, "import", doc=jsonio.loads(small_image(tmp_path, 2))).doc
    assert storage(podkit_env, "tag", base["id"], "localhost/gone:1").code == 0

    jobs: list[tuple[list[str], bytes | None]] = []
    allowed: dict[int, set[int]] = {}

    def job(args: list[str], *codes: int) -> None:
        allowed[len(jobs)] = set(codes)
        jobs.append((args, None))

    for i in range(12):
        job(["tag", base["id"], f"localhost/t{i}:1"])
    job(["untag", base["id"], "localhost/gone:1"])
    for _ in range(4):  # in use by "user": refused however often it is asked
        job(["rmi", base["id"]], 5)
    for _ in range(4):  # one wins, the others find it gone
        job(["rmi", unused["image"]["id"]], 4)
    for _ in range(4):
        job(["prune"])
    for _ in range(4):
        job(["prune", "--all"])
    job(["images"])
    job(["containers"])
    outs = swarm(podkit_env, jobs, tmp_path / "swarm", allowed=allowed)

    rmi_unused = [o for o in outs if o.args[:1] == ["rmi"] and o.args[1] == unused["image"]["id"]]
    # One rmi wins, or a prune --all got there first and every rmi finds it gone.
    assert sorted(o.code for o in rmi_unused) in ([0, 4, 4, 4], [4, 4, 4, 4])
    for o in outs:
        if o.args[0] in ("rmi", "prune") and o.code == 0:
            SCHEMAS.validate(o.doc, "urn:podkit:storage:image-removal")
    deleted = Counter(i for o in outs if o.args[0] in ("rmi", "prune") and o.code == 0
                      for i in o.doc["deleted"])
    # Each removed image is reported removed exactly once, by whoever removed it.
    assert deleted == Counter({dangling_id: 1, unused["image"]["id"]: 1})
    listed = images(podkit_env)
    assert [row["id"] for row in listed] == [base["id"]]
    assert sorted(listed[0]["names"]) == sorted([base["name"],
                                                 *(f"localhost/t{i}:1" for i in range(12))])
    layers = Path(podkit_env["PODKIT_ROOT"]) / "layers"
    assert {p.name for p in layers.iterdir()} == \
        {la["chain_id"].split(":")[1] for la in base["layers"]}
    assert [c["name"] for c in containers(podkit_env)] == ["user"]
    assert leftovers(podkit_env) == []
    assert_clean(podkit_env)


# --- check --repair while others work -------------------------------------------------


def test_check_repair_during_imports_and_creates_destroys_nothing(tmp_path, podkit_env,
                                                                  busybox):
    doc = jsonio.dumps(imported(podkit_env, busybox))
    root = Path(podkit_env["PODKIT_ROOT"])
    # What a killed import left behind (its writer, pid 2**22 + 1, cannot exist).
    dead = root / "layers" / f".tmp-{'0' * 64}.{2 ** 22 + 1}"
    (dead / "diff").mkdir(parents=True)
    doomed = [storage(podkit_env, "create", "--name", f"old{i}", doc=jsonio.loads(doc)).doc
              ["container"]["id"] for i in range(4)]
    jobs: list[tuple[list[str], bytes | None]] = [(["rm", cid], None) for cid in doomed]
    for n in range(16):
        jobs.append((["import"], small_image(tmp_path, n)))
    for i in range(8):
        jobs.append((["create", "--name", f"r{i}", "--no-mount" if i % 2 else "--quiet"], doc))
    for _ in range(4):
        jobs.append((["check", "--repair"], None))
    allowed = {}
    for _ in range(4):
        allowed[len(jobs)] = {errors.Conflict.exit_code}  # it may see the dead staging dir
        jobs.append((["check"], None))
    outs = swarm(podkit_env, jobs, tmp_path / "swarm", allowed=allowed)
    for o in outs:
        if o.args[0] == "check":
            SCHEMAS.validate(o.doc, "urn:podkit:storage:check")
            assert o.doc["clean"] or o.args == ["check", "--repair"], o.doc
            kinds = {p["kind"] for p in o.doc["problems"]}
            assert kinds <= {"staging"}, o.doc
    assert not dead.exists()
    listed = images(podkit_env)
    assert len(listed) == 17
    made = containers(podkit_env)
    assert sorted(c["name"] for c in made) == [f"r{i}" for i in range(8)]
    for c in made:
        assert Path(c["upper"]).is_dir() and Path(c["work"]).is_dir()
    for row in listed:
        image = storage(podkit_env, "image", row["id"]).doc["image"]
        for layer in image["layers"]:
            assert (Path(layer["diff_path"]).parent / "layer.json").is_file()
    assert leftovers(podkit_env) == []
    assert_clean(podkit_env)


def test_repair_leaves_alone_what_a_command_is_working_on(tmp_path, podkit_env):
    """A container dir without its record looks like a killed create; while a command
    holds that container's lock (an rm half-way, say) repair must not touch it."""
    from podkit_common.locks import object_lock

    root = Path(podkit_env["PODKIT_ROOT"])
    cid = "ab" * 32
    (root / "containers" / cid / "upper").mkdir(parents=True)
    with object_lock(root / "locks", "container", cid):
        out = storage(podkit_env, "check", "--repair")
        assert out.code == 0 and out.doc["problems"] == [], out.doc
        assert (root / "containers" / cid / "upper").is_dir()
    out = storage(podkit_env, "check", "--repair")
    assert [(p["kind"], p["repaired"]) for p in out.doc["problems"]] == \
        [("incomplete-container", True)]
    assert not (root / "containers" / cid).exists()
    assert_clean(podkit_env)


def test_the_create_sweep_leaves_a_recordless_container_whose_lock_is_held(tmp_path):
    """A create at work (it holds the lock from the name to the record) or an rm at work
    is not a remnant: only a recordless container nobody holds is finished."""
    from podkit_common.roots import Roots
    from podkit_storage._containers import _sweep_abandoned
    from podkit_storage._layout import StoreLayout

    layout = StoreLayout(Roots(tmp_path / "root", tmp_path / "runroot"))
    cid = "ab" * 32
    (layout.container_dir(cid) / "upper").mkdir(parents=True)
    layout.names.mkdir(parents=True)
    (layout.names / "busy-one").write_text(cid)
    with layout.container_lock(cid):
        _sweep_abandoned(layout)
        assert layout.container_dir(cid).exists() and (layout.names / "busy-one").exists()
    _sweep_abandoned(layout)
    assert not layout.container_dir(cid).exists() and not (layout.names / "busy-one").exists()
    assert not layout.container_lock(cid).path.exists()
