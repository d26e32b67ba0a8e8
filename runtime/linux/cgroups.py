"""Per-container cgroups, v1 (legacy/hybrid) and v2 (unified), detected at start.

The daemon creates and configures ``<mount>/<parent>/<container id>`` before the start
(for each v1 hierarchy, or once on v2); the container's init joins the directories in
``CgroupHandle.dirs`` itself. On a hybrid host (v1 controllers plus a cgroup2 hierarchy
such as ``/sys/fs/cgroup/unified``) the container also gets a directory in the cgroup2
hierarchy, as runc does for dockerd (``0::/<parent>/<id>`` in /proc/<pid>/cgroup); no
controllers are configured there. Values are written as runc writes them for dockerd's
HostConfig (``--cpus`` -> ``cfs_quota_us`` over a 100000 us period, and so on).

The limits and their writers are :mod:`runtime.linux.cgroup_resources`; control-file I/O
and hierarchy detection are :mod:`runtime.linux.cgroupfs`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.linux.cgroup_resources import (
    DEFAULT_DEVICE_RULES,
    PRIVILEGED_DEVICE_RULES,
    Resources,
    cpu_quota_period,
    cpuset_ancestors,
    enable_v2_controllers,
    set_devices_v1,
    shares_to_weight,
    update_v1,
    update_v2,
)
from runtime.linux.cgroupfs import detect_hybrid_unified, detect_v1_hierarchies, keyed, read_value, write_value
from runtime.linux.devices import attach_device_program
from runtime.linux.syscalls import LinuxSyscalls, Syscalls


@dataclass(frozen=True, slots=True)
class CgroupHandle:
    """The container's cgroup: ``dirs`` are the absolute directories the process joins."""

    container_id: str
    dirs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CgroupStats:
    memory_usage: int
    memory_limit: int
    pids_current: int
    cpu_usage_ns: int


class CgroupManager:
    """Creates, configures and removes per-container cgroups under ``parent``.

    ``unified`` is the hybrid host's cgroup2 mountpoint (v1 only, else None)."""

    driver = "cgroupfs"

    def __init__(self, parent: str = "pydockerd", root: str = "/sys/fs/cgroup",
                 mountinfo: str | None = None, syscalls: Syscalls | None = None) -> None:
        self.parent = parent.strip("/")
        self.sys: Syscalls = syscalls if syscalls is not None else LinuxSyscalls()
        self.root = Path(root)
        self.unified: str | None = None
        if (self.root / "cgroup.controllers").exists():
            self.version = "2"
            self.hierarchies: dict[str, str] = {}
        else:
            self.version = "1"
            if mountinfo is None:
                mountinfo = Path("/proc/self/mountinfo").read_text()
            self.hierarchies = detect_v1_hierarchies(mountinfo, root)
            self.unified = detect_hybrid_unified(mountinfo, root)

    # ---- lifecycle --------------------------------------------------------------------

    def create(self, container_id: str, resources: Resources, parent: str = "") -> CgroupHandle:
        """The container's cgroup under ``parent`` (HostConfig.CgroupParent; "" = the
        daemon's parent), created and configured before any process joins it."""
        if self.version == "2":
            path = self._path(self.root, "", parent, container_id)
            enable_v2_controllers(self.root, path)
            path.mkdir(exist_ok=True)
            handle = CgroupHandle(container_id, (str(path),))
        else:
            dirs = []
            for key, mountpoint in sorted(self.hierarchies.items()):
                path = self._path(Path(mountpoint), key, parent, container_id)
                if key == "cpuset":
                    cpuset_ancestors(Path(mountpoint), path)
                path.mkdir(parents=True, exist_ok=True)
                dirs.append(str(path))
            if self.unified is not None:
                path = self._path(Path(self.unified), "", parent, container_id)
                path.mkdir(parents=True, exist_ok=True)
                dirs.append(str(path))
            handle = CgroupHandle(container_id, tuple(dirs))
        try:
            if self.version == "1":
                set_devices_v1(self._dir(handle, "devices"), resources.device_rules)
            else:
                # before any process joins: v2 has no devices controller, only this
                attach_device_program(self.sys, handle.dirs[0], resources.device_rules)
            self.update(handle, resources)
        except BaseException:
            self.remove(handle)
            raise
        return handle

    def started(self, handle: CgroupHandle) -> None:
        """Called once the container's init is in its cgroup (the systemd driver releases
        the scope's placeholder process here)."""

    def update(self, handle: CgroupHandle, r: Resources) -> None:
        if self.version == "2":
            update_v2(Path(handle.dirs[0]), r)
        else:
            update_v1(lambda key: self._dir(handle, key), r)

    def remove(self, handle: CgroupHandle, timeout: float = 1.0) -> None:
        """Remove the directories; waits briefly for dying processes to leave them."""
        deadline = time.monotonic() + timeout
        for d in handle.dirs:
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)

    def oom_killed(self, handle: CgroupHandle) -> bool:
        memory = self._dir(handle, "memory")
        if memory is None:
            return False
        name = "memory.events" if self.version == "2" else "memory.oom_control"
        try:
            return keyed(read_value(memory / name)).get("oom_kill", 0) > 0
        except FileNotFoundError:
            return False

    def stats(self, handle: CgroupHandle) -> CgroupStats:
        mem = self._dir(handle, "memory")
        pids = self._dir(handle, "pids")
        if self.version == "2":
            assert mem is not None
            limit = read_value(mem / "memory.max")
            cpu = keyed(read_value(mem / "cpu.stat")).get("usage_usec", 0) * 1000
            return CgroupStats(int(read_value(mem / "memory.current")),
                               0 if limit == "max" else int(limit),
                               int(read_value(mem / "pids.current")), cpu)
        cpuacct = self._dir(handle, "cpuacct") or self._dir(handle, "cpu,cpuacct")
        return CgroupStats(
            int(read_value(mem / "memory.usage_in_bytes")) if mem else 0,
            int(read_value(mem / "memory.limit_in_bytes")) if mem else 0,
            int(read_value(pids / "pids.current")) if pids else 0,
            int(read_value(cpuacct / "cpuacct.usage")) if cpuacct else 0,
        )

    # ---- freezer and readings (pause/unpause, top, stats) -----------------------------

    def handle_for(self, container_id: str, parent: str = "") -> CgroupHandle:
        """The handle of an existing container cgroup, without creating or configuring
        anything (a container reattached after a daemon restart has no handle yet)."""
        if self.version == "2":
            return CgroupHandle(container_id,
                                (str(self._path(self.root, "", parent, container_id)),))
        dirs = [str(self._path(Path(m), key, parent, container_id))
                for key, m in sorted(self.hierarchies.items())]
        if self.unified is not None:
            dirs.append(str(self._path(Path(self.unified), "", parent, container_id)))
        return CgroupHandle(container_id, tuple(dirs))

    def _path(self, mountpoint: Path, key: str, parent: str, container_id: str) -> Path:
        """dockerd's cgroupfs placement: no parent -> the daemon's parent; an absolute
        parent from the hierarchy's root; a relative one below the daemon's own cgroup
        in that hierarchy (where runc, started by dockerd, resolves it)."""
        if not parent:
            return mountpoint / self.parent / container_id
        if parent.startswith("/"):
            return mountpoint / parent.strip("/") / container_id
        own = self._own_cgroups().get(frozenset(key.split(",")) if key else frozenset(), "/")
        return mountpoint / own.strip("/") / parent.strip("/") / container_id

    def _own_cgroups(self) -> dict[frozenset[str], str]:
        """This process's cgroup per hierarchy (controllers set; empty set = cgroup2)."""
        result: dict[frozenset[str], str] = {}
        try:
            text = Path("/proc/self/cgroup").read_text()
        except OSError:
            return result
        for line in text.splitlines():
            _num, _sep, rest = line.partition(":")
            controllers, _sep, path = rest.partition(":")
            result[frozenset(c for c in controllers.split(",") if c)] = path or "/"
        return result

    def controller_dir(self, handle: CgroupHandle, controller: str) -> Path | None:
        """The container's directory for ``controller`` (the single dir on v2)."""
        return self._dir(handle, controller)

    def freeze(self, handle: CgroupHandle, frozen: bool, timeout: float = 5.0) -> None:
        """Freeze or thaw every process of the cgroup and wait until the kernel is done
        (v1 ``freezer.state`` passes through FREEZING; v2 reports ``frozen`` in
        ``cgroup.events``). Raises OSError (ETIMEDOUT) when it does not settle."""
        if self.version == "2":
            state_file = Path(handle.dirs[0]) / "cgroup.events"
            write_value(state_file.parent / "cgroup.freeze", "1" if frozen else "0")
            wanted = "1" if frozen else "0"
        else:
            freezer = self._dir(handle, "freezer")
            if freezer is None:
                raise OSError(errno.ENOTSUP, "the freezer cgroup is not mounted")
            state_file = freezer / "freezer.state"
            wanted = "FROZEN" if frozen else "THAWED"
            write_value(state_file, wanted)

        def settled() -> bool:
            text = read_value(state_file)
            if self.version == "2":
                return str(keyed(text).get("frozen")) == wanted
            return text == wanted

        deadline = time.monotonic() + timeout
        delay = 0.001
        while not settled():
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, "timed out waiting for the cgroup to "
                              + ("freeze" if frozen else "thaw"))
            if self.version == "1" and frozen:
                # a v1 freeze can stall on a task in an uninterruptible sleep: ask again
                write_value(state_file, "FROZEN")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def is_frozen(self, handle: CgroupHandle) -> bool:
        if self.version == "2":
            try:
                return keyed(read_value(Path(handle.dirs[0]) / "cgroup.events")).get("frozen") == 1
            except FileNotFoundError:
                return False
        freezer = self._dir(handle, "freezer")
        try:
            return freezer is not None and read_value(freezer / "freezer.state") != "THAWED"
        except FileNotFoundError:
            return False

    def pids(self, handle: CgroupHandle) -> list[int]:
        """Every process in the container's cgroup and its descendant cgroups."""
        base = self._dir(handle, "pids") or self._dir(handle, "memory") or Path(handle.dirs[0])
        found: list[int] = []
        for dirpath, _dirs, _files in os.walk(base):
            try:
                found.extend(int(p) for p in read_value(Path(dirpath) / "cgroup.procs").split())
            except FileNotFoundError:
                continue
        return sorted(set(found))

    def kill_all(self, handle: CgroupHandle, timeout: float = 5.0) -> list[int]:
        """SIGKILL every process in the container's cgroup, none able to fork away
        meanwhile (``cgroup.kill`` on v2; else freeze, kill, thaw), and wait until the
        cgroup is empty. Returns the pids that were there (none for a cgroup that is gone)."""
        found = self.pids(handle)
        if not found:
            return []
        kill_file = Path(handle.dirs[0]) / "cgroup.kill"
        if self.version == "2" and kill_file.exists():
            write_value(kill_file, "1")
        else:
            frozen = False
            with contextlib.suppress(OSError):
                self.freeze(handle, True)
                frozen = True
            for pid in self.pids(handle):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if frozen:
                with contextlib.suppress(OSError):
                    self.freeze(handle, False)  # a frozen task dies only once thawed
        deadline = time.monotonic() + timeout
        while self.pids(handle) and time.monotonic() < deadline:
            time.sleep(0.01)
        return found

    def _dir(self, handle: CgroupHandle, key: str) -> Path | None:
        """The container's directory in the hierarchy of controller ``key`` (v1), or its
        one directory (v2)."""
        if self.version == "2":
            return Path(handle.dirs[0])
        for k, mountpoint in sorted(self.hierarchies.items()):
            if key in k.split(","):
                for d in handle.dirs:
                    if d.startswith(mountpoint + "/"):
                        return Path(d)
        return None


__all__ = ["Resources", "CgroupHandle", "CgroupStats", "CgroupManager", "DEFAULT_DEVICE_RULES",
           "PRIVILEGED_DEVICE_RULES", "cpu_quota_period", "shares_to_weight",
           "detect_v1_hierarchies", "detect_hybrid_unified"]
