"""Which plugins of a conflist have work to do for one attachment (pure).

podkit's default bridge conflist is podman's: bridge, portmap, firewall, tuning. For a
container without published ports portmap's ADD only passes the previous result on,
and for one without a MAC address tuning does nothing either; each still costs a
process start at ADD and another at DEL (~20 ms apiece). The plan drops such plugins
and the attachment record stores the conflist that ran, so DEL runs exactly the
plugins ADD ran, also after a crash or once the network's conflist has changed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


#: plugin type -> (capability args, CNI_ARGS keys) that are its only inputs when its
#: object holds nothing but ``type`` and ``capabilities``: with none of them set for
#: this container, ADD changes nothing and DEL has nothing to undo.
IDLE_WITHOUT: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "portmap": (frozenset({"portMappings"}), frozenset()),
    "tuning": (frozenset({"mac"}), frozenset({"MAC"})),
}
_INERT_KEYS = frozenset({"type", "capabilities"})


def plugin_is_idle(plugin: dict[str, Any], capability_args: dict[str, Any],
                   cni_args: list[tuple[str, str]] | list[list[str]]) -> bool:
    """True when ``plugin`` would do nothing for this container (pure)."""
    inputs = IDLE_WITHOUT.get(plugin.get("type", ""))
    if inputs is None or set(plugin) - _INERT_KEYS:
        return False
    caps, arg_keys = inputs
    declared = {k for k, v in (plugin.get("capabilities") or {}).items() if v}
    if any(capability_args.get(k) for k in caps & declared):
        return False
    return not any(kv[0] in arg_keys and kv[1] for kv in cni_args)


def active_conflist(conflist: dict[str, Any], capability_args: dict[str, Any],
                    cni_args: list[tuple[str, str]] | list[list[str]]
                    ) -> tuple[dict[str, Any], list[str]]:
    """``conflist`` without its idle plugins, and the types left out (pure). The first
    plugin (the one owning the interface and IPAM) always stays."""
    plugins = conflist["plugins"]
    keep = plugins[:1] + [p for p in plugins[1:]
                          if not plugin_is_idle(p, capability_args, cni_args)]
    skipped = [p.get("type", "") for p in plugins[1:] if not any(p is k for k in keep)]
    if not skipped:
        return conflist, []
    return {**conflist, "plugins": keep}, skipped
