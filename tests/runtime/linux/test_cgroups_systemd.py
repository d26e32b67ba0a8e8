"""The systemd cgroup driver against a fake v2 tree and a fake systemd: scope naming,
unit properties, slices, the placeholder's lifetime, removal."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from runtime.linux.cgroups import DEFAULT_DEVICE_RULES, Resources
from runtime.linux.cgroups_systemd import (
    SystemdCgroupManager, choose_driver, scope_name, unit_properties,
)
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.linux.systemd import Property, SystemdError, slice_path, valid_slice


class FakeSystemd:
    """Creates the scope directory like systemd would, and records the calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[tuple[str, dict[str, object]]] = []
        self.stopped: list[str] = []
        self.changed: list[tuple[str, dict[str, object]]] = []

    def set_unit_properties(self, name: str, properties: Sequence[Property]) -> None:
        self.changed.append((name, {k: v[1] for k, (v) in properties}))

    def start_transient_unit(self, name: str, properties: Sequence[Property]) -> None:
        props = {k: v[1] for k, (v) in properties}
        self.started.append((name, props))
        (self.root / slice_path(str(props["Slice"])) / name).mkdir(parents=True)

    results: dict[str, str] = {}
    reset: list[str] = []

    def scope_result(self, name: str) -> str:
        return self.results.get(name, "")

    def reset_failed_unit(self, name: str) -> None:
        self.reset.append(name)

    def stop_unit(self, name: str) -> None:
        self.stopped.append(name)
        scopes = list(self.root.glob(f"**/{name}"))
        if not scopes:
            raise SystemdError("org.freedesktop.systemd1.NoSuchUnit", f"Unit {name} not loaded.")
        shutil.rmtree(scopes[0])  # systemd removes the scope's cgroup


def make(tmp_path: Path) -> tuple[SystemdCgroupManager, FakeSystemd, RecordingSyscalls]:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    units, sys = FakeSystemd(root), RecordingSyscalls()
    manager = SystemdCgroupManager(units, root=str(root), syscalls=sys,
                                   in_scope=lambda _pid, path: path.is_dir())
    return manager, units, sys


def test_slices() -> None:
    assert slice_path("system.slice") == "system.slice"
    assert slice_path("a-b-c.slice") == "a.slice/a-b.slice/a-b-c.slice"
    assert slice_path("-.slice") == ""
    assert valid_slice("my-app.slice") and not valid_slice("foo") and not valid_slice("/a.slice")
    assert not valid_slice("a--b.slice") and not valid_slice(".slice")


def test_unit_properties_as_runc_sets_them() -> None:
    props = dict(unit_properties(Resources(memory=64 << 20, memory_swap=128 << 20,
                                           nano_cpus=500_000_000, cpu_shares=512,
                                           pids_limit=20)))
    assert props["MemoryMax"] == ("t", 64 << 20)
    assert props["MemorySwapMax"] == ("t", 64 << 20)
    assert props["CPUQuotaPerSecUSec"] == ("t", 500_000)
    assert props["CPUQuotaPeriodUSec"] == ("t", 100_000)
    assert props["TasksMax"] == ("t", 20)
    assert "MemoryMax" not in dict(unit_properties(Resources()))


def test_scope_lifecycle(tmp_path: Path) -> None:
    manager, units, sys = make(tmp_path)
    handle = manager.create("abc", Resources(memory=32 << 20, pids_limit=5))
    scope = tmp_path / "cg/system.slice/docker-abc.scope"
    assert handle.dirs == (str(scope),) and scope_name("abc") == "docker-abc.scope"
    (name, props), = units.started
    assert name == "docker-abc.scope"
    assert props["Delegate"] is True and props["Slice"] == "system.slice"
    assert props["MemoryMax"] == 32 << 20 and props["TasksMax"] == 5
    holder_pid = props["PIDs"][0]  # type: ignore[index]
    assert (scope / "memory.max").read_text() == str(32 << 20)  # the files too, as runc
    assert [a[0] for a in sys.of("bpf_prog_attach")] == [str(scope)]
    holder = manager._holders["abc"]
    assert holder.pid == holder_pid and holder.poll() is None
    manager.started(handle)
    assert holder.poll() is not None  # the placeholder is gone once the init is in
    assert manager.handle_for("abc") == handle
    assert not manager.oom_killed(handle)
    units.results["docker-abc.scope"] = "oom-kill"  # systemd removed the cgroup, kept the unit
    manager.remove(handle)
    assert manager.oom_killed(handle) and units.reset == ["docker-abc.scope"]
    manager.remove(handle)  # NoSuchUnit the second time: already gone is fine
    assert units.stopped == ["docker-abc.scope", "docker-abc.scope"] and not scope.exists()


def test_update_sets_unit_properties_then_files(tmp_path: Path) -> None:
    manager, units, _sys = make(tmp_path)
    handle = manager.create("abc", Resources(memory=32 << 20))
    assert units.changed == []  # create passes the limits in StartTransientUnit already
    manager.update(handle, Resources(memory=64 << 20, pids_limit=7))
    assert units.changed == [("docker-abc.scope", {"MemoryMax": 64 << 20, "TasksMax": 7})]
    scope = tmp_path / "cg/system.slice/docker-abc.scope"
    assert (scope / "memory.max").read_text() == str(64 << 20)
    assert (scope / "pids.max").read_text() == "7"
    manager.remove(handle)


def test_given_slice_and_failed_start(tmp_path: Path) -> None:
    manager, units, _sys = make(tmp_path)
    handle = manager.create("c2", Resources(), "my-app.slice")
    assert handle.dirs == (str(tmp_path / "cg/my.slice/my-app.slice/docker-c2.scope"),)
    manager.remove(handle)

    def refuse(name: str, properties: Sequence[Property]) -> None:
        raise SystemdError("org.freedesktop.systemd1.UnitExists", f"Unit {name} exists")

    units.start_transient_unit = refuse  # type: ignore[method-assign]
    with pytest.raises(SystemdError):
        manager.create("c3", Resources())
    assert "c3" not in manager._holders  # the placeholder was released


def test_driver_choice() -> None:
    assert choose_driver("", "2", True) == "systemd"
    assert choose_driver("", "2", False) == "cgroupfs"
    assert choose_driver("", "1", True) == "cgroupfs"
    assert choose_driver("cgroupfs", "2", True) == "cgroupfs"


def test_v1_host_refuses_the_systemd_driver(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    with pytest.raises(OSError, match="needs cgroup v2"):
        SystemdCgroupManager(FakeSystemd(tmp_path), root=str(tmp_path / "v1"))
