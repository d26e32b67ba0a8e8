"""aiohttp's server without its client, until something asks for the client.

``import aiohttp`` runs the package's ``__init__``, which imports the HTTP client
(``ClientSession``, connectors, cookie jars, happy eyeballs, attrs): 4.4 MB of the daemon's
resident memory. The API server needs ``aiohttp.web`` only; the client serves registry
pulls and pushes and the dashboard. The server's modules import their neighbours as
submodules (``from .helpers import ...``; ``from . import __version__``, preset here), so
they load from a package object whose ``__init__`` has not run.

:func:`install` puts that bare package in ``sys.modules`` when nothing has imported
aiohttp yet. The first time any code asks it for a name its ``__init__`` defines
(``aiohttp.ClientSession``) the real ``__init__`` runs in place, in the same module
object, and that name is returned: nothing behaves differently, the client only costs
its memory from then on. Submodules asked for by name (``from aiohttp import web``) are
imported alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
from typing import Any

__all__ = ["install"]

_lock = threading.RLock()
_VERSION = re.compile(r'^__version__\s*=\s*["\']([^"\']+)["\']', re.M)


def install(name: str = "aiohttp") -> bool:
    """Install the bare package; False when it was imported already or cannot be."""
    with _lock:
        if name in sys.modules:
            return False
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.origin is None or not spec.submodule_search_locations:
            return False
        try:
            with open(spec.origin, encoding="utf-8") as f:
                found = _VERSION.search(f.read(4096))
        except OSError:
            return False
        if found is None:
            return False
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def full_package(attr: str) -> Any:
            if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
                return importlib.import_module(f"{name}.{attr}")
            with _lock:
                if package.__dict__.get("__getattr__") is full_package:
                    del package.__dict__["__getattr__"]
                    loader.exec_module(package)
            return getattr(package, attr)

        package.__dict__["__version__"] = found.group(1)
        package.__dict__["__getattr__"] = full_package
        sys.modules[name] = package
        return True
