"""Request parsing the way dockerd does it (moby's httputils); every failure is InvalidParameter."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from compat_api.appkeys import API_VERSION
from compat_api.versions import APIVersion
from runtime.errors import InvalidParameter
from runtime.filters import Filters

_FALSE_WORDS = frozenset({"", "0", "no", "false", "none"})


def api_version(request: web.Request) -> APIVersion:
    """The API version the client asked for (the maximum for unversioned paths)."""
    return request[API_VERSION]


def bool_value(request: web.Request, key: str) -> bool:
    """moby BoolValue: "", 0, no, false, none (any case) are false; anything else is true."""
    return request.query.get(key, "").strip().lower() not in _FALSE_WORDS


def bool_value_or_default(request: web.Request, key: str, default: bool) -> bool:
    if key not in request.query:
        return default
    return bool_value(request, key)


def int_value(request: web.Request, key: str, default: int = 0) -> int:
    raw = request.query.get(key, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def filters_value(request: web.Request, key: str = "filters") -> Filters:
    """Parse a ``filters`` JSON query in either encoding: ``{"k":{"v":true}}`` or ``{"k":["v"]}``."""
    raw = request.query.get(key, "")
    return parse_filters(raw)


def parse_filters(raw: str) -> Filters:
    if raw == "":
        return Filters()
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"invalid filter: {exc}") from None
    if decoded is None:
        return Filters()
    if not isinstance(decoded, dict):
        raise InvalidParameter("invalid filter: filters must be a JSON object")
    result: dict[str, list[str]] = {}
    for name, values in decoded.items():
        if isinstance(values, dict):
            result[name] = [str(v) for v, enabled in values.items() if enabled]
        elif isinstance(values, list):
            result[name] = [str(v) for v in values]
        elif isinstance(values, str):
            result[name] = [values]
        else:
            raise InvalidParameter(f"invalid filter: unexpected value for {name!r}")
    return Filters.of(result)


class _LiteralInt(int):
    """A JSON integer that remembers how the client wrote it (Go's errors quote it)."""

    literal: str

    @classmethod
    def parse(cls, text: str) -> int:
        number = cls(text)
        number.literal = text
        return number


class _LiteralFloat(float):
    """A JSON number with a fraction or an exponent, remembering its text (``1e30``)."""

    literal: str

    @classmethod
    def parse(cls, text: str) -> float:
        number = cls(text)
        number.literal = text
        return number


async def json_body(request: web.Request, *, required: bool = False) -> dict[str, Any]:
    """moby ReadJSON: empty body allowed (unless required); otherwise one JSON object,
    ``application/json`` content type, trailing whitespace tolerated."""
    data = await request.read()
    if not data.strip():
        if required:
            raise InvalidParameter("invalid JSON: request body is empty")
        return {}
    content_type = request.headers.get("Content-Type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json":
        raise InvalidParameter(
            f"unsupported Content-Type header ({content_type}): must be 'application/json'"
        )
    try:
        value = json.loads(data, parse_int=_LiteralInt.parse, parse_float=_LiteralFloat.parse)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    return value


