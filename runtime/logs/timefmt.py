"""Go's time formats as Docker writes them (RFC3339Nano, and the fixed-width variant)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"


def _split(ns: int) -> tuple[str, int]:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)), frac


def rfc3339nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction trimmed.

    ``0`` renders as Go's zero time, as dockerd shows for a never-finished container.
    """
    if ns == 0:
        return ZERO_TIME
    base, frac = _split(ns)
    if frac == 0:
        return base + "Z"
    return f"{base}.{frac:09d}".rstrip("0") + "Z"


def rfc3339nano_fixed(ns: int) -> str:
    """dockerd's ``RFC3339NanoFixed`` (always 9 fraction digits), used by ``logs -t``."""
    base, frac = _split(ns)
    return f"{base}.{frac:09d}Z"


def parse_rfc3339nano(value: str) -> int:
    """Parse a timestamp written by :func:`rfc3339nano` (or any RFC 3339 time) to ns."""
    if value == ZERO_TIME:
        return 0
    if len(value) >= 20 and value[-1] == "Z" and value[4] == "-" and value[10] == "T":
        seconds = _timegm(int(value[0:4]), int(value[5:7]), int(value[8:10]),
                          int(value[11:13]), int(value[14:16]), int(value[17:19]))
        frac = value[20:-1] if value[19] == "." else ""
        return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def _timegm(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    days = datetime(y, mo, d).toordinal() - _EPOCH_ORDINAL
    return ((days * 24 + h) * 60 + mi) * 60 + s


def parse_unix_timestamp(value: str) -> int:
    """``since``/``until`` query values: Unix seconds with an optional fraction -> ns."""
    seconds, _, frac = value.partition(".")
    if not seconds.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(value)
    return int(seconds) * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)


__all__ = ["ZERO_TIME", "rfc3339nano", "rfc3339nano_fixed", "parse_rfc3339nano",
           "parse_unix_timestamp"]
