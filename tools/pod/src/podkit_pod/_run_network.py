"""`pod run`'s network work, overlapped with the runtime's.

A bridge attach is mostly process starts: the bridge plugin (with host-local and a
handful of iptables calls for masquerading) and the firewall plugin (more iptables
calls), ~100 ms on this kind of machine; ``runc create`` under conmon takes about as
long. Neither needs the other until ``runc start``: runc joins the namespace by its
path, which exists before any plugin runs, and the container's /etc/hosts is
bind-mounted, so its addresses can be written in place afterwards. So::

    begin (netns + record) -> [CNI ADD  ||  conmon + runc create] -> members, hosts -> runc start

and at the end, DEL starts as soon as the exit file appears, alongside runc delete and
the removal of the runtime record, bundle and storage container; `pod run` returns once
both are done, as podman's `run --rm` returns once its cleanup (network included) is.

Failure in either branch undoes both: a failed ADD is undone (DEL of what ran, lease,
namespace, record) once runc create is over (the namespace must not vanish under it),
and the caller removes the created container; a failed create waits for the ADD to end
and then DELs it. The
attachment record is written before each ADD, as for `pod-netsetup attach`, so a kill -9
at any point leaves what `pod-netsetup cleanup` releases.
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class _Branch:
    """One call in a thread of its own; its exception is kept for :meth:`join`."""

    def __init__(self, name: str, fn: Callable[[], None]) -> None:
        import threading

        self.error: BaseException | None = None
        self._fn = fn
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # handed to the joining thread
            self.error = exc

    def join(self) -> None:
        self._thread.join()


class OverlappedNetwork:
    """The container's attachment, run beside the runtime (see the module docstring)."""

    def __init__(self, doc: dict[str, Any], roots: Roots, network: Any) -> None:
        from podkit_netsetup import begin_attach

        self._roots = roots
        self._pending = begin_attach(doc, network, roots=roots)
        #: the document to create the container from: the section without addresses
        self.doc: dict[str, Any] = self._pending.doc
        self.failed = False
        self._add = _Branch("podkit-cni-add",
                            lambda: self._pending.run_plugins(undo_on_failure=False)) \
            if self._pending.has_plugins else None
        self._delete: _Branch | None = None

    def before_start(self, _created: dict[str, Any]) -> dict[str, Any]:
        """The runtime's hook between runc create and runc start: wait for ADD, register
        the member; the document with the complete section."""
        if self._add is not None:
            self._add.join()
            if self._add.error is not None:
                self.failed = True
                self._pending.abort()  # runc create is over: the namespace may go
                raise self._add.error
        try:
            self.doc = self._pending.complete()
        except BaseException:
            self.failed = True
            raise
        return self.doc

    def on_exit(self) -> None:
        """The runtime's hook once the container exited: start DEL."""
        from podkit_pod._network import release_network

        if self._delete is None and self._pending.has_plugins:
            doc = self.doc
            self._delete = _Branch("podkit-cni-del", lambda: release_network(doc, self._roots))

    def release(self, keep: bool) -> None:
        """At the end of `pod run`, also after a failure: wait for whatever still runs,
        then DEL unless ``keep`` (a detached container running on). Never raises."""
        from podkit_pod._network import release_network

        if self._add is not None:
            self._add.join()
        if self._delete is not None:
            self._delete.join()
            return
        if keep and not self.failed:
            return
        # The record may be incomplete (create failed before complete(), or ADD failed):
        # DEL from it. abort() is a no-op once complete() or an earlier abort() ran.
        with contextlib.suppress(errors.PodkitError, OSError):
            self._pending.abort()
        release_network(self.doc, self._roots)
