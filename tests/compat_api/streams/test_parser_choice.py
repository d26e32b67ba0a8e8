"""Each connection gets aiohttp's C parser unless its first request asks for an Upgrade."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from aiohttp import http_parser, web_protocol

# the module (the package exports a function of the same name)
hijack = importlib.import_module("compat_api.streams.hijack")



class _Protocol:
    transport = None

    def pause_reading(self, *_: Any, **__: Any) -> None: ...

    def resume_reading(self, *_: Any, **__: Any) -> None: ...


def _parser_for(first: bytes) -> Any:
    parser = hijack._ParserByFirstRequest(_Protocol(), asyncio.get_running_loop(), 2**16,
                                          max_line_size=8190, max_field_size=8190, max_headers=128,
                                          payload_exception=Exception)
    parser.feed_data(first)
    return parser._parser


async def test_the_choice_by_first_request() -> None:
    hijack.enable_tcp_upgrade()
    if vars(web_protocol)["HttpRequestParser"] is not hijack._ParserByFirstRequest:
        return  # this aiohttp's C parser keeps the tail (or there is none): nothing to choose
    plain = _parser_for(b"GET /v1.50/containers/x/json HTTP/1.1\r\nHost: d\r\n\r\n")
    assert type(plain) is hijack._C_PARSER
    upgrade = _parser_for(b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
                          b"UPGRADE: tcp\r\nContent-Length: 2\r\n\r\n{}stdin")
    assert type(upgrade) is http_parser.HttpRequestParserPy
    partial = _parser_for(b"GET /v1.50/containers/x/json HTTP/1.1\r\nHo")
    assert type(partial) is http_parser.HttpRequestParserPy


async def test_the_python_parser_keeps_what_follows_an_upgrade() -> None:
    hijack.enable_tcp_upgrade()
    parser = _parser_for(b"")
    _, upgraded, tail = parser.feed_data(b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
                                         b"Upgrade: tcp\r\nContent-Length: 2\r\n\r\n{}stdin")
    assert upgraded and tail == b"stdin"
