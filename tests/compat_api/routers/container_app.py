"""Fixtures for the container and exec router tests: an app with both areas on a
ContainerService over a host-process fake runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.routers.containers import routes as container_routes
from compat_api.routers.exec import routes as exec_routes
from runtime.containers.execs import ExecService
from runtime.containers.service import ContainerService
from runtime.engine import Engine
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime


@pytest.fixture
async def wired(engine: Engine, tmp_path: Path) -> AsyncIterator[Engine]:
    runtime = HostRuntime()
    service = ContainerService(engine.config.data_root, engine.events, FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    await service.load()
    engine.containers = service  # type: ignore[attr-defined]
    engine.execs = ExecService(service)  # type: ignore[attr-defined]
    yield engine
    await runtime.kill_all()


@pytest.fixture
async def client(aiohttp_client: Any, wired: Engine) -> TestClient:
    # only the areas under test: other areas' routers are not this test's business
    routes = [*container_routes.ROUTES, *exec_routes.ROUTES]
    return await aiohttp_client(create_app(wired, routes))
