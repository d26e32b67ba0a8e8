"""Go's time formats as Docker writes them (RFC3339Nano and the fixed-width variant), and
the ``since``/``until`` values Docker reads (timestamps, or Go durations before now)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from runtime.gofmt import parse_go_duration

ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def _split(ns: int) -> tuple[str, int]:
    seconds, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return base, frac


def rfc3339_nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction dropped."""
    if ns == 0:
        return ZERO_TIME
    base, frac = _split(ns)
    if frac == 0:
        return base + "Z"
    return f"{base}.{frac:09d}".rstrip("0") + "Z"


def rfc3339_nano_fixed(ns: int) -> str:
    """Docker's ``RFC3339NanoFixed``: always nine fraction digits (log timestamps)."""
    base, frac = _split(ns)
    return f"{base}.{frac:09d}Z"


def parse_rfc3339(text: str) -> int:
    """Parse an RFC3339 timestamp (as written above) back into Unix nanoseconds."""
    match = _RFC3339_RE.match(text)
    if match is None:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    tz = timezone.utc
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        from datetime import timedelta

        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    nanos = int((frac or "0").ljust(9, "0"))
    return int(dt.timestamp()) * 1_000_000_000 + nanos


def parse_timestamp(value: str) -> int:
    """Docker's ``since``/``until`` query values: Unix seconds with an optional fraction
    (``1700000000.123456789``) or an RFC3339 date. Returns Unix nanoseconds."""
    value = value.strip()
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        seconds, _, frac = value.partition(".")
        sign = -1 if seconds.startswith("-") else 1
        return int(seconds) * 1_000_000_000 + sign * int((frac or "0").ljust(9, "0"))
    return parse_rfc3339(value)


def until_ns(value: str, now_ns: int | None = None) -> int:
    """An ``until`` filter value (prune, image list) as Unix nanoseconds, as dockerd's
    ``filters.GetTimestamp`` reads it: a Go duration before now, or a timestamp.
    Raises ValueError with dockerd's text."""
    if value != "0":  # "0" is the Unix epoch there, not a zero duration
        try:
            duration = parse_go_duration(value)
        except ValueError:
            pass
        else:
            return (time.time_ns() if now_ns is None else now_ns) - duration
    try:
        return parse_timestamp(value)
    except ValueError:
        raise ValueError(f'failed to parse value as time or duration: "{value}"') from None
