"""iterate_in_thread: a blocking generator's items on the loop, overlapped, with back-pressure."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runtime.images.streams import iterate_in_thread


async def test_items_arrive_in_order_and_errors_are_raised_here() -> None:
    assert [x async for x in iterate_in_thread(lambda: iter(range(100)))] == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken")

    got: list[int] = []
    with pytest.raises(ValueError, match="broken"):
        async for x in iterate_in_thread(failing):
            got.append(x)
    assert got == [1]


async def test_closing_early_stops_and_closes_the_generator() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    stream = iterate_in_thread(endless)
    async for x in stream:
        if x == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()
    assert len(produced) < 3 + 8 + 3  # bounded read-ahead
