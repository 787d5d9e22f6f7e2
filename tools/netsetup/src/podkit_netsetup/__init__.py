"""podkit_netsetup: container networks through CNI plugins.

So far only the modes that need no plugin: ``none`` (the container's own, empty
network namespace) and ``host``. Library API: ``attach(doc, network) -> doc``,
``detach(doc) -> doc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podkit_common.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["attach", "detach"]

__getattr__, __dir__ = lazy_exports(__name__, {"attach": "_attach", "detach": "_attach"},
                                    __all__)

if TYPE_CHECKING:
    from podkit_netsetup._attach import attach, detach
