"""The daemon loads aiohttp's server alone; the client comes with its first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import json, sys
import compat_api.app
from aiohttp import web
before = "aiohttp.client" in sys.modules
import aiohttp
session_class = aiohttp.ClientSession.__name__
print(json.dumps([before, "aiohttp.client" in sys.modules, session_class, aiohttp.__version__,
                  "ClientSession" in aiohttp.__all__, web.Application.__name__]))
"""


def test_client_loads_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    before, after, session_class, version, listed, app = json.loads(out)
    assert (before, after, session_class, listed, app) == (False, True, "ClientSession", True, "Application")
    import aiohttp
    assert version == aiohttp.__version__
