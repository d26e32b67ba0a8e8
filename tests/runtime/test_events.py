from __future__ import annotations

import asyncio

from runtime.events import EventBus, event_matches
from runtime.filters import Filters


async def test_subscribers_receive_events_in_order() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish("container", "create", "abc", {"name": "web", "image": "busybox"})
    bus.publish("container", "start", "abc", {"name": "web", "image": "busybox"})
    received = []
    async for event in sub:
        received.append(event.action)
        if len(received) == 2:
            sub.close()
    assert received == ["create", "start"]


async def test_history_respects_since_and_until() -> None:
    bus = EventBus()
    first = bus.publish("image", "tag", "sha256:1")
    await asyncio.sleep(0.001)
    second = bus.publish("image", "untag", "sha256:1")
    assert [e.action for e in bus.history(since_nano=second.time_nano)] == ["untag"]
    assert [e.action for e in bus.history(until_nano=first.time_nano)] == ["tag"]


def test_history_is_bounded() -> None:
    bus = EventBus(history_size=3)
    for i in range(5):
        bus.publish("volume", "create", str(i))
    assert [e.actor_id for e in bus.history()] == ["2", "3", "4"]


async def test_slow_subscriber_is_dropped_not_blocking() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    for i in range(5000):
        bus.publish("volume", "create", str(i))
    # the feed ends (it does not wait for events it will never get) short of everything
    async def collect() -> list[str]:
        return [event.actor_id async for event in sub]

    got = await asyncio.wait_for(collect(), 5)
    first = int(got[0])
    assert 0 < len(got) < 5000 and got == [str(i) for i in range(first, first + len(got))]


def test_filters() -> None:
    bus = EventBus()
    event = bus.publish("container", "exec_start: sh -c true", "abcdef", {"name": "web", "image": "busybox:latest"})
    assert event_matches(event, Filters.of({"event": ["exec_start"]}))
    assert event_matches(event, Filters.of({"container": ["web"]}))
    assert event_matches(event, Filters.of({"container": ["abc"]}))
    assert not event_matches(event, Filters.of({"container": ["db"]}))
    assert event_matches(event, Filters.of({"image": ["busybox"]}))
    assert not event_matches(event, Filters.of({"type": ["image"]}))
    assert event_matches(event, Filters.of({"label": ["name=web"]}))
