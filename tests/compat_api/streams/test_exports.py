from __future__ import annotations

import subprocess
import sys

import compat_api.streams as streams
from compat_api.streams import stdcopy


def test_exported_members() -> None:
    assert sorted(streams.__all__) == sorted(
        [
            "MULTIPLEXED_STREAM",
            "RAW_STREAM",
            "Frame",
            "FrameDecoder",
            "HijackedResponse",
            "HijackedStream",
            "JSONMessage",
            "JsonMessageWriter",
            "StdcopyError",
            "StreamType",
            "enable_tcp_upgrade",
            "encode_frame",
            "hijack",
            "human_size",
            "render_progress",
            "wants_upgrade",
        ]
    )
    assert all(hasattr(streams, name) for name in streams.__all__)


def test_stdcopy_is_pure() -> None:
    # Loaded by path, so the package __init__ (which needs aiohttp) stays out of it.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('stdcopy', {stdcopy.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "sys.exit(3 if 'aiohttp' in sys.modules else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
