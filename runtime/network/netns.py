"""Network namespaces: handles that keep naming the same namespace, and running a function
inside one without touching the event loop.

A container's namespace is always reached through a :class:`NetnsHandle`, an open
namespace file taken while its process was known to be alive, never through
``/proc/<pid>/ns/net`` at the time of use: once the container exits, its pid may belong
to a host process, and work meant for the container (deleting its ``eth0``) would then
land in the host's namespace.

``setns(2)`` changes only the calling thread, so each call gets a fresh thread that
enters the namespace, runs the function and exits; a thread that left the host
namespace is never reused (a pooled thread would silently carry the container's
namespace into unrelated work). Sockets created there stay bound to that namespace
after the thread is gone, which is how the embedded DNS server listens on
127.0.0.11 inside each container.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from runtime.network.rtnl import setns as _pyroute2_setns

T = TypeVar("T")

CLONE_NEWNET = 0x40000000


class NetnsGone(Exception):
    """The process has exited, or its pid now names another namespace."""


class NetnsHandle:
    """An open network-namespace file: the namespace itself, whatever becomes of the pid
    it was found through. Owned by one place, which closes it."""

    __slots__ = ("_fd", "inode")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.inode = os.fstat(fd).st_ino

    @classmethod
    def of_pid(cls, pid: int, expect_inode: int = 0) -> NetnsHandle:
        """The namespace of ``pid`` now; with ``expect_inode``, only if it is still the one
        recorded earlier (checked on the open file, so a recycled pid cannot slip in)."""
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetnsGone(f"process {pid}: {exc.strerror}") from None
        handle = cls(fd)
        if expect_inode and handle.inode != expect_inode:
            handle.close()
            raise NetnsGone(f"process {pid} is in another network namespace now")
        return handle

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise NetnsGone("network namespace handle is closed")
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def enter_netns(fd: int) -> None:
    """setns(fd, CLONE_NEWNET) for the calling thread (pyroute2 wraps the syscall)."""
    _pyroute2_setns(fd, flags=0)


async def run_in_netns(netns: NetnsHandle | str, fn: Callable[[], T],
                       before: Callable[[int], None] | None = None) -> T:
    """Run ``fn`` in a new thread that has joined the namespace ``netns`` (a handle, or
    the path of a namespace file that tests made themselves); returns its result or
    raises its exception in the caller. ``before(fd)`` runs first in the same thread,
    still in the host's namespace, with the namespace's fd (e.g. to create a veth into
    it), which saves a thread hop on the container start path."""
    loop = asyncio.get_running_loop()
    # the worker gets its own copy: the owner may close the handle meanwhile
    own_fd = os.dup(netns.fd) if isinstance(netns, NetnsHandle) else -1
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def body() -> None:
        try:
            fd = own_fd if own_fd >= 0 else os.open(str(netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if before is not None:
                    before(fd)
                enter_netns(fd)
            finally:
                os.close(fd)
            result = fn()
        except BaseException as exc:  # delivered to the awaiting coroutine
            loop.call_soon_threadsafe(deliver, False, exc)
            return
        loop.call_soon_threadsafe(deliver, True, result)

    thread = threading.Thread(target=body, name="netns-worker", daemon=True)
    thread.start()
    return await future


__all__ = ["NetnsGone", "NetnsHandle", "enter_netns", "run_in_netns"]
