import asyncio

import pytest

from runtime.containers.state import ExitStatus, State, Status, WaitCondition
from runtime.errors import Conflict, InvalidParameter


def test_status_transitions() -> None:
    s = State()
    assert s.status is Status.CREATED
    s.set_running(42, 1)
    assert s.status is Status.RUNNING and s.pid == 42
    s.paused = True
    assert s.status is Status.PAUSED
    s.set_stopped(3, 2)
    assert s.status is Status.EXITED and s.exit_code == 3 and s.pid == 0
    s.set_removal_in_progress("x")
    assert s.status is Status.REMOVING
    with pytest.raises(Conflict, match="removal of container x is already in progress"):
        s.set_removal_in_progress("x")
    s.reset_removal_in_progress()
    s.set_dead()
    assert s.status is Status.DEAD


def test_start_failure_stays_created() -> None:
    s = State()
    s.set_start_failed(127, "boom")
    assert s.status is Status.CREATED
    assert s.exit_status() == ExitStatus(127, "boom")


async def test_not_running_resolves_at_once_when_stopped() -> None:
    s = State()
    fut = s.wait(WaitCondition.NOT_RUNNING)
    assert fut.done() and fut.result() == ExitStatus(0)


async def test_waiters_per_condition() -> None:
    s = State()
    s.set_running(1, 1)
    not_running = s.wait(WaitCondition.NOT_RUNNING)
    next_exit = s.wait(WaitCondition.NEXT_EXIT)
    removed = s.wait(WaitCondition.REMOVED)
    await asyncio.sleep(0)
    assert not (not_running.done() or next_exit.done() or removed.done())
    s.set_stopped(137, 2, oom_killed=True)
    assert not_running.result() == ExitStatus(137)
    assert next_exit.result() == ExitStatus(137)
    assert not removed.done()
    s.set_removed()
    assert removed.result() == ExitStatus(137)


async def test_next_exit_waits_even_when_stopped() -> None:
    s = State()
    fut = s.wait(WaitCondition.NEXT_EXIT)
    assert not fut.done()
    s.set_running(1, 1)
    s.set_stopped(0, 2)
    assert fut.result().exit_code == 0


def test_condition_parse() -> None:
    assert WaitCondition.parse("") is WaitCondition.NOT_RUNNING
    assert WaitCondition.parse("removed") is WaitCondition.REMOVED
    with pytest.raises(InvalidParameter):
        WaitCondition.parse("bogus")


def test_state_json_round_trip() -> None:
    s = State()
    s.set_running(7, 123)
    s.set_stopped(1, 456, oom_killed=True)
    again = State.from_json(s.to_json())
    assert again.to_json() == s.to_json()
    assert again.status is Status.EXITED
