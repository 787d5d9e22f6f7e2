"""podkit_netsetup: container networks through CNI plugins.

Library API (plain JSON-able data in and out):

- ``attach(doc, network_or_options, roots=None) -> doc`` and ``detach(doc, roots=None)``:
  add or undo the document's ``network`` section (modes ``none``, ``host``,
  ``NAME[,NAME]``, ``container:ID``, ``ns:PATH``; options in :class:`AttachOptions`);
- ``begin_attach(...)``: the same attach in two halves (namespace first, plugins
  while the runtime creates the container), for ``pod run``;
- ``check_networks(doc)`` (CNI CHECK), ``network_status(doc)``, ``cleanup(roots)``;
- ``NetworkStore(roots, config_dir)`` with ``create(NetworkSpec)``, ``names()``,
  ``report()``, ``remove()``, ``prune()``, ``exists()``.

Errors are podkit_common.errors classes (tree in that module).
"""

from __future__ import annotations

from podkit_common.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start

__version__ = "0.1.0"

__all__ = ["AttachOptions", "NetworkSpec", "NetworkStore", "attach", "begin_attach",
           "check_networks", "cleanup", "detach", "network_status"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "AttachOptions": "_attach", "attach": "_attach", "begin_attach": "_attach",
    "detach": "_attach",
    "check_networks": "_attach", "network_status": "_attach", "cleanup": "_cleanup",
    "NetworkSpec": "_networks", "NetworkStore": "_networks"}, __all__)

if TYPE_CHECKING:
    from podkit_netsetup._attach import (
        AttachOptions,
        attach,
        begin_attach,
        check_networks,
        detach,
        network_status,
    )
    from podkit_netsetup._cleanup import cleanup
    from podkit_netsetup._networks import NetworkSpec, NetworkStore
