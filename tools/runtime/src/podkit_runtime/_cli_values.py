"""BundleOptions from a command line's raw values: one place for `pod-runtime bundle`
and `pod run`/`pod create`, which take the same podman option names.

``values`` is the typer command's parameters by name (its ``locals()``); names that are
not bundle options are ignored. No typer here: the CLIs declare, this module interprets.
"""

from __future__ import annotations

import os

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def parse_entrypoint(value: str | None) -> tuple[str, ...] | None:
    """podman's --entrypoint: a JSON array, a single string, or "" to clear it."""
    if value is None:
        return None
    if value.strip().startswith("["):
        from podkit_common.jsonio import loads

        parsed = loads(value, what="--entrypoint")
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise errors.UsageError("--entrypoint JSON must be an array of strings")
        return tuple(parsed)
    return () if value == "" else (value,)


def env_items(env: list[str] | None) -> tuple[str, ...]:
    """--env values; a bare KEY takes our own environment's value, or is dropped."""
    out = []
    for item in env or []:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return tuple(out)


def bundle_options(values: dict[str, Any]) -> Any:
    """The BundleOptions the command line asks for."""
    from podkit_runtime._isolation import cli_options
    from podkit_runtime._spec import BundleOptions

    def seq(key: str) -> tuple[str, ...]:
        return tuple(values.get(key) or ())

    return BundleOptions(
        command=seq("command"), entrypoint=parse_entrypoint(values.get("entrypoint")),
        env=env_items(values.get("env")), workdir=values.get("workdir"),
        user=values.get("user"), hostname=values.get("hostname"),
        tty=bool(values.get("tty")), read_only=bool(values.get("read_only")),
        env_files=seq("env_file"), group_add=seq("group_add"), init=bool(values.get("init")),
        init_path=values.get("init_path"), shm_size=values.get("shm_size"),
        volumes=seq("volume"), mounts=seq("mount"), tmpfs=seq("tmpfs"),
        image_volume=values.get("image_volume") or "bind", pod=values.get("pod") or None,
        **cli_options(values))


def create_extras(values: dict[str, Any]) -> dict[str, Any]:
    """CreateOptions' restart_policy and health from a command's values (the modules
    that check them load only when the options are given: `pod run`'s start-up)."""
    if values.get("restart"):
        from podkit_runtime._restart import parse_policy

        parse_policy(values["restart"])  # a bad policy fails before anything is made
    health = None
    if values.get("health_cmd"):  # no command, no healthcheck (health_config's rule)
        from podkit_runtime._health import health_config

        health = health_config(values["health_cmd"],
                               values.get("health_interval") or "30s",
                               values.get("health_retries") or 3,
                               values.get("health_start_period") or "0s",
                               values.get("health_timeout") or "30s",
                               values.get("health_on_failure") or "none")
    return {"restart_policy": values.get("restart"), "health": health}


def log_extras(values: dict[str, Any]) -> dict[str, Any]:
    """``CreateOptions`` keywords from a command's ``--log-driver``/``--log-opt``."""
    from podkit_runtime._log_options import parse_log_options

    config = parse_log_options(values.get("log_driver"), values.get("log_opt") or ())
    return {"log_driver": config.driver, "log_size_max": config.size_max}
