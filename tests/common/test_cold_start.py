"""Cold start: the hot commands import none of the heavy stdlib modules they do not need.

Every `pod run` pays its interpreter's imports before anything happens (orjson alone
cost ~20-40 ms through uuid, platform, dataclasses, inspect, ast and datetime). These
tests run the installed executables on a real store (busybox from the test registry)
with ``PYTHONPROFILEIMPORTTIME=1`` and fail when a forbidden module was imported. The
message names the module, what imported it (the importing file and line, from a
``sitecustomize`` hook that watches only these names) and its importer chain from the
importtime tree, so the next engineer knows what to make lazy.

``pathlib`` stays (every root is a Path); what it imports at its top and rarely uses
(``re`` and through it ``enum``, ``urllib.parse`` and through it ``ipaddress``) is
deferred by the fast paths (``podkit_common.deferred``), so the commands of `pod run`
and of a pod's creation and start must not load those for real either (:data:`LEAN`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed.env import make_env, podkit_environment

#: Heavy modules no hot command needs at start (see the module docstring).
FORBIDDEN = ("orjson", "dataclasses", "typing", "inspect", "ast", "uuid", "platform",
             "tempfile", "subprocess", "socket", "datetime", "hashlib")
#: What the commands of `pod run` and `pod-3` (issues #7, #9) must not load either: ~10 ms
#: of each of their starts (re, enum, json, urllib.parse, ipaddress; see the docstring).
LEAN_FORBIDDEN = ("re", "enum", "json", "urllib.parse", "ipaddress")
LEAN = ("run", "create", "start", "pod-create", "pod-start")

#: Written as ``sitecustomize.py`` on PYTHONPATH: reports the frame that first imports a
#: watched module (importtime shows a function-level import with no importer). It
#: imports nothing itself, so it changes nothing it measures.
_HOOK = '''
import sys

_WATCH = set(%r)


class _Who:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in _WATCH:
            _WATCH.discard(name)
            frame, where = sys._getframe(1), []
            while frame is not None and len(where) < 4:
                file = frame.f_code.co_filename
                if not file.startswith("<frozen"):
                    where.append("%%s:%%d" %% (file, frame.f_lineno))
                frame = frame.f_back
            sys.stderr.write("cold-start-importer: %%s %%s\\n" %% (name, " ".join(where)))
        return None


sys.meta_path.insert(0, _Who)
'''

def parse_importtime(stderr: str) -> dict[str, list[str]]:
    """Module -> its importer chain (nearest importer first) from ``-X importtime``
    output; the first process's tree wins where several wrote to the same stderr."""
    rows: list[tuple[int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.endswith("imported package"):
            continue
        name = line.split("|", 2)[2]
        stripped = name.lstrip(" ")
        rows.append(((len(name) - len(stripped) - 1) // 2, stripped.strip()))
    chains: dict[str, list[str]] = {}
    # A module's line comes after its imports' lines; its importer is the next line
    # one level up.
    for i, (level, name) in enumerate(rows):
        chain, want = [], level
        for up_level, up_name in rows[i + 1:]:
            if want == 0:
                break
            if up_level < want:
                chain.append(up_name)
                want = up_level
        chains.setdefault(name, chain)
    return chains


def parse_importers(stderr: str) -> dict[str, list[str]]:
    """Module -> the frames (file:line, innermost first) that first imported it."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("cold-start-importer: "):
            name, *frames = line.split(" ")[1:]
            out[name] = frames
    return out


def _short(frame: str) -> str:
    return frame.split("/src/", 1)[-1] if "/src/" in frame else frame


def check_cold(stderr: str, forbidden: tuple[str, ...] = FORBIDDEN) -> None:
    """Fail (AssertionError) on forbidden imports, naming each with who imported it."""
    chains = parse_importtime(stderr)
    assert chains, "no importtime output: was PYTHONPROFILEIMPORTTIME passed on?"
    importers = parse_importers(stderr)
    found = []
    for name in forbidden:
        if name not in chains:
            continue
        frames = importers.get(name, [])
        chain = chains[name]
        tree = " <- ".join([name, *chain]) if chain else f"{name} (a function-level import)"
        text = (f"{name}: imported at {' <- '.join(_short(f) for f in frames) or '?'}; "
                f"importtime chain: {tree}")
        found.append(text)
    if found:
        raise AssertionError("cold start imports heavy modules:\n  " + "\n  ".join(found))


def _profiled(env: dict[str, str], hook_dir: Path) -> dict[str, str]:
    return {**env, "PYTHONPROFILEIMPORTTIME": "1", "PYTHONPATH": str(hook_dir)}


def _hook(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "sitecustomize.py").write_text(_HOOK % (FORBIDDEN + LEAN_FORBIDDEN,))
    return path


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


# -- the parser itself ----------------------------------------------------------------

SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |       _datetime
import time:      2000 |       2100 |     datetime
import time:       300 |       2400 |   uuid
import time:       400 |       2800 | orjson
import time:       900 |        900 | subprocess
cold-start-importer: subprocess /x/src/podkit_runtime/_lifecycle.py:23 /y/src/podkit_pod/_run.py:9
"""


def test_parser_gives_each_module_its_importer_chain():
    chains = parse_importtime(SAMPLE)
    assert chains["_datetime"] == ["datetime", "uuid", "orjson"]
    assert chains["uuid"] == ["orjson"]
    assert chains["orjson"] == [] and chains["subprocess"] == []
    assert parse_importers(SAMPLE)["subprocess"][0].endswith("_lifecycle.py:23")


def test_check_names_the_offender_and_who_imported_it():
    with pytest.raises(AssertionError) as err:
        check_cold(SAMPLE)
    assert "datetime: imported at ?; importtime chain: datetime <- uuid <- orjson" in str(err.value)
    assert "subprocess: imported at " in str(err.value) and "_lifecycle.py:23" in str(err.value)


# -- `TOOL --version` ----------------------------------------------------------------

@pytest.mark.parametrize("tool", ["pod", "pod-image-pull", "pod-storage", "pod-runtime",
                                  "pod-netsetup"])
def test_version_is_cold(tool, tmp_path):
    env = _profiled(make_env(tmp_path / "root", tmp_path / "run"), _hook(tmp_path / "hook"))
    out = _run([tool, "--version"], env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"{tool} version ")
    check_cold(out.stderr)


# -- the hot commands on a real store -------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory, images) -> Iterator[tuple[dict[str, str], str, Path]]:
    """A store holding busybox (pulled from the test registry), its env, and the
    image's name; torn down like podkit_env."""
    base = tmp_path_factory.mktemp("cold")
    with podkit_environment(base) as env:
        image = images.ref("busybox:latest").removeprefix("docker://")
        pulled = _run(["pod", "pull", "-q", "--tls-verify=false", image], env)
        assert pulled.returncode == 0, pulled.stderr
        # The first container of a store has pod-runtime parse containers.conf (tomllib:
        # typing, datetime) into a cache: measure the starts after it, as users pay them.
        first = _run(["pod", "run", "--rm", "--network", "none", image, "true"], env)
        assert first.returncode == 0, first.stderr
        yield env, image, _hook(base / "hook")


#: id -> (setup commands, the measured command); IMAGE is the pulled busybox.
COMMANDS = {
    "run": ([], ["run", "--rm", "--network", "none", "IMAGE", "true"]),
    "create": ([], ["create", "--name", "cold-create", "IMAGE", "true"]),
    "start": ([["create", "--name", "cold-start", "IMAGE", "true"]], ["start", "cold-start"]),
    "ps": ([], ["ps", "-a"]),
    "images": ([], ["images"]),
    # The first pod of a store builds the pause image (digests: hashlib); measure the next.
    "pod-create": ([["pod", "create", "--name", "cold-pod-first"]],
                   ["pod", "create", "--name", "cold-pod"]),
    "pod-start": ([["pod", "create", "--name", "cold-pod-start"],
                   ["create", "--pod", "cold-pod-start", "IMAGE", "true"]],
                  ["pod", "start", "cold-pod-start"]),
}


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
@pytest.mark.parametrize("case", list(COMMANDS))
def test_hot_command_is_cold(case, store):
    env, image, hook = store
    setup, argv = COMMANDS[case]
    fill = lambda args: ["pod", *(image if a == "IMAGE" else a for a in args)]  # noqa: E731
    for step in setup:
        done = _run(fill(step), env)
        assert done.returncode == 0, (step, done.stderr[-2000:])
    out = _run(fill(argv), _profiled(env, hook))
    assert out.returncode == 0, out.stderr[-3000:]
    check_cold(out.stderr, FORBIDDEN + (LEAN_FORBIDDEN if case in LEAN else ()))


def test_hook_imports_nothing(tmp_path):
    """The observer must not change what it observes: sitecustomize imports nothing."""
    env = {**os.environ, "PYTHONPATH": str(_hook(tmp_path)), "PYTHONPROFILEIMPORTTIME": "1"}
    out = _run([sys.executable, "-c", "import sitecustomize"], env)
    chains = parse_importtime(out.stderr)
    assert "sitecustomize" in chains
    assert [m for m, chain in chains.items() if chain[:1] == ["sitecustomize"]] == []
