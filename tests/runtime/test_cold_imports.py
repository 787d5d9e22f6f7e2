"""The runtime's share of `pod run`'s cold start: what its run path imports.

Every module below is loaded by each `pod run` before the container starts (or by
`pod-runtime cleanup`, conmon's exit command after every exit). What they pull in on top
of the podkit_common modules they use is checked against stdlib modules that cost
milliseconds each and that the run path does without: dataclasses (podkit_common.records
instead), typing (annotations only), subprocess (``_spawn``), socket (``_socket`` for
conmon's socketpairs), shutil, tempfile, hashlib, and the modules orjson dragged in.
The attached tail (``_attach``, ``_tty``: selectors, termios, signal) is loaded while
runc creates the container, off the path; it is held to the same list.
"""

from __future__ import annotations

import os
import subprocess
import sys

#: the runtime modules a `pod run` loads before conmon starts, and the exit command's
RUN_PATH = (
    "podkit_runtime._bundle", "podkit_runtime._bundle_prep", "podkit_runtime._cli_values",
    "podkit_runtime._conmon", "podkit_runtime._conmon_cgroup",
    "podkit_runtime._container_events", "podkit_runtime._freezer", "podkit_runtime._hooks",
    "podkit_runtime._hostfacts", "podkit_runtime._image_config", "podkit_runtime._isolation",
    "podkit_runtime._layout", "podkit_runtime._lifecycle", "podkit_runtime._log_options",
    "podkit_runtime._mounts", "podkit_runtime._namespaces", "podkit_runtime._netfiles",
    "podkit_runtime._parse_units", "podkit_runtime._process_opts",
    "podkit_runtime._resources", "podkit_runtime._restart", "podkit_runtime._rootfs_paths",
    "podkit_runtime._run", "podkit_runtime._runc", "podkit_runtime._seccomp",
    "podkit_runtime._security", "podkit_runtime._shm", "podkit_common.spawn",
    "podkit_runtime._spec", "podkit_runtime._state", "podkit_runtime._timings",
    "podkit_runtime._users", "podkit_runtime._volumes", "podkit_runtime._command_bodies",
    "podkit_runtime.fast_path",
)
#: the shared modules they build on (their own imports are podkit_common's business)
COMMON = ("podkit_common.atomic", "podkit_common.errors", "podkit_common.roots",
          "podkit_common.locks", "podkit_common.records", "podkit_common.jsonio",
          "podkit_common.events", "podkit_common.cli_base", "podkit_common.inplace",
          "podkit_common.keyvalues", "podkit_common.lazy", "podkit_common.fastargs")
FORBIDDEN = ("dataclasses", "typing", "subprocess", "socket", "selectors", "shutil",
             "tempfile", "hashlib", "_hashlib", "uuid", "datetime", "platform", "orjson",
             "inspect", "ast")

_PROBE = """
import sys
for name in {common!r}:
    __import__(name)
before = set(sys.modules)
for name in {run_path!r}:
    __import__(name)
print(" ".join(sorted(set(sys.modules) - before)))
"""


def _added_by_run_path() -> set[str]:
    code = _PROBE.format(common=COMMON, run_path=RUN_PATH)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_run_path_imports_none_of_the_expensive_stdlib_modules():
    added = _added_by_run_path()
    assert "podkit_runtime._lifecycle" in added  # the probe did import the run path
    assert sorted(added & set(FORBIDDEN)) == []


def test_the_attached_tail_stays_light_too():
    # loaded while runc creates the container: off the critical path, but CPU all the same
    tail = ("podkit_runtime._attach", "podkit_runtime._tty", "podkit_runtime._attached_restart",
            "podkit_runtime._attached_rm", "podkit_runtime._versions")
    code = _PROBE.format(common=COMMON, run_path=(*RUN_PATH, *tail))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    allowed = {"selectors"}  # the attach pump waits on the socket and stdin with it
    assert sorted(set(done.stdout.split()) & (set(FORBIDDEN) - allowed)) == []


def test_the_attached_tail_is_not_on_the_run_path():
    # loaded while runc creates the container (_run.prepare_attached), not before
    added = _added_by_run_path()
    assert sorted(added & {"podkit_runtime._attach", "podkit_runtime._tty", "termios",
                           "podkit_runtime._health", "podkit_runtime._versions"}) == []
