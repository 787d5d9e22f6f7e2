"""Demo registry: `python -m tests.testbed serve|stop --state-dir DIR`.

serve starts (or reuses) a detached registry recorded in DIR/registry.json, pushes the
standard images and prints {"url", "pid", "images": {name: digest}} on stdout.
stop terminates the recorded registry by pid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .registry import LocalRegistry, is_registry_process, registry_answers, stop_pid
from .standard import push_standard

RECORD = "registry.json"


def _read_record(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None


def _running(record: dict[str, Any] | None) -> bool:
    return bool(
        record
        and is_registry_process(record["pid"], Path(record["config"]))
        and registry_answers(record["url"])
    )


def serve(state_dir: Path) -> dict[str, Any]:
    """Ensure a detached registry for state_dir is up, push the standard set, describe it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record = _read_record(state_dir)
    if not _running(record):
        reg = LocalRegistry(state_dir / "registry", detach=True).start()
        record = {"url": reg.url, "pid": reg.pid, "config": str(reg.config_path),
                  "log": str(reg.log_path)}
        tmp = state_dir / (RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(state_dir / RECORD)
    assert record is not None
    pushed = push_standard(record["url"])
    return {"url": record["url"], "pid": record["pid"], "images": pushed.digests}


def stop(state_dir: Path) -> dict[str, Any]:
    """Stop the registry recorded in state_dir (only if the pid still is that registry)."""
    record = _read_record(state_dir)
    stopped = False
    if record and is_registry_process(record["pid"], Path(record["config"])):
        stopped = stop_pid(record["pid"])
    (state_dir / RECORD).unlink(missing_ok=True)
    return {"stopped": stopped, "pid": record["pid"] if record else None}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["serve", "stop"])
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    result = serve(args.state_dir) if args.command == "serve" else stop(args.state_dir)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
