"""Go's renderings and ``time.ParseDuration``: the one implementation runtime and builder share."""

from __future__ import annotations

import pytest

from runtime.gofmt import go_duration, go_list, go_quote, go_quote_list, go_quote_rune, parse_go_duration

H, M, S = 3_600_000_000_000, 60_000_000_000, 1_000_000_000


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("+0", 0), ("-0", 0),
    ("1h30m", 90 * M), ("24h", 24 * H), ("1.5s", 1_500_000_000), ("300ms", 300_000_000),
    ("2µs", 2000), ("2μs", 2000), ("10us", 10_000), ("7ns", 7), (".5m", 30 * S), ("1.h", H),
    ("1h2m3.5s", H + 2 * M + 3 * S + 500_000_000), ("-1h", -H), ("+5s", 5 * S),
])
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'),
    ("h", 'time: invalid duration "h"'),
    (".", 'time: invalid duration "."'),
    ("1", 'time: missing unit in duration "1"'),
    ("1h30", 'time: missing unit in duration "1h30"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("1h 30m", 'time: unknown unit "h " in duration "1h 30m"'),
    ("bogus", 'time: invalid duration "bogus"'),
    ("3000000h", 'time: invalid duration "3000000h"'),
])
def test_parse_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_go_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (200_000_000, "200ms"), (S, "1s"),
    (1_500_000_000, "1.5s"), (90 * S, "1m30s"), (H, "1h0m0s"), (H + 2 * M + 3 * S + 500_000_000, "1h2m3.5s"),
    (-90 * S, "-1m30s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("text", "quoted"), [
    ("a", '"a"'), ('say "hi"', '"say \\"hi\\""'), ("tab\there", '"tab\\there"'), ("\x01", '"\\x01"'),
    ("é", '"é"'), ("\u200b", '"\\u200b"'), ("back\\slash", '"back\\\\slash"'),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_lists_and_runes() -> None:
    assert go_quote_list(["sh", "-c", "x"]) == '["sh" "-c" "x"]'
    assert go_quote_list(None) == "[]"
    assert go_list(["/a", "/b"]) == "[/a /b]"
    assert go_quote_rune(3) == "'\\x03'"
    assert go_quote_rune(65) == "'A'"
