"""An attached `pod run --rm`: runc delete runs alongside the removals (_attached_rm).

Against real conmon, runc and overlayfs: the exit code comes back, nothing of the
container is left (record, run directory, bundle, runc state, lock file, processes),
and a poststop hook, which runc delete runs, still finds the bundle in place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.test_lifecycle import leftovers, run_cli, runc_ids

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


def _nothing_left(env: dict[str, str], tmp_path: Path) -> None:
    root, runroot = Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"])
    assert list((root / "runtime" / "containers").iterdir()) == []
    assert [p.name for p in (runroot / "runtime").iterdir()
            if p.name not in ("exits", "versions.json")] == []
    assert list((runroot / "bundles").iterdir()) == []
    assert [p.name for p in (root / "locks").iterdir() if p.name.startswith("runtime-")] == []
    assert runc_ids(env) == []
    assert leftovers(tmp_path) == []


def test_attached_rm_returns_the_exit_code_and_leaves_nothing(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    proc = run_cli(f"pod run --rm --network none --tls-verify=false {ref} "
                   "sh -c 'echo bye; exit 5'", podkit_env)
    assert (proc.returncode, proc.stdout) == (5, b"bye\n"), proc.stderr
    _nothing_left(podkit_env, tmp_path)


def test_a_poststop_hook_still_sees_the_bundle(images, podkit_env, tmp_path):
    ref = images.ref("busybox:latest").removeprefix("docker://")
    marks = tmp_path / "marks"
    marks.mkdir()
    hook = tmp_path / "hook.sh"
    # the state on stdin names the bundle; note whether its config.json is still there
    hook.write_text("#!/bin/sh\nstate=$(cat)\n"
                    "bundle=$(echo \"$state\" | sed 's/.*\"bundle\": *\"\\([^\"]*\\)\".*/\\1/')\n"
                    f"if [ -e \"$bundle/config.json\" ]; then echo present > {marks}/seen; "
                    f"else echo gone > {marks}/seen; fi\n")
    hook.chmod(0o755)
    hooks = tmp_path / "hooks.d"
    hooks.mkdir()
    (hooks / "50-poststop.json").write_text(json.dumps({
        "version": "1.0.0", "hook": {"path": str(hook), "timeout": 10},
        "when": {"always": True}, "stages": ["poststop"]}))
    proc = run_cli(f"pod run --rm --network none --hooks-dir {hooks} --tls-verify=false "
                   f"{ref} true", podkit_env)
    assert proc.returncode == 0, proc.stderr
    assert (marks / "seen").read_text() == "present\n"
    _nothing_left(podkit_env, tmp_path)
