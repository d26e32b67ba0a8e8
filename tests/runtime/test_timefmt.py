from __future__ import annotations

import pytest

from runtime.timefmt import parse_rfc3339, parse_timestamp, rfc3339_nano, rfc3339_nano_fixed


def test_rfc3339_nano_trims_zeros() -> None:
    assert rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339_nano(0) == "0001-01-01T00:00:00Z"


def test_fixed_keeps_nine_digits() -> None:
    assert rfc3339_nano_fixed(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.120000000Z"


def test_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    assert parse_rfc3339(rfc3339_nano(ns)) == ns
    assert parse_rfc3339("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000


@pytest.mark.parametrize(
    ("raw", "ns"),
    [("1700000000", 1_700_000_000_000_000_000), ("1700000000.000000001", 1_700_000_000_000_000_001),
     ("1700000000.5", 1_700_000_000_500_000_000)],
)
def test_parse_timestamp(raw: str, ns: int) -> None:
    assert parse_timestamp(raw) == ns


def test_parse_timestamp_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")
