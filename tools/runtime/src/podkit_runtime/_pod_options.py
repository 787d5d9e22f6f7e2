"""``pod create``'s raw command parameters as :class:`PodOptions`, without typer: the
typer commands (``pod-runtime pod create``, ``pod pod create``) and ``pod``'s fast
path (podkit_pod.fast_path) read a command line into the same keyword arguments and
turn them into options here."""

from __future__ import annotations

from podkit_runtime._pod_record import PodOptions

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def infra_command(value: str | None) -> tuple[str, ...] | None:
    """podman's --infra-command: a JSON array, else words split on spaces."""
    if value is None or value.strip().startswith("["):
        from podkit_runtime._cli_values import parse_entrypoint

        return parse_entrypoint(value)
    return tuple(value.split()) or None


def pod_options(values: dict[str, Any]) -> PodOptions:
    """PodOptions from a command's raw parameters (their typer names)."""
    from podkit_common.keyvalues import key_values
    from podkit_runtime._isolation import bool_word

    return PodOptions(
        name=values.get("name"), share=values.get("share"), hostname=values.get("hostname"),
        labels=key_values(values.get("label"), "--label"),
        infra=bool_word(values.get("infra", True), "--infra"),
        infra_image=values.get("infra_image"),
        infra_command=infra_command(values.get("infra_command")),
        infra_name=values.get("infra_name"), cgroup_parent=values.get("cgroup_parent"),
        cpus=values.get("cpus"), memory=values.get("memory"),
        exit_policy=values.get("exit_policy") or "continue", network=values.get("network"),
        publish=tuple(values.get("publish") or ()), add_host=tuple(values.get("add_host") or ()),
        dns=tuple(values.get("dns") or ()), dns_search=tuple(values.get("dns_search") or ()),
        dns_option=tuple(values.get("dns_option") or ()))
