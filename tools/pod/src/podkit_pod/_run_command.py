"""The body of `pod run` and `pod create`, typer-free: the typer commands (cli_run) and
the fast argv path (fast_path) both call :func:`run_command` with the same parameters.

``params`` are the commands' keyword arguments by name, as typer passes them (see
cli_run's declaration); the result is the process exit code (podman's: the
container's own for an attached run, 0 otherwise).
"""

from __future__ import annotations

import os
import sys

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def own_error_code(exc: BaseException, code: int) -> int:
    """podman's convention for `pod`: 125 for the engine's own errors, 126/127 when the
    container's command cannot run."""
    from podkit_runtime import ContainerCannotStart

    if isinstance(exc, ContainerCannotStart):
        return exc.run_exit_code
    return errors.EXIT_RUN_OWN_ERROR


def pull_options(params: dict[str, Any]) -> dict[str, Any]:
    """podman's registry flags as podkit_image_pull.pull keyword arguments."""
    options: dict[str, Any] = {"tls_verify": params.get("tls_verify"),
                               "signature_policy": params.get("signature_policy"),
                               "authfile": params.get("authfile"),
                               "cert_dir": params.get("cert_dir")}
    if params.get("creds") is not None:  # may ask for a password: the registry module
        from podkit_image_pull.cli_registry import registry_options

        options.update(registry_options(creds=params["creds"], authfile=params.get("authfile"),
                                        cert_dir=params.get("cert_dir"), registries_conf=None,
                                        registries_conf_dir=None))
    return options


def run_options(verb: str, params: dict[str, Any]) -> Any:
    """RunOptions (podkit_pod._run) for the command line's parameters."""
    from podkit_pod._network import network_options
    from podkit_pod._run import RunOptions
    from podkit_runtime._cli_values import create_extras, log_extras

    p = params
    return RunOptions(
        image=p["image"], command=tuple(p.get("command") or ()), name=p.get("name"),
        remove=bool(p.get("rm")),
        network=_member_network(p) if p.get("pod") else  # a pod's: podkit_pod._pods
        network_options(p.get("network"), publish=p.get("publish"),
                                publish_all=bool(p.get("publish_all")), ip=p.get("ip"),
                                mac=p.get("mac_address"), add_host=p.get("add_host"),
                                dns=p.get("dns"), dns_search=p.get("dns_search"),
                                dns_option=p.get("dns_option")),
        platform=p.get("platform"), interactive=bool(p.get("interactive")),
        detach=verb == "run" and bool(p.get("detach")),
        create_extras={**create_extras(p), **log_extras(p)},
        pull_options=pull_options(p))


def _member_network(params: dict[str, Any]) -> Any:
    from podkit_pod._pods import member_network_options

    return member_network_options(params)


def run_command(verb: str, obj: Any, params: dict[str, Any]) -> int:
    """`pod run` (``verb`` "run") or `pod create` ("create"); ``obj`` holds the global
    options (podkit_common.cli_base.Globals)."""
    from podkit_runtime._cli_values import bundle_options

    if verb == "run" and params.get("tty") and not sys.stdin.isatty():
        raise errors.UsageError("--tty needs a terminal on stdin",
                                hint="leave out -t, or run from a terminal")
    opts = run_options(verb, params)
    bundle_opts = bundle_options(params)
    if verb == "create":
        from podkit_pod._create import create
        from podkit_runtime._timings import report

        try:
            doc = create(obj.roots, opts, bundle_opts, progress=obj.progress())
        finally:
            report()  # PODKIT_TRACE_TIMINGS's phases (nothing unless it is set)
        sys.stdout.write(doc["container"]["id"] + "\n")  # podman create prints the id
        return 0
    from podkit_runtime import _timings

    if _timings.ENABLED:
        try:
            return _run_body(obj, opts, bundle_opts, params)
        finally:
            _timings.report()
    return _run_body(obj, opts, bundle_opts, params)


def _run_body(obj: Any, opts: Any, bundle_opts: Any, params: dict[str, Any]) -> int:
    from podkit_pod._run import run as run_container

    # podman hands conmon its own stdin always; passthrough gives it to the container
    passthrough = opts.create_extras.get("log_driver") == "passthrough"
    stdin = (0 if opts.interactive or params.get("tty") or passthrough
             else os.open(os.devnull, os.O_RDONLY))
    doc = run_container(obj.roots, opts, bundle_opts, stdio=(stdin, 1, 2),
                        progress=obj.progress())
    if opts.detach:
        if opts.create_extras.get("log_driver") != "passthrough":  # stdout is the container's
            sys.stdout.write(doc["container"]["id"] + "\n")  # podman run -d prints the id
        return 0
    return int(doc["state"]["exit_code"])
