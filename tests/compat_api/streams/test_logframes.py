"""A logs response: batches framed and written in order, large blocks framed ahead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from compat_api.streams.logframes import write_log_batches
from runtime.logs.columns import decode_lines
from runtime.logs.driver import LogBatch
from runtime.logs.jsonfile import decode_entry, encode_entries
from tests.compat_api.streams.test_columns import one_by_one
from tests.runtime.logs.test_columns import T0, tricky_block


class Collect:
    def __init__(self, fail_after: int | None = None) -> None:
        self.parts: list[bytes] = []
        self.fail_after = fail_after

    async def write(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.parts) >= self.fail_after:
            raise ConnectionResetError("client gone")
        await asyncio.sleep(0)
        self.parts.append(data)


def blocks() -> list[bytes]:
    regular = b"".join(encode_entries(s, [f"{i} x\n".encode()], T0 + i)[0]
                       for i, s in enumerate(["stdout", "stderr"] * 300))
    small = b"".join(encode_entries("stderr", [b"small one\n", b"two\n"], T0))
    return [tricky_block(1), regular, small, tricky_block(2), small, regular, regular]


async def batches_of(parts: list[bytes], stamps: bool) -> AsyncIterator[LogBatch]:
    for i, block in enumerate(parts):
        if i % 3 == 2:   # some as lists of messages, as a follower's lines come
            yield [m for m in map(decode_entry, block.split(b"\n")) if m is not None]
        else:
            yield decode_lines(block, stamps, decode_entry)


@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize("multiplexed", [False, True])
async def test_every_batch_in_order(multiplexed: bool, timestamps: bool) -> None:
    out = Collect()
    await write_log_batches(out, batches_of(blocks(), timestamps), multiplexed, timestamps)
    expected = b"".join(one_by_one(b, multiplexed, timestamps) for b in blocks())
    assert b"".join(out.parts) == expected


async def test_a_client_gone_ends_the_writing() -> None:
    out = Collect(fail_after=2)
    with pytest.raises(ConnectionResetError):
        await write_log_batches(out, batches_of(blocks(), False), True, False)
    assert len(out.parts) == 2


def test_send_buffer_is_widened() -> None:
    import os
    import socket

    from compat_api.streams.logframes import SEND_BUFFER, widen_send_buffer

    class Transport:
        def __init__(self, sock: socket.socket | None) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> socket.socket | None:
            return self.sock if name == "socket" else None

    a, b = socket.socketpair()
    with a, b:
        before = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        widen_send_buffer(Transport(a))
        after = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        # without CAP_NET_ADMIN the kernel caps it at wmem_max
        assert after >= (SEND_BUFFER if os.geteuid() == 0 else before)
    widen_send_buffer(Transport(None))
    widen_send_buffer(None)
