"""Shell-like word processing of Dockerfile arguments (BuildKit's ``shell.Lex``).

Quotes are removed, ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}``,
``${VAR?msg}`` and ``${VAR:?msg}`` are substituted from the build environment, and the
escape token (``\\`` or a backtick) escapes the next character. Nothing is executed: this
is substitution only, with bash's quoting rules where the classic builder follows them.

:func:`ShellLex.process_word` gives one string (spaces between words kept);
:func:`ShellLex.process_words` splits the result into words *after* substitution
(``EXPOSE $PORTS`` with ``PORTS="80 443"`` is two ports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from builder.errors import ExpansionError
from runtime.gofmt import go_quote

_EOF = ""
_GO_LATIN1_SPACE = frozenset("\t\n\v\f\r \x85\xa0")
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` (Python's ``isspace`` also accepts \\x1c-\\x1f)."""
    if not ch:
        return False
    if ord(ch) < 0x100:
        return ch in _GO_LATIN1_SPACE
    return ch.isspace()


def env_map(env: Iterable[str]) -> dict[str, str]:
    """``KEY=value`` strings to a mapping; later entries win, a bare ``KEY`` is empty."""
    result: dict[str, str] = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch


@dataclass(slots=True)
class _Words:
    word: str = ""
    words: list[str] = field(default_factory=list)
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if is_space(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _ShellWord:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.scanner = _Scanner(text)
        self.env = env
        self.escape = escape

    def process(self, source: str) -> tuple[str, list[str]]:
        try:
            return self.process_stop_on(_EOF)
        except ExpansionError as exc:
            raise ExpansionError(f"failed to process {go_quote(source)}: {exc}") from None

    def process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        sc = self.scanner
        while sc.peek() != _EOF:
            ch = sc.peek()
            if stop and ch == stop:
                sc.next()
                return "".join(result), words.get_words()
            if ch in ("'", '"', "$"):
                if ch == "'":
                    text = self.single_quote()
                elif ch == '"':
                    text = self.double_quote()
                else:
                    text = self.dollar()
                result.append(text)
                if ch == "$":
                    words.add_string(text)
                else:
                    words.add_raw_string(text)
                continue
            ch = sc.next()
            if ch == self.escape:
                ch = sc.next()
                if ch == _EOF:
                    break
                words.add_raw_char(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get_words()

    def single_quote(self) -> str:
        sc = self.scanner
        sc.next()
        out: list[str] = []
        while True:
            ch = sc.next()
            if ch == _EOF:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        sc = self.scanner
        sc.next()
        out: list[str] = []
        while True:
            ch = sc.peek()
            if ch == _EOF:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                sc.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = sc.next()
            if ch == self.escape:
                following = sc.peek()
                if following == _EOF:
                    continue  # an escape at the very end is dropped
                if following in ('"', "$", self.escape):
                    ch = sc.next()
            out.append(ch)

    def dollar(self) -> str:
        sc = self.scanner
        sc.next()
        if sc.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        sc.next()
        if sc.peek() == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if sc.peek() in ("{", "}", ":"):
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        ch = sc.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "?":
            word = self.word_until_brace()
            if name not in self.env:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return self.env[name]
        if ch == ":":
            modifier = sc.next()
            word = self.word_until_brace()
            value = self.env.get(name, "")
            if modifier == "+":
                return word if value else value
            if modifier == "-":
                return value or word
            if modifier == "?":
                if name not in self.env:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
                if not value:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        raise ExpansionError("missing ':' in substitution")

    def word_until_brace(self) -> str:
        try:
            word, _ = self.process_stop_on("}")
        except ExpansionError:
            if self.scanner.peek() == _EOF:
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        return word

    def name(self) -> str:
        sc = self.scanner
        out: list[str] = []
        while sc.peek() != _EOF:
            ch = sc.peek()
            if not out and ch.isdecimal():
                while sc.peek() != _EOF and sc.peek().isdecimal():
                    out.append(sc.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return sc.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(sc.next())
        return "".join(out)


class ShellLex:
    """Word processor for one Dockerfile (its escape token is fixed by the directive)."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Substitute and unquote ``word``; raises :class:`ExpansionError`."""
        return _ShellWord(word, env, self.escape).process(word)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Like :meth:`process_word`, then split into words (quoted spaces kept)."""
        return _ShellWord(word, env, self.escape).process(word)[1]


__all__ = ["ShellLex", "env_map", "is_space"]
