"""pyroute2's ``IPRoute`` without the rest of pyroute2.

``import pyroute2`` runs the package's ``__init__``, which imports every netlink family
it knows (NDB with sqlite3, IPDB, conntrack, nftables, wireguard, nl80211, plan9, ...):
about 190 modules and 10 MB of the daemon's resident memory, of which the daemon uses
``IPRoute``, ``NetlinkError`` and ``netns.setns``. Those modules import their own
dependencies as submodules (``from pyroute2 import config``), never the names the
package's ``__init__`` defines, so they load from a package object whose ``__init__`` has
not run: half the modules and memory.

The bare package is only installed when nothing has imported ``pyroute2`` yet. Any other
code that asks it for a name its ``__init__`` would have defined (``pyroute2.NDB``) gets
the whole package then, run in place (PEP 562 ``__getattr__``; submodules are still
imported alone), so nothing behaves differently, it only costs the memory at that point.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.RLock()


def _bare_package() -> None:
    with _lock:
        if "pyroute2" in sys.modules:
            return
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return  # not installed as a package: the imports below raise as usual
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader
        loaded = False

        def full_package(name: str) -> Any:
            nonlocal loaded
            if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
                return importlib.import_module(f"pyroute2.{name}")  # a submodule: no need for the rest
            with _lock:
                if not loaded:
                    loaded = True
                    del package.__dict__["__getattr__"]
                    loader.exec_module(package)
            try:
                return package.__dict__[name]
            except KeyError:
                raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

        package.__dict__["__getattr__"] = full_package
        sys.modules["pyroute2"] = package


def _package() -> ModuleType:
    _bare_package()
    return sys.modules["pyroute2"]


_package()

from pyroute2.iproute.linux import IPRoute  # type: ignore[import-untyped]  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]  # noqa: E402
from pyroute2.netns import setns  # type: ignore[import-untyped]  # noqa: E402

__all__ = ["IPRoute", "NetlinkError", "setns"]
