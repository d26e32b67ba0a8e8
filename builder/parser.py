"""Dockerfile text to nodes, with the rules of the classic builder's (BuildKit) parser.

* Parser directives (``# escape=``` `` and ``# syntax=``) are read from the top of the file
  until the first line that is not one.
* A line ending in the escape token continues on the next line; comment lines and empty
  lines inside a continued instruction are skipped (the latter with a warning).
* Each instruction's arguments are split by a per-keyword line parser: JSON arrays
  (exec form) or plain text for ``RUN``/``CMD``/``ENTRYPOINT``/``SHELL``, ``key=value``
  pairs for ``ENV``/``LABEL``, words for ``ARG``, whitespace-separated words for
  ``FROM``/``EXPOSE`` and the non-JSON form of ``COPY``/``ADD``/``VOLUME``.
* ``--flag=value`` words right after the keyword become the node's flags.

Unknown keywords are kept (with no arguments): :mod:`builder.instructions` reports them
with their line, as dockerd does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from builder.errors import DockerfileParseError
from builder.shell import is_space
from runtime.gofmt import go_quote

MAX_LINE = 64 * 1024 - 1  # bufio.Scanner's default token limit

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$")
_VALID_DIRECTIVES = ("escape", "syntax")
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Node:
    """One instruction. ``value`` is the lower-cased keyword; ``args`` its arguments as
    the line parser split them (quotes still in place); ``sub`` the instruction after
    ``ONBUILD``; ``json`` whether the arguments were a JSON array."""

    value: str
    args: tuple[str, ...] = ()
    sub: Node | None = None
    json: bool = False
    original: str = ""
    flags: tuple[str, ...] = ()
    start_line: int = 0
    end_line: int = 0

    @property
    def all_args(self) -> tuple[str, ...]:
        """The arguments as the instruction parsers see them (``ONBUILD RUN x`` gives
        ``("run", "x")``)."""
        if self.sub is not None:
            return (self.sub.value, *self.sub.all_args)
        return self.args


@dataclass(frozen=True, slots=True)
class ParseResult:
    nodes: tuple[Node, ...]
    escape: str = "\\"
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class _Directives:
    escape: str = "\\"
    continuation: re.Pattern[str] = field(default_factory=lambda: _continuation_regex("\\"))
    done: bool = False
    seen: set[str] = field(default_factory=set)

    def set_escape(self, token: str) -> None:
        if token not in ("`", "\\"):
            raise DockerfileParseError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape = token
        self.continuation = _continuation_regex(token)

    def possible_directive(self, line: str) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if match is None:
            self.done = True
            return
        key = match.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            self.done = True
            return
        if key in self.seen:
            raise DockerfileParseError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        if key == "escape":
            self.set_escape(match.group(2))


def _continuation_regex(token: str) -> re.Pattern[str]:
    t = re.escape(token)
    return re.compile(rf"([^{t}]){t}[ \t]*$|^{t}[ \t]*$")


def _lstrip(text: str) -> str:
    i = 0
    while i < len(text) and is_space(text[i]):
        i += 1
    return text[i:]


def _strip(text: str) -> str:
    text = _lstrip(text)
    j = len(text)
    while j > 0 and is_space(text[j - 1]):
        j -= 1
    return text[:j]


def _is_comment(line: str) -> bool:
    return _lstrip(line).startswith("#")


def _process_line(d: _Directives, token: str, strip_left: bool) -> str:
    if strip_left:
        token = _lstrip(token)
    d.possible_directive(token)
    return "" if token.startswith("#") else token


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    if d.continuation.search(line):
        return d.continuation.sub(lambda m: m.group(1) or "", line, count=1), False
    return line, True


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse(source: str | bytes) -> ParseResult:
    """Parse a whole Dockerfile. Raises :class:`DockerfileParseError` (dockerd's texts)."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    d = _Directives()
    nodes: list[Node] = []
    warnings: list[str] = []
    lines = _split_lines(text)
    index = 0
    current = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        if current == 0 and raw.startswith(_BOM):
            raw = raw[1:]
        if len(raw.encode("utf-8", "replace")) > MAX_LINE:
            raise DockerfileParseError(f"dockerfile line greater than max allowed size of {MAX_LINE}")
        processed = _process_line(d, raw, True)
        current += 1
        start = current
        line, end_of_line = _trim_continuation(processed, d)
        if end_of_line and line == "":
            continue
        empty_continuation = False
        while not end_of_line and index < len(lines):
            raw_next = lines[index]
            index += 1
            processed = _process_line(d, raw_next, False)
            current += 1
            if _is_comment(raw_next):
                continue
            if not _lstrip(processed):
                empty_continuation = True
                continue
            part, end_of_line = _trim_continuation(processed, d)
            line += part
        if empty_continuation:
            warnings.append("[WARNING]: Empty continuation line found in:\n    " + line)
        try:
            node = _node_from_line(line, d)
        except DockerfileParseError:
            raise
        nodes.append(_with_lines(node, start, current))
    if warnings:
        warnings.append("[WARNING]: Empty continuation lines will become errors in a future release.")
    if not nodes:
        raise DockerfileParseError("file with no instructions")
    return ParseResult(tuple(nodes), d.escape, tuple(warnings))


def _with_lines(node: Node, start: int, end: int) -> Node:
    return Node(node.value, node.args, node.sub, node.json, node.original, node.flags, start, end)


# ---- one instruction ----------------------------------------------------------------------


def _node_from_line(line: str, d: _Directives) -> Node:
    keyword, flags, rest = split_command(line)
    parser = _DISPATCH.get(keyword, _parse_ignore)
    args, sub, is_json = parser(rest, d)
    return Node(value=keyword, args=args, sub=sub, json=is_json, original=line, flags=tuple(flags))


def split_command(line: str) -> tuple[str, list[str], str]:
    """(lower-cased keyword, ``--flags``, the rest of the line)."""
    parts = _WHITESPACE.split(_strip(line), maxsplit=1)
    keyword = parts[0].lower()
    if len(parts) < 2:
        return keyword, [], ""
    rest, flags = _extract_flags(parts[1])
    return keyword, flags, _strip(rest)


def _extract_flags(line: str) -> tuple[str, list[str]]:
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if word == "--":
                    return line[pos:], words
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word += ch
            pos += 1
            continue
        if phase == in_quote:
            if ch == quote:
                phase = in_word
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    phase = in_word
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word += ch
            pos += 1
    return "", words


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes for later expansion."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape token at the end of the line is dropped
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if phase == in_quote:
            if ch == quote:
                phase = in_word
            if ch == escape and quote != "'":
                if pos + 1 == n:
                    phase = in_word
                    pos += 1
                    continue
                pos += 1
                word += ch
                ch = rest[pos]
            word += ch
            pos += 1
    return words


Parsed = tuple[tuple[str, ...], "Node | None", bool]


def _parse_ignore(rest: str, d: _Directives) -> Parsed:
    return (), None, False


def _parse_sub_command(rest: str, d: _Directives) -> Parsed:
    if not rest:
        return (), None, False
    return (), _node_from_line(rest, d), False


def _parse_name_val(rest: str, key: str, d: _Directives) -> tuple[str, ...]:
    words = parse_words(rest, d.escape)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileParseError(f"{key} must have two arguments")
        return (parts[0], parts[1])
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileParseError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
        name, _, value = word.partition("=")
        out += [name, value]
    return tuple(out)


def _parse_env(rest: str, d: _Directives) -> Parsed:
    return _parse_name_val(rest, "ENV", d), None, False


def _parse_label(rest: str, d: _Directives) -> Parsed:
    return _parse_name_val(rest, "LABEL", d), None, False


def _parse_name_or_name_val(rest: str, d: _Directives) -> Parsed:
    return tuple(parse_words(rest, d.escape)), None, False


def _parse_whitespace_delimited(rest: str, d: _Directives) -> Parsed:
    if not rest:
        return (), None, False
    return tuple(_WHITESPACE.split(rest)), None, False


def _parse_string(rest: str, d: _Directives) -> Parsed:
    if not rest:
        return (), None, False
    return (rest,), None, False


class _NotStringArray(DockerfileParseError):
    def __init__(self) -> None:
        super().__init__("when using JSON array syntax, arrays must be comprised of strings only")


def _parse_json(rest: str) -> tuple[str, ...] | None:
    """The strings of a JSON array at the start of ``rest`` (what follows it is ignored,
    as Go's json.Decoder reads one value); None when it is not a JSON array."""
    rest = _lstrip(rest)
    if not rest.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArray()
    return tuple(value)


def _parse_maybe_json(rest: str, d: _Directives) -> Parsed:
    if not rest:
        return (), None, False
    array = _parse_json(rest)
    if array is not None:
        return array, None, True
    return (rest,), None, False


def _parse_maybe_json_to_list(rest: str, d: _Directives) -> Parsed:
    array = _parse_json(rest)
    if array is not None:
        return array, None, True
    return _parse_whitespace_delimited(rest, d)


def _parse_health_config(rest: str, d: _Directives) -> Parsed:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    nxt = sep
    while nxt < len(rest) and is_space(rest[nxt]):
        nxt += 1
    if sep == 0:
        return (), None, False
    args, _, is_json = _parse_maybe_json(rest[nxt:], d)
    return (rest[:sep], *args), None, is_json


_DISPATCH: dict[str, Callable[[str, _Directives], Parsed]] = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_env,
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health_config,
    "label": _parse_label,
    "maintainer": _parse_string,
    "onbuild": _parse_sub_command,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}


__all__ = ["Node", "ParseResult", "parse", "parse_words", "split_command", "MAX_LINE"]
