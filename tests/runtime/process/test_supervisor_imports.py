"""The supervisor is a separate, long-lived interpreter: it loads none of the daemon's stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.process.supervisor import _parse_args

ROOT = Path(__file__).resolve().parents[3]

DAEMON_ONLY = ("aiohttp", "yarl", "multidict", "asyncio", "ssl", "_ssl", "_hashlib", "pyroute2",
               "dns", "numpy", "zstandard", "elftools", "compat_api", "builder", "argparse",
               "importlib.resources", "runtime.images", "runtime.network", "runtime.containers")


def test_supervisor_import_closure_excludes_the_daemon_stack() -> None:
    # started as spawn_supervisor does: -S, the package root on PYTHONPATH
    code = "import json, sys, runtime.process.supervisor; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd="/",
                         capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    unwanted = [m for m in loaded if m.startswith(DAEMON_ONLY)]
    assert unwanted == []


def test_arguments() -> None:
    assert _parse_args(["--exec-root", "/x", "--ready-fd", "8"]) == (Path("/x"), 8)
    assert _parse_args(["--exec-root=/y"]) == (Path("/y"), -1)
    for bad in (["--ready-fd", "3"], ["--exec-root", "/x", "--bogus"], ["--exec-root", "/x",
                                                                           "--ready-fd", "z"]):
        with pytest.raises(SystemExit):
            _parse_args(bad)
