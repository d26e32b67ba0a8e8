"""OOM kills seen while a container runs (cgroup v2), for the supervisor's exit reports.

On cgroup v2 the kernel counts OOM kills in the cgroup's ``memory.events`` (``oom_kill``).
Reading it once the container has exited is too late under the systemd driver: systemd
removes an emptied scope's cgroup within about 0.1 s, often before the exit has been
handled. containerd watches the file while the task runs; so does this: every container's
``memory.events`` is registered for ``EPOLLPRI`` (kernfs signals a change of the file that
way), read on each change, and the count is remembered until the exit is reported.
On cgroup v1 there is no ``memory.events``; the cgroupfs driver keeps the cgroup until the
daemon has read ``memory.oom_control``, so nothing is watched there.
"""

from __future__ import annotations

import os
import select


def read_oom_kills(fd: int) -> int | None:
    """``oom_kill`` from an open ``memory.events``; None when the cgroup is gone."""
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return None
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"oom_kill":
            try:
                return int(value)
            except ValueError:
                return None
    return 0


class OomWatch:
    """One epoll set of ``memory.events`` files, keyed by the container's init pid.

    :attr:`fd` is readable when any watched file changed; the owner's event loop then
    calls :meth:`on_ready`. :meth:`finish` gives the final verdict for a pid and forgets it.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._files: dict[int, int] = {}     # events-file fd -> pid
        self._by_pid: dict[int, int] = {}    # pid -> events-file fd
        self._kills: dict[int, int] = {}     # pid -> highest oom_kill count seen

    @property
    def fd(self) -> int:
        return self._epoll.fileno()

    def watch(self, pid: int, cgroup_dirs: tuple[str, ...]) -> None:
        """Watch the ``memory.events`` of the first of ``cgroup_dirs`` that has one."""
        for directory in cgroup_dirs:
            try:
                fd = os.open(os.path.join(directory, "memory.events"),
                             os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                self._epoll.register(fd, select.EPOLLPRI)
            except OSError:
                pass  # not pollable (not kernfs): still read at the exit
            self._files[fd] = pid
            self._by_pid[pid] = fd
            self._note(pid, fd)  # reading also arms the next change notification
            return

    def on_ready(self) -> None:
        for fd, _events in self._epoll.poll(0):
            pid = self._files.get(fd)
            if pid is not None:
                self._note(pid, fd)

    def finish(self, pid: int) -> bool:
        """True when the container was OOM-killed (or any of its processes was)."""
        fd = self._by_pid.pop(pid, None)
        if fd is not None:
            self._note(pid, fd)  # a last look, in case the cgroup is still there
            self._forget(fd)
        return self._kills.pop(pid, 0) > 0

    def _note(self, pid: int, fd: int) -> None:
        count = read_oom_kills(fd)
        if count is None:
            # the cgroup was removed: stop watching, keep what was seen
            if self._by_pid.get(pid) == fd:
                del self._by_pid[pid]
            self._forget(fd)
            return
        self._kills[pid] = max(self._kills.get(pid, 0), count)

    def _forget(self, fd: int) -> None:
        if self._files.pop(fd, None) is None:
            return
        try:
            self._epoll.unregister(fd)
        except OSError:
            pass
        os.close(fd)
