"""Signal names and numbers as Docker accepts them (``KILL``, ``SIGKILL``, ``9``)."""

from __future__ import annotations

import signal as _signal

from runtime.errors import InvalidParameter

SIGNALS: dict[str, int] = {
    s.name[3:]: int(s) for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")
}
for _n in range(_signal.SIGRTMIN, _signal.SIGRTMAX + 1):
    SIGNALS.setdefault(f"RTMIN+{_n - _signal.SIGRTMIN}", _n)
    SIGNALS.setdefault(f"RTMAX-{_signal.SIGRTMAX - _n}", _n)
SIGNALS["RTMIN"] = _signal.SIGRTMIN
SIGNALS["RTMAX"] = _signal.SIGRTMAX


def parse_signal(raw: str) -> int:
    """Docker's ``signal.ParseSignal``: a number (1..64) or a name with or without SIG."""
    text = raw.strip()
    if text.isdigit():
        number = int(text)
        if number == 0 or number > int(_signal.SIGRTMAX):
            raise InvalidParameter(f"Invalid signal: {raw}")
        return number
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    found = SIGNALS.get(name)
    if found is None:
        raise InvalidParameter(f"Invalid signal: {raw}")
    return found


__all__ = ["SIGNALS", "parse_signal"]
