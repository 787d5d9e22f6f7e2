"""Run real shell pipelines the way a user would type them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping


def sh(
    cmd: str,
    env: Mapping[str, str] | None = None,
    input: bytes | str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run cmd with `bash -o pipefail -c`, capturing stdout/stderr as bytes (never raises
    on a non-zero exit). On timeout the whole process group is killed and
    subprocess.TimeoutExpired is raised with what was captured so far.
    """
    data = input.encode() if isinstance(input, str) else input
    args = ["bash", "-o", "pipefail", "-c", cmd]
    # Own session, so a timeout can kill every stage of the pipeline, not just bash.
    with subprocess.Popen(
        args,
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(args, timeout, out, err) from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)
