"""The systemd cgroup driver (``--exec-opt native.cgroupdriver=systemd``), cgroup v2.

dockerd's default when systemd is PID 1: systemd is the single writer of the cgroup tree,
so each container is a transient ``docker-<id>.scope`` unit in ``system.slice`` (or the
slice given as ``--cgroup-parent``), with ``Delegate=yes`` and its limits as unit
properties, and, as runc does, in the cgroup files as well. A scope must adopt a process
when it is created: a placeholder (``sleep``) holds it until the container's init has
joined (:meth:`SystemdCgroupManager.started`). The scope goes away by itself when its
last process exits; :meth:`remove` stops it in case it did not.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from runtime.linux.cgroups import CgroupHandle, CgroupManager, Resources, cpu_quota_period
from runtime.linux.cgroups import shares_to_weight
from runtime.linux.devices import attach_device_program
from runtime.linux.syscalls import Syscalls
from runtime.linux.systemd import (
    Property, SystemdBus, SystemdError, UnitManager, slice_path, systemd_is_running,
)

DEFAULT_SLICE = "system.slice"
SLICE_ERROR = 'cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"'


def scope_name(container_id: str) -> str:
    return f"docker-{container_id}.scope"


def unit_properties(r: Resources) -> list[Property]:
    """The limits systemd keeps for the scope (runc's unit properties for these fields)."""
    props: list[Property] = []
    if r.memory > 0:
        props.append(("MemoryMax", ("t", r.memory)))
    if r.memory_reservation > 0:
        props.append(("MemoryLow", ("t", r.memory_reservation)))
    if r.memory_swap > 0 and r.memory > 0:
        props.append(("MemorySwapMax", ("t", max(r.memory_swap - r.memory, 0))))
    quota, period = cpu_quota_period(r)
    if quota > 0:
        props.append(("CPUQuotaPerSecUSec", ("t", quota * 1_000_000 // (period or 100000))))
    if period:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if r.cpu_shares:
        props.append(("CPUWeight", ("t", shares_to_weight(r.cpu_shares))))
    if r.pids_limit and r.pids_limit > 0:
        props.append(("TasksMax", ("t", r.pids_limit)))
    return props


class SystemdCgroupManager(CgroupManager):
    """Container cgroups as systemd scopes (cgroup v2 only). ``parent`` here is a slice."""

    driver = "systemd"

    def __init__(self, units: UnitManager, root: str = "/sys/fs/cgroup",
                 syscalls: Syscalls | None = None,
                 placeholder: Callable[[], subprocess.Popen[bytes]] | None = None,
                 in_scope: Callable[[int, Path], bool] | None = None,
                 join_timeout: float = 10.0) -> None:
        super().__init__(DEFAULT_SLICE, root=root, mountinfo="", syscalls=syscalls)
        if self.version != "2":
            raise OSError("the systemd cgroup driver needs cgroup v2 here")
        self.units = units
        self._placeholder = placeholder or _sleeper
        self._holders: dict[str, subprocess.Popen[bytes]] = {}
        self._join_timeout = join_timeout
        self._in_scope = in_scope or self._proc_in_scope

    def _scope_dir(self, container_id: str, parent: str) -> Path:
        return self.root / slice_path(parent or DEFAULT_SLICE) / scope_name(container_id)

    def create(self, container_id: str, resources: Resources, parent: str = "") -> CgroupHandle:
        holder = self._placeholder()
        self._holders[container_id] = holder
        path = self._scope_dir(container_id, parent)
        handle = CgroupHandle(container_id, (str(path),))
        try:
            props: list[Property] = [
                ("Description", ("s", f"libcontainer container {container_id}")),
                ("Slice", ("s", parent or DEFAULT_SLICE)),
                ("Delegate", ("b", True)),
                ("PIDs", ("au", [holder.pid])),
                ("DefaultDependencies", ("b", False)),
                ("MemoryAccounting", ("b", True)),
                ("CPUAccounting", ("b", True)),
                ("IOAccounting", ("b", True)),
                ("TasksAccounting", ("b", True)),
                *unit_properties(resources),
            ]
            self.units.start_transient_unit(scope_name(container_id), props)
            self._wait_joined(holder.pid, path)
            attach_device_program(self.sys, str(path), resources.device_rules)
            super().update(handle, resources)  # the unit already has these properties
        except BaseException:
            self.remove(handle)
            raise
        return handle

    def update(self, handle: CgroupHandle, resources: Resources) -> None:
        """``docker update``: the unit's properties first, so that systemd does not put
        the old limits back (on a daemon-reload, say), then the cgroup files, as runc."""
        props = unit_properties(resources)
        if props:
            self.units.set_unit_properties(scope_name(handle.container_id), props)
        super().update(handle, resources)

    def _proc_in_scope(self, pid: int, path: Path) -> bool:
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text().strip()
        except FileNotFoundError:
            raise OSError(f"the placeholder process of {path.name} died") from None
        return text == "0::/" + str(path.relative_to(self.root))

    def _wait_joined(self, pid: int, path: Path) -> None:
        """StartTransientUnit returns with the job queued: wait for the placeholder to be
        in the scope's cgroup."""
        deadline = time.monotonic() + self._join_timeout
        while not self._in_scope(pid, path):
            if time.monotonic() > deadline:
                raise OSError(f"systemd did not create {path.name} in time")
            time.sleep(0.01)

    def started(self, handle: CgroupHandle) -> None:
        """The container's init is in the scope: release the placeholder."""
        holder = self._holders.pop(handle.container_id, None)
        if holder is not None:
            holder.send_signal(signal.SIGKILL)
            holder.wait()

    def remove(self, handle: CgroupHandle, timeout: float = 1.0) -> None:
        self.started(handle)
        name = scope_name(handle.container_id)
        try:
            self.units.stop_unit(name)
        except SystemdError as exc:
            if exc.name not in ("org.freedesktop.systemd1.NoSuchUnit",):
                raise
        try:
            self.units.reset_failed_unit(name)  # a failed (e.g. OOM-killed) scope stays loaded
        except SystemdError:
            pass
        super().remove(handle, timeout)

    def oom_killed(self, handle: CgroupHandle) -> bool:
        """memory.events while the scope's cgroup exists; after the last process died
        systemd may have removed it already, but it records an OOM kill as the scope's
        result (the failed unit stays loaded until :meth:`remove` resets it)."""
        if super().oom_killed(handle):
            return True
        return self.units.scope_result(scope_name(handle.container_id)) == "oom-kill"

    def handle_for(self, container_id: str, parent: str = "") -> CgroupHandle:
        return CgroupHandle(container_id, (str(self._scope_dir(container_id, parent)),))


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "infinity"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def make_cgroup_manager(driver: str, parent: str, root: str = "/sys/fs/cgroup") -> CgroupManager:
    """The daemon's cgroup manager for ``--exec-opt native.cgroupdriver`` (``driver``, ""
    = dockerd's default) and ``--cgroup-parent`` (cgroupfs only)."""
    version = "2" if Path(root, "cgroup.controllers").exists() else "1"
    if choose_driver(driver, version, systemd_is_running()) == "systemd":
        return SystemdCgroupManager(SystemdBus(), root=root)
    return CgroupManager(parent=parent, root=root)


def choose_driver(requested: str, cgroup_version: str, systemd_running: bool) -> str:
    """dockerd's choice: the requested driver, else systemd where systemd is PID 1 on
    cgroup v2, else cgroupfs."""
    if requested:
        return requested
    return "systemd" if systemd_running and cgroup_version == "2" else "cgroupfs"


__all__ = ["SystemdCgroupManager", "choose_driver", "scope_name", "unit_properties",
           "DEFAULT_SLICE", "SLICE_ERROR", "make_cgroup_manager"]
