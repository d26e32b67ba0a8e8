"""connect_or_spawn: one detached supervisor per exec root, reused across connections."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from runtime.process.client import connect_or_spawn
from tests.runtime.process.conftest import needs_root

pytestmark = needs_root


async def test_spawns_once_then_reconnects(tmp_path: Path) -> None:
    root = tmp_path / "exec"
    first = await connect_or_spawn(root)
    pid = int((root / "supervisor" / "supervisor.pid").read_text())
    try:
        assert (root / "supervisor.sock").exists()
        assert os.stat(root).st_mode & 0o777 == 0o700
        assert os.getsid(pid) == pid  # its own session: it outlives the daemon
        await first.close()
        second = await connect_or_spawn(root)
        assert int((root / "supervisor" / "supervisor.pid").read_text()) == pid
        assert await second.running() == []
        await second.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        if first._process is not None:
            first._process.wait(10)
