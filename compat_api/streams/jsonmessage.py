"""JSON progress streams (pull, push, load, import, build): one JSON object per line.

A streaming handler follows moby's "validate, commit, then stream" order::

    opts = parse_and_validate(request)           # errors here are normal HTTP errors
    progress = await backend.image_pull(opts)     # lookups that can fail with 404 etc.
    writer = await JsonMessageWriter.start(request)   # 200 + headers are on the wire now
    async with writer.reporting_errors():         # from here on, errors go in-band
        async for event in progress:
            await writer.progress("Downloading", id=event.layer, current=..., total=...)
    return await writer.finish()

Once the headers are out, a failure can only be told inside the stream as
``{"errorDetail":{"message":M},"error":M}``: the CLI fails on ``errorDetail``, docker-py's
``images.build()`` raises ``BuildError`` only on ``error``, so both are sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypedDict

from aiohttp import web

from runtime.errors import EngineError

__all__ = [
    "ErrorDetail",
    "JSONMessage",
    "JsonMessageWriter",
    "ProgressDetail",
    "encode_message",
    "human_size",
    "render_progress",
]

log = logging.getLogger(__name__)


class ProgressDetail(TypedDict, total=False):
    current: int
    total: int
    start: int
    hidecounts: bool
    units: str


class ErrorDetail(TypedDict, total=False):
    code: int
    message: str


JSONMessage = TypedDict(
    "JSONMessage",
    {
        "stream": str,
        "status": str,
        "progressDetail": ProgressDetail,
        "progress": str,
        "id": str,
        "from": str,
        "time": int,
        "timeNano": int,
        "errorDetail": ErrorDetail,
        "error": str,
        "aux": Any,
    },
    total=False,
)

# moby's field order (jsonmessage.JSONMessage), so our lines read like dockerd's.
_FIELD_ORDER = tuple(JSONMessage.__annotations__)
_PROGRESS_ORDER = ("current", "total", "start", "hidecounts", "units")

# Go's encoding/json escapes these even inside strings; clients do not care, diffs do.
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BAR_WIDTH = 50


def human_size(size: float) -> str:
    """docker/go-units ``HumanSize``: decimal units, at most 4 significant digits."""
    unit = 0
    while size >= 1000 and unit < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_DECIMAL_UNITS[unit]}"


def render_progress(current: int, total: int = 0, *, units: str = "", hide_counts: bool = False) -> str:
    """The deprecated ``progress`` string, as dockerd renders ``JSONProgress`` (no
    terminal, so always with the bar, and without a time estimate: the daemon never sets
    ``start``). Example: ``[=====>      ]  1.23MB/3.642MB``."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}" if not units else f"{current} {units}"
    filled = min(int(current / total * 100) // 2, _BAR_WIDTH)
    bar = "[" + "=" * filled + ">" + " " * (_BAR_WIDTH - filled) + "] "
    if hide_counts:
        numbers = ""
    elif not units:
        numbers = f"{human_size(current):>8}"
        if current <= total:
            numbers += "/" + human_size(total)
    else:
        numbers = f"{current}/{total} {units}" if current <= total else f"{current} {units}"
    return bar + numbers


def _ordered(message: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    unknown = message.keys() - set(order)
    if unknown:
        raise ValueError(f"unknown JSON message fields: {sorted(unknown)}")
    return {key: message[key] for key in order if key in message}


def encode_message(message: JSONMessage) -> bytes:
    """One line of the stream: compact JSON in moby's field order, ending in CRLF."""
    ordered = _ordered(message, _FIELD_ORDER)
    if "progressDetail" in ordered:
        ordered["progressDetail"] = _ordered(ordered["progressDetail"], _PROGRESS_ORDER)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    return (text.translate(_GO_ESCAPES) + "\r\n").encode("utf-8", "replace")


class JsonMessageWriter:
    """Writes JSON message lines to a chunked ``application/json`` response.

    Create it with ``start`` only after validation: it sends status 200 and the headers
    at once (the CLI waits for them before rendering anything).
    """

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response
        self.failed = False

    @classmethod
    async def start(
        cls, request: web.Request, *, headers: Mapping[str, str] | None = None
    ) -> JsonMessageWriter:
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        return cls(response)

    async def write(self, message: JSONMessage) -> None:
        await self.response.write(encode_message(message))

    async def status(self, status: str, *, id: str | None = None) -> None:
        """A plain status line, e.g. ``Pulling from library/alpine`` with ``id=latest``."""
        message: JSONMessage = {"status": status}
        if id is not None:
            message["id"] = id
        await self.write(message)

    async def progress(
        self,
        status: str,
        *,
        id: str,
        current: int = 0,
        total: int = 0,
        units: str = "",
        hide_counts: bool = False,
    ) -> None:
        """A per-layer line; ``progressDetail`` is always present (``{}`` when empty, as
        dockerd sends for "Pulling fs layer" or "Pull complete")."""
        detail: ProgressDetail = {}
        if current:
            detail["current"] = current
        if total:
            detail["total"] = total
        if hide_counts:
            detail["hidecounts"] = True
        if units:
            detail["units"] = units
        message: JSONMessage = {"status": status, "progressDetail": detail}
        bar = render_progress(current, total, units=units, hide_counts=hide_counts)
        if bar:
            message["progress"] = bar
        message["id"] = id
        await self.write(message)

    async def stream(self, text: str) -> None:
        """Build output; ``text`` carries its own newlines."""
        await self.write({"stream": text})

    async def aux(self, value: Any) -> None:
        """An ``aux`` object, e.g. ``{"ID": "sha256:..."}`` after a build."""
        await self.write({"aux": value})

    async def error(self, message: str, *, code: int | None = None) -> None:
        """Report a failure in-band; the stream should end after it."""
        self.failed = True
        detail: ErrorDetail = {"message": message}
        if code is not None:
            detail = {"code": code, "message": message}
        await self.write({"errorDetail": detail, "error": message})

    @contextlib.asynccontextmanager
    async def reporting_errors(self) -> AsyncIterator[None]:
        """Turn any ``Exception`` in the block into an in-band error line.

        Cancellation passes through. If the client is gone the error cannot be written
        either; that is logged and swallowed, so the handler still returns normally.
        """
        try:
            yield
        except Exception as exc:
            if isinstance(exc, EngineError):
                log.debug("stream failed after headers were sent: %s", exc)
            elif not isinstance(exc, ConnectionError):
                log.exception("unexpected error after headers were sent")
            try:
                await self.error(str(exc) or type(exc).__name__)
            except ConnectionError:
                log.debug("client left before the error could be reported: %s", exc)

    async def finish(self) -> web.StreamResponse:
        """End the chunked body; returns the response for the handler to return."""
        with contextlib.suppress(ConnectionError):
            await self.response.write_eof()
        return self.response
