"""Typed keys for values stored on the aiohttp application and requests."""

from __future__ import annotations

from aiohttp import web

from compat_api.versions import APIVersion
from runtime.engine import Engine

ENGINE = web.AppKey("engine", Engine)
# request-scoped: the API version the client asked for (set by the version middleware)
API_VERSION = web.RequestKey("api_version", APIVersion)

__all__ = ["ENGINE", "API_VERSION", "APIVersion"]
