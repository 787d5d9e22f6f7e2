"""A CNI 1.0.0 runtime: run a conflist's plugin chain for ADD, CHECK and DEL.

For each plugin the runtime builds its stdin from the plugin's own object with the
network's ``name`` and ``cniVersion`` injected, the previous plugin's result as
``prevResult`` (for DEL and CHECK: the cached result of the whole ADD), and
``runtimeConfig`` holding only the capability args the plugin declares ``true``.
The environment is ours plus CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_ARGS and CNI_PATH. ADD runs the plugins in order; DEL in reverse order and goes
on past a failing plugin, so one broken step does not leak the others' state.

The subprocess runner is a seam (:class:`PluginRunner`) so the chain logic tests
without plugins.
"""

from __future__ import annotations

import os

from podkit_common import errors
from podkit_common.jsonio import dumps, loads
from podkit_common.records import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PLUGIN_DIRS = ("/usr/local/libexec/cni", "/usr/libexec/cni", "/usr/local/lib/cni",
               "/usr/lib/cni", "/opt/cni/bin")
PLUGIN_TIMEOUT = 60.0


def plugin_path() -> list[str]:
    """Where plugins are looked up: $PODKIT_CNI_PATH (colon-separated), else podman's list."""
    env = os.environ.get("PODKIT_CNI_PATH")
    return env.split(":") if env else [d for d in PLUGIN_DIRS if os.path.isdir(d)]


def find_plugin(kind: str, dirs: list[str]) -> str:
    for d in dirs:
        candidate = os.path.join(d, kind)
        if os.access(candidate, os.X_OK):
            return candidate
    raise errors.NotFound(f"CNI plugin {kind!r} not found in {':'.join(dirs)}",
                          hint="install containernetworking-plugins (or set PODKIT_CNI_PATH)")


@record(frozen=True)
class RuntimeConf:
    """What the runtime knows about one attachment (libcni's RuntimeConf)."""

    container_id: str
    netns: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()
    capability_args: dict[str, Any] = field(default_factory=dict)

    def cni_args(self) -> str:
        return ";".join(f"{k}={v}" for k, v in (("IgnoreUnknown", "1"), *self.args))


class PluginFailed(errors.RuntimeFailure):
    """A plugin answered with a CNI error (``code``, ``msg``, ``details``)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message, hint="see the plugin's message; PODKIT_DEBUG=1 for more")
        self.code = code


#: (argv0, env, stdin bytes) -> (returncode, stdout bytes, stderr bytes)
if TYPE_CHECKING:
    PluginRunner = Callable[[str, dict[str, str], bytes], tuple[int, bytes, bytes]]


def run_plugin_process(binary: str, env: dict[str, str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run one plugin (podkit_common.spawn: subprocess's import, ~15 ms with locale,
    selectors and threading, was most of a bridge attach's own start); errors.Timeout
    when it does not answer in PLUGIN_TIMEOUT seconds (it is killed)."""
    from podkit_common.spawn import run

    proc = run([binary], env=env, timeout=PLUGIN_TIMEOUT, input=stdin)
    return proc.returncode, proc.stdout, proc.stderr


def plugin_stdin(plugin: dict[str, Any], conflist: dict[str, Any], rt: RuntimeConf,
                 prev_result: dict[str, Any] | None) -> dict[str, Any]:
    """The config one plugin reads on stdin (pure)."""
    conf = {**plugin, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
    conf.pop("runtimeConfig", None)
    caps = {k for k, v in (plugin.get("capabilities") or {}).items() if v}
    runtime = {k: v for k, v in rt.capability_args.items() if k in caps}
    if runtime:
        conf["runtimeConfig"] = runtime
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


@record
class CniRuntime:
    dirs: list[str] = field(default_factory=plugin_path)
    runner: PluginRunner = run_plugin_process

    def invoke(self, command: str, plugin: dict[str, Any], conflist: dict[str, Any],
               rt: RuntimeConf, prev_result: dict[str, Any] | None) -> dict[str, Any] | None:
        binary = find_plugin(plugin["type"], self.dirs)
        env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": rt.container_id,
               "CNI_NETNS": rt.netns, "CNI_IFNAME": rt.ifname, "CNI_ARGS": rt.cni_args(),
               "CNI_PATH": ":".join(self.dirs)}
        stdin = dumps(plugin_stdin(plugin, conflist, rt, prev_result))
        what = f"CNI {command} {conflist['name']}/{plugin['type']} ({rt.ifname})"
        try:
            code, out, err = self.runner(binary, env, stdin)
        except errors.Timeout:
            raise errors.Timeout(f"{what}: plugin did not answer in {PLUGIN_TIMEOUT:g}s") from None
        except OSError as exc:
            raise errors.RuntimeFailure(f"{what}: cannot run {binary}: {exc}") from None
        if code != 0:
            try:
                reply = loads(out)
                msg = reply.get("msg") or reply.get("message") or ""
                if reply.get("details"):
                    msg += f" ({reply['details']})"
                raise PluginFailed(f"{what} failed: {msg}", reply.get("code"))
            except (errors.InvalidDocument, AttributeError):
                detail = (err or out).decode(errors="replace").strip()[-500:]
                raise PluginFailed(f"{what} failed (exit {code}): {detail}") from None
        if command != "ADD":
            return None
        try:
            return loads(out, what=f"{what} result")
        except errors.InvalidDocument as exc:
            raise PluginFailed(str(exc)) from None

    def add(self, conflist: dict[str, Any], rt: RuntimeConf) -> dict[str, Any]:
        """ADD through the chain in order; each plugin gets the previous one's result."""
        result: dict[str, Any] | None = None
        for plugin in conflist["plugins"]:
            result = self.invoke("ADD", plugin, conflist, rt, result)
        return result or {"cniVersion": conflist["cniVersion"]}

    def check(self, conflist: dict[str, Any], rt: RuntimeConf, cached: dict[str, Any]) -> None:
        for plugin in conflist["plugins"]:
            self.invoke("CHECK", plugin, conflist, rt, cached)

    def delete(self, conflist: dict[str, Any], rt: RuntimeConf,
               cached: dict[str, Any] | None) -> list[str]:
        """DEL through the chain in reverse; returns the failures (it never stops early)."""
        failures = []
        for plugin in reversed(conflist["plugins"]):
            try:
                self.invoke("DEL", plugin, conflist, rt, cached)
            except errors.PodkitError as exc:
                failures.append(exc.message)
        return failures


def result_summary(result: dict[str, Any], ifname: str) -> dict[str, Any]:
    """The interface, MAC, addresses and gateway a CNI result gives ``ifname`` (pure)."""
    interfaces = result.get("interfaces") or []
    idx = next((i for i, itf in enumerate(interfaces)
                if itf.get("name") == ifname and itf.get("sandbox")), None)
    mac = interfaces[idx].get("mac") if idx is not None else None
    addrs = [ip for ip in result.get("ips") or []
             if idx is None or ip.get("interface") in (None, idx)]
    return {"interface": ifname, "mac": mac,
            "addresses": [ip["address"] for ip in addrs],
            "gateway": next((ip.get("gateway") for ip in addrs if ip.get("gateway")), None)}

