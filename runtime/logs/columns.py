"""json-file lines decoded column-wise, without a JSON parse per line.

Nearly every line dockerd (and the json-file driver here) writes has one fixed shape:
``{"log":"<text>\\n","stream":"stdout|stderr","time":"<RFC3339Nano UTC>"}``. For a block of
such lines the text needs no unescaping when its only backslash is the final ``\\n``, so the
block is checked and cut with a handful of vectorised operations (numpy) instead of a
``json.loads`` per line; any other line (escapes, partial lines, ``attrs``, odd spacing) goes
through :func:`runtime.logs.jsonfile.decode_entry` and lands in the same columns, in order.

Message ``i`` of a :class:`LogColumns` is ``data[starts[i]:ends[i]]`` (the line with its
trailing newline, as ``LogMessage.line``), on stderr when ``stderr[i]``; ``stamps[i]`` is its
time in Docker's fixed-width RFC3339 format (``2006-01-02T15:04:05.000000000Z``, 30 bytes),
computed only when asked (``docker logs -t``, ``--since``, ``--until``): fixed-width UTC stamps
order as the times do, so time filters compare bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from runtime.logs.driver import LogMessage
from runtime.timefmt import rfc3339_nano_fixed

STAMP = 30  # len("2006-01-02T15:04:05.000000000Z")
#: Free bytes before every message of a decoded block (room for a frame header and a stamp).
HEADROOM = 40

_PREFIX = np.frombuffer(b'{"log":"', np.uint8)
_MID_OUT = np.frombuffer(b'","stream":"stdout","time":"', np.uint8)
_MID_ERR = np.frombuffer(b'","stream":"stderr","time":"', np.uint8)
_SHORTEST = len(_PREFIX) + 2 + len(_MID_OUT) + 20 + 2   # empty text, time without fraction
_QUOTES_PER_LINE = 12
_TIME_SPAN = 11     # a time of 20 to 30 bytes: its opening quote is one of 11 places
_DIGIT0 = ord("0")

Bytes = NDArray[np.uint8]
Ints = NDArray[np.int64]
Mask = NDArray[np.bool_]
Decoder = Callable[[bytes], "LogMessage | None"]


@dataclass(frozen=True, eq=False)
class LogColumns:
    """Many log messages, column-wise (see the module docstring)."""

    data: Bytes
    starts: Ints
    ends: Ints
    stderr: Mask
    stamps: Bytes | None = None     # shape (n, 30) when computed

    def __len__(self) -> int:
        return len(self.starts)

    def select(self, keep: Mask) -> LogColumns:
        return LogColumns(self.data, self.starts[keep], self.ends[keep], self.stderr[keep],
                          None if self.stamps is None else self.stamps[keep])

    def only(self, stream: str) -> LogColumns:
        return self.select(self.stderr if stream == "stderr" else ~self.stderr)

    def at_or_after(self, ns: int) -> Mask:
        """Messages whose time is >= ``ns`` (needs stamps)."""
        return _compare_ge(self._stamps(), rfc3339_nano_fixed(ns).encode())

    def after(self, ns: int) -> Mask:
        """Messages whose time is > ``ns`` (needs stamps)."""
        return _compare_ge(self._stamps(), rfc3339_nano_fixed(ns + 1).encode())

    def _stamps(self) -> Bytes:
        if self.stamps is None:
            raise ValueError("decoded without stamps")
        return self.stamps

    def messages(self) -> list[LogMessage]:
        """The same messages as objects, for small consumers and tests (``time_ns`` is 0
        when decoded without stamps)."""
        from runtime.logs.jsonfile import parse_time

        data = self.data.tobytes()
        times = ([parse_time(stamp.tobytes().decode()) for stamp in self.stamps]
                 if self.stamps is not None else [0] * len(self))
        return [LogMessage("stderr" if err else "stdout", data[s:e], t)
                for s, e, err, t in zip(self.starts.tolist(), self.ends.tolist(),
                                        self.stderr.tolist(), times)]


def decode_lines(block: bytes, stamps: bool, fallback: Decoder) -> LogColumns:
    """Decode ``block``: whole json-file lines, each ending in ``\\n``. Blank lines and lines
    ``fallback`` cannot decode are dropped, as the per-line reader does.

    Messages stay in place, in order, in a private copy of the block (a fast line's escaped
    ``\\n`` becomes the newline; a slow line's decoded text is written over the end of its
    own JSON), so the bytes between messages are free for a consumer to reuse."""
    a = np.zeros(HEADROOM + len(block), np.uint8)
    a[HEADROOM:] = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(a == 10).astype(np.int64)
    n = len(ends)
    starts = np.empty(n, np.int64)
    starts[0:1] = HEADROOM
    starts[1:] = ends[:-1] + 1
    stamp_rows = np.full((n, STAMP), _DIGIT0, np.uint8) if stamps else None
    regular = _regular_block(a, starts, ends)
    if regular is not None:
        fast, qpos = regular
        stream_ok, stderr = _check_middle(a, qpos, ends)
        fast &= stream_ok
        fast &= _check_times(a, stamp_rows, fast, qpos + len(_MID_OUT), ends - 2)
        if fast.all():    # then each line has its one backslash: the count was n in total
            a[qpos - 2] = 10          # the escaped "\n" ends the text: make it a newline
            return LogColumns(a, starts + len(_PREFIX), qpos - 1, stderr, stamp_rows)
    q = np.flatnonzero(a == 34)
    fast = _fast_lines(a, q, starts, ends)
    qpos = np.zeros(n, np.int64)
    cand = np.flatnonzero(fast)
    qpos[cand] = q[np.searchsorted(q, starts[cand] + len(_PREFIX))]
    stream_ok, stderr = _check_middle(a, qpos, ends)
    fast &= stream_ok
    fast &= _check_times(a, stamp_rows, fast, qpos + len(_MID_OUT), ends - 2)
    msg_starts = starts + len(_PREFIX)
    msg_ends = qpos - 1
    a[qpos[fast] - 2] = 10
    keep = fast.copy()
    for i in np.flatnonzero(~fast).tolist():
        start, end = int(starts[i]), int(ends[i])
        message = fallback(block[start - HEADROOM:end - HEADROOM])
        # Written where a fast line's text would be: every message then lies in
        # [line start + 8, line end - 32), which leaves HEADROOM free bytes between any two.
        # (A JSON entry with "log" and an RFC3339 "time" is always 40+ bytes longer than
        # its text; the check only guards against what cannot be decoded anyway.)
        at = start + len(_PREFIX)
        if message is None or at + len(message.line) > end - (HEADROOM - len(_PREFIX)):
            continue
        keep[i] = True
        msg_starts[i], msg_ends[i] = at, at + len(message.line)
        a[at:at + len(message.line)] = np.frombuffer(message.line, np.uint8)
        stderr[i] = message.stream == "stderr"
        if stamp_rows is not None:
            stamp_rows[i] = np.frombuffer(rfc3339_nano_fixed(message.time_ns).encode(), np.uint8)
    return LogColumns(a, msg_starts[keep], msg_ends[keep], stderr[keep],
                      None if stamp_rows is None else stamp_rows[keep])


def _regular_block(a: Bytes, starts: Ints, ends: Ints) -> tuple[Mask, Ints] | None:
    """The common case without listing every quote: 12 quotes and one backslash per line in
    the whole block, and each line long enough. The time's opening quote is then the last
    quote among the 11 bytes where a 20-30 byte time can start, and the text's closing quote
    27 bytes before it. The checks of the fixed parts (prefix, middle, ``"}``, the ``\\n``
    escape) find 12 quotes and the backslash of every line at distinct places, so with those
    totals no text holds another. None when the block is not that regular."""
    n = len(starts)
    if n == 0 or not (ends - starts >= _SHORTEST).all():
        return None
    if np.count_nonzero(a == 34) != _QUOTES_PER_LINE * n or np.count_nonzero(a == 92) != n:
        return None
    time_quote = ends - (_TIME_SPAN + 22)     # right for a 30-byte time, the usual one
    other = np.flatnonzero(a[time_quote] != 34)
    if len(other):
        window = _windows(a, _TIME_SPAN)[time_quote[other]] == 34
        time_quote[other] = ends[other] - 23 - np.argmax(window[:, ::-1], axis=1)
    qpos = time_quote - (len(_MID_OUT) - 1)
    head = _windows(a, len(_PREFIX))[starts].view(np.uint64)[:, 0]
    fast: Mask = ((head == _PREFIX_WORD) & (a[ends - 2] == 34) & (a[ends - 1] == 125)
                  & (qpos - 2 >= starts + len(_PREFIX)))
    return fast, qpos


def _fast_lines(a: Bytes, q: Ints, starts: Ints, ends: Ints) -> Mask:
    """Lines with 12 quotes (at ``q``), one backslash, the ``{"log":"`` prefix and ``"}``
    suffix."""
    bs = np.flatnonzero(a == 92)
    quotes = np.searchsorted(q, ends) - np.searchsorted(q, starts)
    slashes = np.searchsorted(bs, ends) - np.searchsorted(bs, starts)
    ok: Mask = (quotes == _QUOTES_PER_LINE) & (slashes == 1) & (ends - starts >= _SHORTEST)
    cand = np.flatnonzero(ok)
    if len(cand) == 0:
        return ok
    s, e = starts[cand], ends[cand]
    head = _windows(a, len(_PREFIX))[s].view(np.uint64)[:, 0]
    ok[cand] = (head == _PREFIX_WORD) & (a[e - 2] == 34) & (a[e - 1] == 125)
    return ok


_PREFIX_WORD = _PREFIX.view(np.uint64)[0]
# the escaped newline ending the text, then the middle, as 4 words (the last two bytes,
# the time's first two, are not compared): word 2 names the stream
_MID_OUT_WORDS = np.frombuffer(b"\\n" + _MID_OUT.tobytes() + b"\0\0", "<u8")
_MID_ERR_WORD = int(np.frombuffer(b"\\n" + _MID_ERR.tobytes() + b"\0\0", "<u8")[2])
_MID_LAST_MASK = int(np.frombuffer(b"\xff" * 6 + b"\0\0", "<u8")[0])


def _check_middle(a: Bytes, qpos: Ints, ends: Ints) -> tuple[Mask, Mask]:
    """The text ends in ``\\n`` right before its closing quote, then the fixed middle
    (compared as words, column by column: numpy is slow along a short last axis)."""
    words = _windows(a, 32)[np.clip(qpos - 2, 0, len(a) - 32)].view("<u8")
    wrong = (words[:, 0] ^ _MID_OUT_WORDS[0]) | (words[:, 1] ^ _MID_OUT_WORDS[1])
    wrong |= (words[:, 3] & np.uint64(_MID_LAST_MASK)) ^ _MID_OUT_WORDS[3]
    stream = words[:, 2]
    is_err: Mask = stream == np.uint64(_MID_ERR_WORD)
    ok: Mask = ((wrong == 0) & (is_err | (stream == _MID_OUT_WORDS[2])) & (qpos >= 2)
                & (qpos + len(_MID_OUT) + 20 <= ends - 2))
    return ok, is_err


_DIGIT_COLUMNS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def _check_times(a: Bytes, rows: Bytes | None, fast: Mask, t: Ints, t_end: Ints) -> Mask:
    """Which fast lines have a time of dockerd's shape, ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z``
    (others go to the JSON decoder, which drops what it cannot parse); with ``rows``, their
    fixed-width stamps are filled in."""
    ok = np.zeros(len(fast), np.bool_)
    idx = np.flatnonzero(fast)
    full = t_end[idx] - t[idx] == STAMP
    if full.any():   # the usual case, 9 fraction digits: checked as 4 words per line
        at = idx[full]
        ok[at] = _full_times(a, rows, at, t[at])
        idx = idx[~full]
    if len(idx) == 0:
        return ok
    last = len(a) - 1
    ts, te = t[idx], t_end[idx]
    length = te - ts
    shape = ((length >= 20) & (length <= STAMP)
             & (a[np.minimum(te - 1, last)] == ord("Z"))
             & np.where(length > 20, a[np.minimum(ts + 19, last)] == ord("."), length == 20))
    base = _windows(a, 19)[np.minimum(ts, len(a) - 19)]
    digits = base[:, _DIGIT_COLUMNS]
    shape &= ((digits >= _DIGIT0) & (digits <= _DIGIT0 + 9)).all(axis=1)
    for column, char in _SEPARATORS.items():
        shape &= base[:, column] == ord(char)
    frac = _windows(a, 9)[np.minimum(ts + 20, len(a) - 9)]
    present = np.arange(9) < (length - 21)[:, None]
    shape &= (~present | ((frac >= _DIGIT0) & (frac <= _DIGIT0 + 9))).all(axis=1)
    if rows is not None:
        rows[idx, :19] = base
        rows[idx, 19] = ord(".")
        rows[idx, 20:29] = np.where(present, frac, _DIGIT0)
        rows[idx, 29] = ord("Z")
    ok[idx] = shape
    return ok


def _word_masks(pattern: bytes) -> tuple[NDArray[np.uint64], NDArray[np.uint64],
                                          NDArray[np.uint64]]:
    """For a 32-byte pattern where ``9`` stands for a digit: per 8-byte word, a mask, the
    value the masked word must have, and what to add before masking it again. A digit byte
    passes when its high nibble is 3 before and after adding 6 (0x30-0x39); any other byte
    must equal the pattern."""
    mask, want, add = bytearray(), bytearray(), bytearray()
    for ch in pattern:
        digit = ch == ord("9")
        mask.append(0xF0 if digit else 0xFF)
        want.append(0x30 if digit else ch)
        add.append(0x06 if digit else 0)
    return tuple(np.frombuffer(bytes(x), "<u8").copy() for x in (mask, want, add))  # type: ignore[return-value]


_FULL_TIME = _word_masks(b'9999-99-99T99:99:99.999999999Z"}')


def _full_times(a: Bytes, rows: Bytes | None, at: Ints, ts: Ints) -> Mask:
    """Lines ``at`` with a 30-byte time at ``ts``: which are ``YYYY-MM-DDTHH:MM:SS.fffffffffZ``
    (then followed by ``"}``); with ``rows``, those bytes are the stamps. A byte that is not
    a digit fails before the addition can carry into its neighbour."""
    window = _windows(a, 32)[ts]
    words = window.view("<u8")
    wrong = np.zeros(len(ts), np.uint64)
    # column by column: numpy is slow along a short last axis (4 words)
    for column, (mask, want, add) in enumerate(zip(*_FULL_TIME)):
        word = words[:, column]
        wrong |= ((word & mask) ^ want) | (((word + add) & mask) ^ want)
    ok: Mask = wrong == 0
    if rows is not None:
        rows[at] = window[:, :STAMP]
    return ok


def _windows(a: Bytes, width: int) -> Bytes:
    """Row ``i`` is ``a[i:i + width]`` (a view): indexing rows gathers fixed-width fields."""
    return np.lib.stride_tricks.sliding_window_view(a, width)


def _compare_ge(rows: Bytes, key: bytes) -> Mask:
    """Row-wise ``row >= key`` in byte order, for 30-byte rows: as four big-endian words
    (bytes 0-8, 8-16, 16-24 and 22-30; the overlap changes nothing), column by column."""
    k = np.frombuffer(key, np.uint8)
    cuts = (22, 16, 8, 0)
    words = [rows[:, at:at + 8].view(">u8")[:, 0] for at in cuts]
    keys = [k[at:at + 8].view(">u8")[0] for at in cuts]
    result: Mask = words[0] >= keys[0]
    for word, want in zip(words[1:], keys[1:]):
        result = (word > want) | ((word == want) & result)
    return result


__all__ = ["LogColumns", "decode_lines", "STAMP", "HEADROOM"]
