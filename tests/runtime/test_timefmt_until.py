from __future__ import annotations

import pytest

from runtime.timefmt import go_duration_ns, until_ns

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("1h30m", 5400 * 10**9), ("24h", 86400 * 10**9), ("1.5s", 1_500_000_000), ("300ms", 300_000_000),
    ("2µs", 2000), ("10us", 10_000), (".5m", 30 * 10**9),
])
def test_go_durations(text: str, ns: int) -> None:
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h 30m", "-1h", "1h30", "1e3s"])
def test_not_go_durations(text: str) -> None:
    assert go_duration_ns(text) is None


def test_until_takes_durations_and_timestamps_as_dockerd() -> None:
    assert until_ns("1h30m", NOW) == NOW - 5400 * 10**9
    assert until_ns("24h", NOW) == NOW - 86400 * 10**9
    assert until_ns("1700000000", NOW) == NOW
    assert until_ns("2023-11-14T22:13:20Z", NOW) == NOW
    with pytest.raises(ValueError, match='failed to parse value as time or duration: "yesterday"'):
        until_ns("yesterday", NOW)
