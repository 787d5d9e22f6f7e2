"""Configured containers: podman's create, which makes no process until start.

    configure   the record (``"configured": true`` and the create options), no conmon,
                no runc; the bundle is there, and the network section applied to it
                (a pod member joins the infra's namespaces only at init)
    init        conmon + ``runc create`` (``_lifecycle.create`` with the configured
                record); the record keeps its create-time fields (created_at, name...)
    start       init first, then ``runc start`` (``_lifecycle.start``); `pod pod start`
                inits and starts the infra, then every member at once
    init_container   podman's ``container init`` (library only: no CLI yet)

A configured container shows as podman shows one: status "created", pid 0, conmon pid 0
(``_state.observe``). Commands on it, podman's rules: ``kill`` refuses ("can only kill
running containers"), ``stop`` does nothing, ``rm`` needs no force and no runc, ``wait``
waits for its exit after a start, ``cleanup`` leaves it alone (pod's cleanup keeps its
rootfs mount and network too), ``logs`` shows nothing. pod-netsetup's cleanup does not
count its network as stale (no process uses it yet: ``record_is_stale``).

A start killed half-way (chaos) leaves the record configured, perhaps with a conmon and
runc's state of that try: the next init kills and deletes them before it begins again.
"""

from __future__ import annotations

import time

from podkit_common import errors
from podkit_runtime import _state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from podkit_common.roots import Roots

#: the CreateOptions fields a configured record keeps for its init (not the stdio fds:
#: a passthrough container gets those of the command that starts it)
_OPTION_FIELDS = ("stdin", "tty", "remove", "log_size_max", "log_driver", "stop_signal",
                  "stop_timeout", "exit_command", "restart_policy", "health")
#: what init (conmon + runc create) adds to a configured record; everything else stays
_INIT_FIELDS = ("pid", "conmon_pid", "conmon_start", "conmon_cgroup", "doc", "tty")


def is_configured(record: dict[str, Any] | None) -> bool:
    return bool(record and record.get("configured"))


def configure(doc: dict[str, Any], roots: Roots, opts: Any,
              extra_fields: dict[str, Any]) -> dict[str, Any]:
    """The configured record for the bundle in ``doc`` (checked by ``_lifecycle.create``
    first); returns ``doc`` with ``state`` (created, pid 0)."""
    from podkit_runtime._container_events import emit
    from podkit_runtime._lifecycle import new_record, state_section
    from podkit_runtime._state import ContainerPaths

    cid = doc["container"]["id"]
    name = doc["container"].get("name") or cid[:12]
    paths = ContainerPaths(roots, cid)
    section = doc["bundle"].get("pod")
    if not section or section.get("infra"):
        # A member's network is the infra's, known once the infra runs (init).
        from podkit_runtime._run import prepare_bundle

        prepare_bundle(doc)
    tty = opts.tty or bool(doc["bundle"].get("tty"))
    if opts.log_driver == "passthrough":
        from podkit_runtime._log_options import check_passthrough

        check_passthrough(opts.log_driver, tty, opts.passthrough_stdio)
    record = new_record(doc, opts, paths, time.time(), tty=tty, pod=section, **extra_fields,
                        configured=True, create_options=options_fields(opts))
    with _state.lock(roots, cid):
        if paths.record.exists():
            raise errors.Conflict(f"container {name} ({cid[:12]}) already exists",
                                  hint="pod-runtime start it, or rm it first")
        _state.save_record(roots, record)
        emit(roots, record, "create")
    return {**doc, "changed": True, "state": state_section(record, _state.observe(roots, record))}


def options_fields(opts: Any) -> dict[str, Any]:
    out = {k: getattr(opts, k) for k in _OPTION_FIELDS}
    if out["exit_command"] is not None:
        out["exit_command"] = list(out["exit_command"])
    return out


def options_of(record: dict[str, Any]) -> Any:
    """The CreateOptions a configured record was made with (pure)."""
    from podkit_runtime._lifecycle import CreateOptions

    fields = dict(record.get("create_options") or {})
    if fields.get("exit_command") is not None:
        fields["exit_command"] = tuple(fields["exit_command"])
    return CreateOptions(**{k: v for k, v in fields.items() if k in _OPTION_FIELDS})


def merged(configured: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """The record after init: the configured one (its create time, name, restart and
    health fields, anything a rename changed) plus what conmon and runc made (pure)."""
    out = {k: v for k, v in configured.items() if k not in ("configured", "create_options")}
    for key in _INIT_FIELDS:
        if key in made:
            out[key] = made[key]
    out["stopped_by_user"] = False  # a stop before its first start stopped nothing
    return out


def init(roots: Roots, record: dict[str, Any]) -> dict[str, Any]:
    """podman's init of a configured container (the caller holds its lock): conmon +
    ``runc create``; returns the record now "created" under conmon. A failure leaves it
    configured (podman's start of it fails the same way each time)."""
    from podkit_runtime._lifecycle import _abandon, _runc_delete, create
    from podkit_runtime._state import ContainerPaths

    cid = record["id"]
    paths = ContainerPaths(roots, cid)
    _abandon(paths)  # a start killed mid-init: its conmon, runc's state, exit file
    if (paths.run_dir / "conmon.log").exists():  # an earlier try: a conmon not in its pidfile
        from podkit_runtime._leftovers import sweep

        sweep(paths, _runc_delete)
    doc = dict(record.get("doc") or {})
    doc["container"] = {**doc.get("container", {}), "name": record["name"]}
    try:
        try:
            create(doc, roots, options_of(record), configured=record)
        except errors.RuntimeFailure as exc:
            from podkit_runtime._leftovers import leftover_failure, sweep

            if not leftover_failure(exc.message):
                raise
            # runc met the state of an earlier try after all: sweep, and once more
            if not paths.record.exists():
                _state.save_record(roots, record)
            sweep(paths, _runc_delete)
            create(doc, roots, options_of(record), configured=record)
    except BaseException as exc:
        # create's failure path removes the container's files: it stays configured
        if not paths.record.exists():
            _state.save_record(roots, record)
        if isinstance(exc, errors.RuntimeFailure) and hasattr(exc, "run_exit_code"):
            # podman's start says 125 where its run says 126/127
            raise errors.RuntimeFailure(f'unable to start container "{cid}": {exc.message}',
                                        hint=exc.hint) from None
        raise
    return _state.load_record(roots, cid)


def init_container(roots: Roots, ref: str) -> dict[str, Any]:
    """podman's ``container init``: a configured container gets its conmon and ``runc
    create`` (its process waits for start); one already created is left as it is."""
    from podkit_runtime._lifecycle import document, sync

    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if not is_configured(record):
            if seen.status == "created":
                return document(record, seen, False)
            raise errors.Conflict(f"container {cid} has already been created in runtime: "
                                  "container state improper",
                                  hint="init is for containers that never ran")
        record = init(roots, record)
        return document(record, _state.observe(roots, record), True)


def refuse_kill(record: dict[str, Any]) -> None:
    """podman's kill of a container that never ran."""
    raise errors.Conflict(f"can only kill running containers. {record['id']} is in state "
                          "created: container state improper", hint="pod start it first")
