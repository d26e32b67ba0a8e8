"""The engine's event bus: every service publishes here, ``GET /events`` reads from here.

Events are kept in a bounded in-memory ring (dockerd keeps the last 256, we keep more) so
``since`` can replay history, and fanned out to live subscribers through per-subscriber
queues. A slow subscriber never blocks a publisher: its queue is bounded and, once full,
the subscriber is marked as lagging and closed (dockerd drops slow listeners the same way).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from runtime.filters import Filters

HISTORY_SIZE = 1024
SUBSCRIBER_QUEUE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Event:
    """One engine event, in Docker's vocabulary (``Type`` container/image/network/...,
    ``Action`` create/start/die/...)."""

    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    scope: str = "local"
    time_nano: int = 0


class Subscription:
    """A live feed of events; iterate it with ``async for``. Close it when done."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()  # a subscriber this far behind is dropped, not waited for

    def close(self) -> None:
        self._bus._subscribers.discard(self)
        if self._queue.full():
            # the end marker must fit, or the feed would wait forever for events it will
            # never get: it takes the oldest queued event's place (the feed is cut anyway)
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


class EventBus:
    """Publish/subscribe hub with a replayable history."""

    def __init__(self, history_size: int = HISTORY_SIZE) -> None:
        self._history: collections.deque[Event] = collections.deque(maxlen=history_size)
        self._subscribers: set[Subscription] = set()

    def publish(
        self,
        type: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str] | None = None,
        scope: str = "local",
    ) -> Event:
        event = Event(
            type=type,
            action=action,
            actor_id=actor_id,
            attributes=MappingProxyType(dict(attributes or {})),
            scope=scope,
            time_nano=time.time_ns(),
        )
        self._history.append(event)
        for subscriber in list(self._subscribers):
            subscriber._offer(event)
        return event

    def history(self, since_nano: int | None = None, until_nano: int | None = None) -> list[Event]:
        """Past events with ``since_nano <= time_nano <= until_nano`` (bounds optional)."""
        return [
            e
            for e in self._history
            if (since_nano is None or e.time_nano >= since_nano)
            and (until_nano is None or e.time_nano <= until_nano)
        ]

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription


EVENT_FILTERS = frozenset(
    {"config", "container", "daemon", "event", "image", "label", "network", "node",
     "plugin", "scope", "secret", "service", "type", "volume"}
)


def _fuzzy(accepted: tuple[str, ...] | None, *candidates: str) -> bool:
    if accepted is None:
        return True
    return any(c and any(c == a or c.startswith(a) for a in accepted) for c in candidates)


def event_matches(event: Event, filters: Filters) -> bool:
    """Docker's event filter semantics (each named filter must accept the event)."""
    values = filters.values
    action = event.action.split(":", 1)[0]
    if "event" in values and action not in values["event"] and event.action not in values["event"]:
        return False
    if not filters.exact_match("type", event.type):
        return False
    if "scope" in values and event.scope not in values["scope"]:
        return False
    if "daemon" in values and event.type == "daemon":
        if not _fuzzy(values["daemon"], event.actor_id, event.attributes.get("name", "")):
            return False
    for kind in ("container", "plugin", "volume", "network", "node", "service", "secret", "config"):
        if kind in values and not _fuzzy(values[kind], event.actor_id, event.attributes.get("name", "")):
            return False
    if "image" in values:
        image_attr = event.attributes.get("image", "")
        untagged = image_attr.rsplit(":", 1)[0] if "/" not in image_attr.rsplit(":", 1)[-1] else image_attr
        if not any(c in values["image"] for c in (event.actor_id, image_attr, untagged) if c):
            return False
    return filters.match_labels(event.attributes)
