"""OomWatch: the supervisor's record of OOM kills seen while a container ran (the kernfs
notification itself is exercised on cgroup v2 by conformance's OOM test in the guest)."""

from __future__ import annotations

from pathlib import Path

from runtime.process.oomwatch import OomWatch, read_oom_kills

EVENTS = "low 0\nhigh 0\nmax 3\noom {oom}\noom_kill {kill}\noom_group_kill 0\n"


def _cgroup(tmp_path: Path, kill: int) -> Path:
    d = tmp_path / "cg"
    d.mkdir(exist_ok=True)
    (d / "memory.events").write_text(EVENTS.format(oom=kill, kill=kill))
    return d


def test_read_oom_kills(tmp_path: Path) -> None:
    import os

    d = _cgroup(tmp_path, 2)
    fd = os.open(d / "memory.events", os.O_RDONLY)
    try:
        assert read_oom_kills(fd) == 2
    finally:
        os.close(fd)
    assert read_oom_kills(fd) is None  # closed: as a removed cgroup, "gone"


def test_kill_counted_while_running_is_reported_at_exit(tmp_path: Path) -> None:
    watch = OomWatch()
    d = _cgroup(tmp_path, 0)
    watch.watch(41, (str(tmp_path / "no-memory-here"), str(d)))
    (d / "memory.events").write_text(EVENTS.format(oom=1, kill=1))
    watch.on_ready()
    assert watch.finish(41) is True
    assert watch.finish(41) is False  # forgotten once reported


def test_no_kill_and_no_memory_controller(tmp_path: Path) -> None:
    watch = OomWatch()
    d = _cgroup(tmp_path, 0)
    watch.watch(7, (str(d),))
    watch.watch(8, (str(tmp_path / "v1-cpu-only"),))
    assert watch.finish(7) is False and watch.finish(8) is False
    assert watch.finish(9) is False  # never watched
