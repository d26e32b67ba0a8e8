"""Word expansion (builder.shell) against the classic builder's rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ExpansionError
from builder.shell import ShellLex, env_map

LEX = ShellLex()
ENV = {"A": "alpha", "B": "two words", "EMPTY": "", "PATH": "/bin"}

# characters with no special meaning to the lexer
PLAIN = st.text(st.characters(blacklist_characters="$'\"\\`", blacklist_categories=("Cs",)), max_size=30)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
WORD = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_./:=,"),
               min_size=1, max_size=12)


@pytest.mark.parametrize(("word", "expected"), [
    ("$A", "alpha"),
    ("${A}", "alpha"),
    ("x${A}y", "xalphay"),
    ("$A$A", "alphaalpha"),
    ("$UNSET", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${A:-dflt}", "alpha"),
    ("${A:+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("${EMPTY:+alt}", ""),
    ("${UNSET:-${A}}", "alpha"),
    ("'$A'", "$A"),
    ('"$A"', "alpha"),
    ('"\\$A"', "$A"),
    ("\\$A", "$A"),
    ('"a\\b"', "a\\b"),
    ('"a\\"b"', 'a"b'),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("a$", "a$"),
    ("$1x", "x"),
    ("${A?}", "alpha"),
    ("\\", ""),
    ('"$B"', "two words"),
])
def test_process_word(word: str, expected: str) -> None:
    assert LEX.process_word(word, ENV) == expected


@pytest.mark.parametrize(("word", "expected"), [
    ("$B", ["two", "words"]),
    ('"$B"', ["two words"]),
    ("80 $B", ["80", "two", "words"]),
    ("'a b' c", ["a b", "c"]),
    ("  spaced   out ", ["spaced", "out"]),
    ("''", []),
    ("a\\ b c", ["a b", "c"]),
])
def test_process_words(word: str, expected: list[str]) -> None:
    assert LEX.process_words(word, ENV) == expected


@pytest.mark.parametrize(("word", "message"), [
    ("'open", "unexpected end of statement while looking for matching single-quote"),
    ('"open', "unexpected end of statement while looking for matching double-quote"),
    ("${", "syntax error: missing '}'"),
    ("${A", "missing ':' in substitution"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:x}", "syntax error: bad substitution"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${UNSET?custom text}", "UNSET: custom text"),
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${A:%x}", "unsupported modifier (%) in substitution"),
    ("${A!}", "missing ':' in substitution"),
])
def test_errors_carry_the_word(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as info:
        LEX.process_word(word, ENV)
    assert str(info.value).startswith("failed to process ")
    assert str(info.value).endswith(": " + message)


def test_backtick_escape_token() -> None:
    lex = ShellLex("`")
    assert lex.process_word("C:\\dir`$A", ENV) == "C:\\dir$A"
    assert lex.process_word('"`"q"', ENV) == '"q'


def test_env_map_later_entries_win() -> None:
    assert env_map(["A=1", "B", "A=2=3"]) == {"A": "2=3", "B": ""}


@settings(deadline=None)
@given(PLAIN)
def test_plain_text_is_unchanged(text: str) -> None:
    assert LEX.process_word(text, ENV) == text


@settings(deadline=None)
@given(NAME, VALUE)
def test_variables_substitute(name: str, value: str) -> None:
    env = {name: value}
    assert LEX.process_word("$" + name, env) == value
    assert LEX.process_word("${" + name + "}", env) == value
    assert LEX.process_word("pre${" + name + "}post", env) == f"pre{value}post"


@settings(deadline=None)
@given(NAME, VALUE, PLAIN.filter(lambda w: "}" not in w))
def test_default_and_alternative(name: str, value: str, word: str) -> None:
    env = {name: value}
    assert LEX.process_word("${" + name + ":-" + word + "}", env) == (value or word)
    assert LEX.process_word("${" + name + ":+" + word + "}", env) == (word if value else "")
    assert LEX.process_word("${" + name + ":-" + word + "}", {}) == word


@settings(deadline=None)
@given(st.text(st.characters(blacklist_characters="'", blacklist_categories=("Cs",)), max_size=30))
def test_single_quotes_keep_everything(text: str) -> None:
    assert LEX.process_word("'" + text + "'", ENV) == text


@settings(deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_double_quotes_with_escapes_round_trip(text: str) -> None:
    escaped = "".join("\\" + ch if ch in '"$\\' else ch for ch in text)
    assert LEX.process_word('"' + escaped + '"', ENV) == text


@settings(deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_escaping_every_character_is_literal(text: str) -> None:
    assert LEX.process_word("".join("\\" + ch for ch in text), ENV) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(WORD, min_size=0, max_size=6))
def test_words_split_on_spaces(words: list[str]) -> None:
    assert LEX.process_words(" ".join(words), ENV) == words
    assert LEX.process_word(" ".join(words), ENV) == " ".join(words)


@settings(deadline=None)
@given(st.lists(WORD, min_size=1, max_size=5), NAME)
def test_splitting_happens_after_substitution(words: list[str], name: str) -> None:
    env = {name: " ".join(words)}
    assert LEX.process_words("$" + name, env) == words
    assert LEX.process_words('"$' + name + '"', env) == [" ".join(words)]


@settings(deadline=None)
@given(st.text(max_size=40))
def test_never_crashes_on_arbitrary_input(text: str) -> None:
    try:
        LEX.process_word(text, ENV)
        LEX.process_words(text, ENV)
    except ExpansionError as exc:
        assert str(exc).startswith("failed to process ")
