"""Progress records of pull and push, rate-limited as dockerd sends them."""

from __future__ import annotations

import time
from collections.abc import Callable

from runtime.images.model import Progress

Emit = Callable[[Progress], None]
PROGRESS_INTERVAL = 0.1  # dockerd's progress rate limit


class Rate:
    """dockerd's progress rate limit: the first update, then at most one every 100 ms,
    and always the last one."""

    def __init__(self) -> None:
        self._last = 0.0

    def due(self, final: bool = False) -> bool:
        now = time.monotonic()
        if final or not self._last or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            return True
        return False


def short_digest(digest: str) -> str:
    return digest.partition(":")[2][:12]


def bar(emit: Emit, status: str, id_: str, current: int, total: int) -> None:
    emit(Progress(status=status, id=id_, current=current, total=total))


def mark(emit: Emit, status: str, id_: str) -> None:
    # a per-layer line with an empty progressDetail ("Pull complete", "Waiting" ...)
    emit(Progress(status=status, id=id_, current=0, total=0))
