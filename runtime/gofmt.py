"""Go's ``%q`` and ``%v`` renderings and ``time.Duration`` (parsed and printed), as dockerd
writes them in build history, health and error texts.

``CMD ["sh", "-c", "x"]`` is recorded by dockerd as ``CMD ["sh" "-c" "x"]`` (``%q`` of a
``[]string``) and ``VOLUME ["/a"]`` as ``VOLUME [/a]`` (``%v``); clients show these texts
in ``docker history``, so they are reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", '"': '\\"',
}


def go_quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch == " " or (ch.isprintable() and ch != "\x7f"):
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_quote_list(items: Sequence[str] | None) -> str:
    """``fmt.Sprintf("%q", []string{...})``."""
    return "[" + " ".join(go_quote(i) for i in items or ()) + "]"


def go_list(items: Sequence[str] | None) -> str:
    """``fmt.Sprintf("%v", []string{...})``."""
    return "[" + " ".join(items or ()) + "]"


def go_quote_rune(value: int) -> str:
    """``%q`` of an integer: a Go rune literal (dockerd prints HEALTHCHECK retries so)."""
    ch = chr(value) if 0 <= value <= 0x10FFFF else "\ufffd"
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    quoted = go_quote(ch)[1:-1]
    return f"'{quoted}'"


def go_duration(ns: int) -> str:
    """``time.Duration.String()``: ``1h2m3.5s``, ``150ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration`` in nanoseconds; ValueError with Go's message."""
    error = ValueError(f"time: invalid duration {go_quote(text)}")
    s = text
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise error
    total = 0.0
    exact = 0
    while s:
        i = 0
        while i < len(s) and s[i].isdigit():
            i += 1
        whole = s[:i]
        s = s[i:]
        frac = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and s[j].isdigit():
                j += 1
            frac = s[:j]
            s = s[j:]
        if not whole and not frac:
            raise error
        k = 0
        while k < len(s) and s[k] != "." and not s[k].isdigit():
            k += 1
        unit = s[:k]
        s = s[k:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        size = _UNITS.get(unit)
        if size is None:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        exact += int(whole or "0") * size
        if frac:
            total += float("0." + frac) * size
    value = exact + int(total)
    if value > (1 << 63) - 1:
        raise error
    return sign * value


__all__ = ["go_quote", "go_quote_list", "go_list", "go_quote_rune", "go_duration", "parse_go_duration"]
