from __future__ import annotations

import pytest

from runtime.timefmt import until_ns

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(("text", "until"), [
    ("10m", NOW - 600 * 10**9),
    ("1h30m", NOW - 5400 * 10**9),
    ("24h", NOW - 86400 * 10**9),
    ("1.5s", NOW - 1_500_000_000),
    ("-1h", NOW + 3600 * 10**9),  # Go durations may be negative: a time after now
    ("1700000000", NOW),
    ("1700000000.5", NOW + 500_000_000),
    ("2023-11-14T22:13:20Z", NOW),
    ("0", 0),  # not a zero duration: dockerd's GetTimestamp reads "0" as the epoch
])
def test_until_takes_durations_and_timestamps_as_dockerd(text: str, until: int) -> None:
    assert until_ns(text, NOW) == until


@pytest.mark.parametrize("text", ["yesterday", "", "1h 30m", "1e3s", "h"])
def test_until_errors(text: str) -> None:
    with pytest.raises(ValueError, match=f'failed to parse value as time or duration: "{text}"'):
        until_ns(text, NOW)
