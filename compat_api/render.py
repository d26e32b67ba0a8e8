"""Writing JSON the way dockerd does: compact, UTF-8, one trailing newline."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def dumps(value: Any) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")


def no_content(status: int = 204) -> web.Response:
    return web.Response(status=status)
