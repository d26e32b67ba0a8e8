"""Deleting directory trees off the request path.

Removing a container (``docker run --rm`` waits for it) deleted its writable layer and its
state directory in the event loop: a few thousand syscalls that held every other client
and made up most of the daemon's time in a ``run --rm``. Callers now rename the tree out
of the way first (a rename is atomic: the name is free and nothing can mistake a
half-deleted tree for a live one), then hand it here; one worker thread deletes it.
What a crash leaves behind sits under a directory its owner already sweeps at start.
"""

from __future__ import annotations

import os
import queue
import threading

from runtime.archive.rootfd import discard_path


class Trash:
    """A single background thread that deletes trees handed to :meth:`discard`."""

    def __init__(self) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def discard(self, path: os.PathLike[str] | str) -> None:
        """Delete ``path`` (already renamed out of the way by the caller) soon."""
        self._queue.put(os.fspath(path))
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="trash", daemon=True)
                self._worker.start()

    def drain(self) -> None:
        """Return once everything handed over so far is deleted (daemon stop, tests)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            try:
                discard_path(path)
            finally:
                self._queue.task_done()


#: The daemon's one trash; the daemon drains it when it stops.
TRASH = Trash()
