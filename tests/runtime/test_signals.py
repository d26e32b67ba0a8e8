"""moby's ``signal.ParseSignal`` and ``ValidSignalForPlatform``: the one parser that kill,
``--stop-signal`` and ``STOPSIGNAL`` share (rows of the builder's and the container
service's former copies together)."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.signals import SIGNAL_MAP, parse_kill_signal, parse_signal, valid_for_platform


@pytest.mark.parametrize(("raw", "number"), [
    ("9", 9), ("+9", 9), ("15", 15), ("64", 64),
    ("99", 99), ("-1", -1),  # numbers are taken as they are; only kill checks them
    ("KILL", 9), ("kill", 9), ("SIGKILL", 9), ("sigterm", 15), ("SIGUSR1", 10), ("WINCH", 28),
    ("IOT", 6), ("CLD", 17), ("POLL", 29), ("STKFLT", 16), ("PWR", 30),
    ("RTMIN", 34), ("RTMIN+1", 35), ("rtmin+3", 37), ("SIGRTMIN+15", 49),
    ("RTMAX-14", 50), ("RTMAX-1", 63), ("RTMAX", 64),
])
def test_parse_signal(raw: str, number: int) -> None:
    assert parse_signal(raw) == number


@pytest.mark.parametrize("raw", [
    "0", "", "BOGUS", "NOPE", "SIG", "SIGSIGKILL", "RTMIN+16", "rtmin+16", "RTMAX-15", "RTMIN+0",
    " 9", "9 ", "KILL ", "0x9", "9.0",
])
def test_invalid_signals(raw: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_signal(raw)
    assert str(caught.value) == f"Invalid signal: {raw}"


@pytest.mark.parametrize(("raw", "number"), [("9", 9), ("SIGHUP", 1), ("64", 64), ("RTMAX", 64)])
def test_kill_signals(raw: str, number: int) -> None:
    assert parse_kill_signal(raw) == number


@pytest.mark.parametrize(("raw", "message"), [
    ("65", "the linux daemon does not support signal 65"),
    ("99", "the linux daemon does not support signal 99"),
    ("-1", "the linux daemon does not support signal -1"),
    ("32", "the linux daemon does not support signal 32"),  # glibc's own, not in the map
    ("0", "Invalid signal: 0"),
    ("BOGUS", "Invalid signal: BOGUS"),
])
def test_kill_refuses_what_linux_has_not(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_kill_signal(raw)
    assert str(caught.value) == message


def test_map_is_mobys() -> None:
    assert len(SIGNAL_MAP) == 34 + 31
    assert valid_for_platform(34) and valid_for_platform(64) and not valid_for_platform(33)
