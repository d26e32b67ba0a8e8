"""Signal names and numbers as Docker reads them: moby's ``signal.ParseSignal`` and its
Linux ``SignalMap``. The one implementation for ``docker kill -s``, ``--stop-signal``,
``STOPSIGNAL`` (builds, ``commit``/``import --change``) and ``stop``.

``ParseSignal`` takes any decimal number but 0 as it is (``STOPSIGNAL 99`` is accepted);
only kill asks whether Linux has it (:func:`parse_kill_signal`). Names are looked up
upper-cased, with or without ``SIG``; the real-time ones are ``RTMIN``, ``RTMIN+1`` ..
``RTMIN+15``, ``RTMAX-14`` .. ``RTMAX-1`` and ``RTMAX``, as in moby (Go's numbering: 34..64).
"""

from __future__ import annotations

import re
import signal as _signal
from types import MappingProxyType

from runtime.errors import InvalidParameter

SIGRTMIN = 34
SIGRTMAX = 64

_NAMES = (
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
    "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
    "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
)
_map: dict[str, int] = {name: int(getattr(_signal, "SIG" + name)) for name in _NAMES}
_map["RTMIN"] = SIGRTMIN
_map.update({f"RTMIN+{n}": SIGRTMIN + n for n in range(1, 16)})
_map.update({f"RTMAX-{n}": SIGRTMAX - n for n in range(14, 0, -1)})
_map["RTMAX"] = SIGRTMAX
SIGNAL_MAP = MappingProxyType(_map)
"""moby's Linux ``SignalMap``: name without ``SIG`` -> number."""

_NUMBERS = frozenset(SIGNAL_MAP.values())
_DECIMAL = re.compile(r"[+-]?[0-9]+")  # Go's strconv.Atoi


def parse_signal(raw: str) -> int:
    """moby's ``signal.ParseSignal``; InvalidParameter ``Invalid signal: <raw>`` (400)
    for 0 and for a name outside :data:`SIGNAL_MAP`. Nothing is trimmed."""
    if _DECIMAL.fullmatch(raw):
        number = int(raw)
        if number == 0:
            raise InvalidParameter(f"Invalid signal: {raw}")
        return number
    found = SIGNAL_MAP.get(raw.upper().removeprefix("SIG"))
    if found is None:
        raise InvalidParameter(f"Invalid signal: {raw}")
    return found


def valid_for_platform(number: int) -> bool:
    """moby's ``ValidSignalForPlatform``: the number is one of :data:`SIGNAL_MAP`'s."""
    return number in _NUMBERS


def parse_kill_signal(raw: str) -> int:
    """The ``signal`` of a kill: :func:`parse_signal`, then a number Linux has (dockerd's
    ``ContainerKill``; 400 ``the linux daemon does not support signal 99`` otherwise)."""
    number = parse_signal(raw)
    if not valid_for_platform(number):
        raise InvalidParameter(f"the linux daemon does not support signal {number}")
    return number


__all__ = ["SIGNAL_MAP", "SIGRTMIN", "SIGRTMAX", "parse_signal", "parse_kill_signal",
           "valid_for_platform"]
