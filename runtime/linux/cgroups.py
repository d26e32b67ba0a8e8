"""Per-container cgroups, v1 (legacy/hybrid) and v2 (unified), detected at start.

The daemon creates and configures ``<mount>/<parent>/<container id>`` before the start
(for each v1 hierarchy, or once on v2); the container's init joins the directories in
``CgroupHandle.dirs`` itself. On a hybrid host (v1 controllers plus a cgroup2 hierarchy
such as ``/sys/fs/cgroup/unified``) the container also gets a directory in the cgroup2
hierarchy, as runc does for dockerd (``0::/<parent>/<id>`` in /proc/<pid>/cgroup); no
controllers are configured there. Values are written as runc writes them for dockerd's
HostConfig (``--cpus`` -> ``cfs_quota_us`` over a 100000 us period, and so on).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.linux.devices import attach_device_program
from runtime.linux.syscalls import LinuxSyscalls, Syscalls

# runc's AllowedDevices plus moby's defaults (deny fuse 10:229 by not listing it).
DEFAULT_DEVICE_RULES: tuple[str, ...] = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)
PRIVILEGED_DEVICE_RULES: tuple[str, ...] = ("a *:* rwm",)
CPU_PERIOD_FOR_NANO_CPUS = 100000


@dataclass(frozen=True, slots=True)
class Resources:
    """HostConfig resource limits, in Docker's units (0 / None = unset).

    memory, memory_swap (total memory+swap, -1 = unlimited swap), memory_reservation:
    bytes; nano_cpus: 1e-9 CPUs; cpu_shares: relative weight; cpu_quota/cpu_period:
    microseconds; pids_limit: None or <= 0 = unlimited; blkio_weight: 10..1000.
    ``device_rules`` are devices-cgroup allow lines (``PRIVILEGED_DEVICE_RULES`` for
    --privileged): v1's devices controller, or an eBPF device program on v2.
    """

    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    blkio_weight: int = 0
    device_rules: tuple[str, ...] = DEFAULT_DEVICE_RULES


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


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _write(path: Path, value: str | int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _keyed(text: str) -> dict[str, int]:
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def cpu_quota_period(r: Resources) -> tuple[int, int]:
    """(quota, period) in microseconds; quota 0 = unlimited."""
    if r.nano_cpus:
        period = CPU_PERIOD_FOR_NANO_CPUS
        return r.nano_cpus * period // 1_000_000_000, period
    return r.cpu_quota, r.cpu_period


def shares_to_weight(shares: int) -> int:
    """runc's cpu.shares -> cgroup v2 cpu.weight conversion."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def detect_v1_hierarchies(mountinfo: str, root: str = "/sys/fs/cgroup") -> dict[str, str]:
    """{controllers key: mountpoint} of the v1 hierarchies under ``root``."""
    result = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] != "cgroup":
            continue
        mountpoint = fields[4]
        if not mountpoint.startswith(root + "/"):
            continue
        keys = [o for o in rfields[2].split(",") if o not in ("rw", "ro")
                and not o.startswith("release_agent") and o not in (
                    "xattr", "clone_children", "noprefix", "cpuset_v2_mode")]
        result[",".join(keys)] = mountpoint
    return result


def detect_hybrid_unified(mountinfo: str, root: str = "/sys/fs/cgroup") -> str | None:
    """The mountpoint of a cgroup2 hierarchy mounted below ``root`` next to v1
    hierarchies (systemd's ``unified``), or None."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if sep and len(fields) >= 5 and rfields[:1] == ["cgroup2"]:
            if fields[4].startswith(root + "/"):
                return fields[4]
    return None


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
            self._enable_v2_controllers(path)
            path.mkdir(exist_ok=True)
            handle = CgroupHandle(container_id, (str(path),))
        else:
            dirs = []
            for key, mountpoint in sorted(self.hierarchies.items()):
                path = self._path(Path(mountpoint), key, parent, container_id)
                if key == "cpuset":
                    self._cpuset_ancestors(Path(mountpoint), path)
                path.mkdir(parents=True, exist_ok=True)
                dirs.append(str(path))
            if self.unified is not None:
                path = self._path(Path(self.unified), "", parent, container_id)
                path.mkdir(parents=True, exist_ok=True)
                dirs.append(str(path))
            handle = CgroupHandle(container_id, tuple(dirs))
        try:
            if self.version == "1":
                self._set_devices(handle, resources.device_rules)
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
            self._update_v2(Path(handle.dirs[0]), r)
        else:
            self._update_v1(handle, r)

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
            return _keyed(_read(memory / name)).get("oom_kill", 0) > 0
        except FileNotFoundError:
            return False

    def stats(self, handle: CgroupHandle) -> CgroupStats:
        mem = self._dir(handle, "memory")
        pids = self._dir(handle, "pids")
        if self.version == "2":
            assert mem is not None
            limit = _read(mem / "memory.max")
            cpu = _keyed(_read(mem / "cpu.stat")).get("usage_usec", 0) * 1000
            return CgroupStats(int(_read(mem / "memory.current")),
                               0 if limit == "max" else int(limit),
                               int(_read(mem / "pids.current")), cpu)
        cpuacct = self._dir(handle, "cpuacct") or self._dir(handle, "cpu,cpuacct")
        return CgroupStats(
            int(_read(mem / "memory.usage_in_bytes")) if mem else 0,
            int(_read(mem / "memory.limit_in_bytes")) if mem else 0,
            int(_read(pids / "pids.current")) if pids else 0,
            int(_read(cpuacct / "cpuacct.usage")) if cpuacct else 0,
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
            _write(state_file.parent / "cgroup.freeze", "1" if frozen else "0")
            wanted = "1" if frozen else "0"
        else:
            freezer = self._dir(handle, "freezer")
            if freezer is None:
                raise OSError(errno.ENOTSUP, "the freezer cgroup is not mounted")
            state_file = freezer / "freezer.state"
            wanted = "FROZEN" if frozen else "THAWED"
            _write(state_file, wanted)

        def settled() -> bool:
            text = _read(state_file)
            if self.version == "2":
                return str(_keyed(text).get("frozen")) == wanted
            return text == wanted

        deadline = time.monotonic() + timeout
        delay = 0.001
        while not settled():
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, "timed out waiting for the cgroup to "
                              + ("freeze" if frozen else "thaw"))
            if self.version == "1" and frozen:
                # a v1 freeze can stall on a task in an uninterruptible sleep: ask again
                _write(state_file, "FROZEN")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def is_frozen(self, handle: CgroupHandle) -> bool:
        if self.version == "2":
            try:
                return _keyed(_read(Path(handle.dirs[0]) / "cgroup.events")).get("frozen") == 1
            except FileNotFoundError:
                return False
        freezer = self._dir(handle, "freezer")
        try:
            return freezer is not None and _read(freezer / "freezer.state") != "THAWED"
        except FileNotFoundError:
            return False

    def pids(self, handle: CgroupHandle) -> list[int]:
        """Every process in the container's cgroup and its descendant cgroups."""
        base = self._dir(handle, "pids") or self._dir(handle, "memory") or Path(handle.dirs[0])
        found: list[int] = []
        for dirpath, _dirs, _files in os.walk(base):
            try:
                found.extend(int(p) for p in _read(Path(dirpath) / "cgroup.procs").split())
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
            _write(kill_file, "1")
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

    # ---- v1 ---------------------------------------------------------------------------

    def _dir(self, handle: CgroupHandle, key: str) -> Path | None:
        if self.version == "2":
            return Path(handle.dirs[0])
        for k, mountpoint in sorted(self.hierarchies.items()):
            if key in k.split(","):
                for d in handle.dirs:
                    if d.startswith(mountpoint + "/"):
                        return Path(d)
        return None

    def _cpuset_ancestors(self, mountpoint: Path, path: Path) -> None:
        """A v1 cpuset cgroup takes no tasks until cpus and mems are set: copy them down."""
        current = mountpoint
        for part in path.relative_to(mountpoint).parts:
            child = current / part
            child.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read(child / name):
                    _write(child / name, _read(current / name))
            current = child

    def _set_devices(self, handle: CgroupHandle, rules: tuple[str, ...]) -> None:
        devices = self._dir(handle, "devices")
        if devices is None:
            return
        if rules == PRIVILEGED_DEVICE_RULES:
            _write(devices / "devices.allow", "a *:* rwm")
            return
        _write(devices / "devices.deny", "a")
        for rule in rules:
            _write(devices / "devices.allow", rule)

    def _update_v1(self, handle: CgroupHandle, r: Resources) -> None:
        mem = self._dir(handle, "memory")
        if mem is not None:
            limit = r.memory if r.memory > 0 else -1
            swap = r.memory_swap if r.memory_swap != 0 else (-1 if r.memory <= 0 else 0)
            memsw = mem / "memory.memsw.limit_in_bytes"
            has_swap = memsw.exists()
            # memsw must stay >= limit at every moment: order the two writes accordingly.
            try:
                _write(mem / "memory.limit_in_bytes", limit)
                if has_swap and swap:
                    _write(memsw, swap)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not has_swap:
                    raise
                _write(memsw, swap)
                _write(mem / "memory.limit_in_bytes", limit)
            if r.memory_reservation:
                _write(mem / "memory.soft_limit_in_bytes", r.memory_reservation)
        cpu = self._dir(handle, "cpu")
        if cpu is not None:
            if r.cpu_shares:
                _write(cpu / "cpu.shares", r.cpu_shares)
            quota, period = cpu_quota_period(r)
            if period:
                _write(cpu / "cpu.cfs_period_us", period)
            if quota:
                _write(cpu / "cpu.cfs_quota_us", quota)
        cpuset = self._dir(handle, "cpuset")
        if cpuset is not None:
            parent = cpuset.parent
            _write(cpuset / "cpuset.cpus", r.cpuset_cpus or _read(parent / "cpuset.cpus"))
            _write(cpuset / "cpuset.mems", r.cpuset_mems or _read(parent / "cpuset.mems"))
        pids = self._dir(handle, "pids")
        if pids is not None:
            _write(pids / "pids.max", r.pids_limit if r.pids_limit and r.pids_limit > 0 else "max")
        blkio = self._dir(handle, "blkio")
        if blkio is not None and r.blkio_weight:
            for name in ("blkio.weight", "blkio.bfq.weight"):
                if (blkio / name).exists():
                    _write(blkio / name, r.blkio_weight)
                    break

    # ---- v2 ---------------------------------------------------------------------------

    def _enable_v2_controllers(self, path: Path) -> None:
        current = self.root
        for part in path.relative_to(self.root).parts:
            try:
                available = set(_read(current / "cgroup.controllers").split())
            except FileNotFoundError:
                available = set()
            wanted = [c for c in ("cpuset", "cpu", "io", "memory", "pids") if c in available]
            if wanted:
                try:
                    _write(current / "cgroup.subtree_control",
                           " ".join("+" + c for c in wanted))
                except OSError:
                    # as runc: one by one, and a cgroup that holds processes (a relative
                    # --cgroup-parent below the daemon's own) refuses them; go on without
                    for c in wanted:
                        try:
                            _write(current / "cgroup.subtree_control", "+" + c)
                        except OSError:
                            pass
            current = current / part
            if current != path:
                current.mkdir(exist_ok=True)

    def _update_v2(self, path: Path, r: Resources) -> None:
        try:
            enabled = {c.lstrip("+") for c in _read(path.parent / "cgroup.subtree_control").split()}
        except FileNotFoundError:
            enabled = set()

        def reset(name: str) -> None:
            # an unset limit: "max" where the controller is enabled (runc skips unset ones)
            if name.partition(".")[0] in enabled:
                _write(path / name, "max")

        if r.memory > 0:
            _write(path / "memory.max", r.memory)
        else:
            reset("memory.max")
        if r.memory_swap == -1:
            _write(path / "memory.swap.max", "max")
        elif r.memory_swap > 0 and r.memory > 0:
            _write(path / "memory.swap.max", max(r.memory_swap - r.memory, 0))
        if r.memory_reservation:
            _write(path / "memory.low", r.memory_reservation)
        quota, period = cpu_quota_period(r)
        if quota or period:
            _write(path / "cpu.max", f"{quota if quota > 0 else 'max'} {period or 100000}")
        if r.cpu_shares:
            _write(path / "cpu.weight", shares_to_weight(r.cpu_shares))
        if r.cpuset_cpus:
            _write(path / "cpuset.cpus", r.cpuset_cpus)
        if r.cpuset_mems:
            _write(path / "cpuset.mems", r.cpuset_mems)
        if r.pids_limit and r.pids_limit > 0:
            _write(path / "pids.max", r.pids_limit)
        else:
            reset("pids.max")
        if r.blkio_weight:
            _write(path / "io.weight", f"default {blkio_weight_to_io_weight(r.blkio_weight)}")


__all__ = ["Resources", "CgroupHandle", "CgroupStats", "CgroupManager", "DEFAULT_DEVICE_RULES",
           "PRIVILEGED_DEVICE_RULES", "cpu_quota_period", "shares_to_weight",
           "detect_v1_hierarchies", "detect_hybrid_unified"]
