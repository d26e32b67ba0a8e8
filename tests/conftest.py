"""Shared fixtures for unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.config import DaemonConfig
from runtime.engine import Engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec")
    eng = await Engine.open(config, services=False)
    yield eng
    await eng.close()
