"""Shared fixtures for unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.config import DaemonConfig
from runtime.engine import Engine
from runtime.linux.limits import raise_open_files_limit

# The code under test runs in a daemon that raises its soft RLIMIT_NOFILE at start; so do the
# tests (under systemd, e.g. in conformance/vm/run's guest, the soft limit starts at 1024).
raise_open_files_limit()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec")
    eng = await Engine.open(config, services=False)
    yield eng
    await eng.close()
