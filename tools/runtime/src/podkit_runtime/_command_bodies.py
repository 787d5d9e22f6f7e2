"""Bodies of hot `pod-runtime` commands, typer-free: the typer command (cli_lifecycle)
and the fast argv path (fast_path) call the same function with the same parameters."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def cleanup_body(obj: Any, p: dict[str, Any]) -> None:
    """conmon's exit command (`pod-runtime cleanup [--rm] ID`): record the exit code,
    runc delete (and remove with --rm); prints the document."""
    from podkit_common.jsonio import write_document
    from podkit_runtime._lifecycle import cleanup

    write_document(cleanup(obj.roots, p["container"], remove_after=p["rm"]))
