"""The Docker Engine REST API over aiohttp: parse, call one backend method, render."""

from compat_api.lean_aiohttp import install as _lean_aiohttp

_lean_aiohttp()  # the server now, the client (registry pulls, the dashboard) on first use
