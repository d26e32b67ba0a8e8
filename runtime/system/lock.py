"""One daemon per data root: an exclusive flock held for the daemon's lifetime."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from runtime.errors import Conflict

LOCK_NAME = "pydockerd.lock"


class DataRootLock:
    """Exclusive lock on ``<data-root>/pydockerd.lock``; the holder's pid is written inside."""

    def __init__(self, data_root: Path) -> None:
        self.path = data_root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(
                f"another pydockerd (pid {holder}) is already using data root "
                f"{self.path.parent}; stop it or choose another --data-root"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
