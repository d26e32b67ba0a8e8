"""Typed keys of the dashboard's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from dashboard.engine import EngineClient
from dashboard.security import Sessions

ENGINE = web.AppKey("engine", EngineClient)
SESSIONS = web.AppKey("sessions", Sessions)
SECURE = web.AppKey("secure", bool)
