"""Dockerfile parsing (builder.parser): directives, continuations, per-keyword splitting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import DockerfileParseError
from builder.parser import Node, parse, parse_words, split_command


def nodes(text: str) -> tuple[Node, ...]:
    return parse(text).nodes


def test_keywords_are_lower_cased_with_lines() -> None:
    result = nodes("FROM busybox\n\n# comment\nrun echo hi\n")
    assert [(n.value, n.start_line, n.end_line) for n in result] == [("from", 1, 1), ("run", 4, 4)]
    assert result[1].args == ("echo hi",) and not result[1].json
    assert result[1].original == "run echo hi"


def test_exec_form_is_json() -> None:
    (run,) = nodes('RUN ["echo", "a b"]')
    assert run.args == ("echo", "a b") and run.json


def test_json_followed_by_text_reads_the_array_only() -> None:
    (cmd,) = nodes('CMD ["a"] trailing')
    assert cmd.args == ("a",) and cmd.json


def test_malformed_json_is_shell_form() -> None:
    (cmd,) = nodes('CMD [oops')
    assert cmd.args == ("[oops",) and not cmd.json


def test_non_string_json_is_an_error() -> None:
    with pytest.raises(DockerfileParseError, match="arrays must be comprised of strings only"):
        parse('CMD ["a", 1]')


def test_line_continuation_joins_and_skips_comments() -> None:
    (run,) = nodes("RUN echo a \\\n# inside\n    && echo b\n")
    assert run.args == ("echo a     && echo b",)
    assert (run.start_line, run.end_line) == (1, 3)


def test_empty_continuation_line_warns() -> None:
    result = parse("RUN echo a \\\n\n  b\n")
    assert result.nodes[0].args == ("echo a   b",)
    assert result.warnings[0].startswith("[WARNING]: Empty continuation line found in:")
    assert result.warnings[-1] == "[WARNING]: Empty continuation lines will become errors in a future release."


def test_escape_directive_changes_continuation_and_word_escape() -> None:
    result = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /b\nENV P=c:\\a\\b\n")
    assert result.escape == "`"
    assert result.nodes[1].args == ("dir c:\\   /b",)
    assert result.nodes[2].args == ("P", "c:\\a\\b")


def test_directives_stop_at_first_other_line() -> None:
    result = parse("# hello\n# escape=`\nFROM x\n")
    assert result.escape == "\\"


def test_repeated_directive_and_bad_escape() -> None:
    with pytest.raises(DockerfileParseError, match="only one escape parser directive can be used"):
        parse("# escape=`\n# escape=`\nFROM x")
    with pytest.raises(DockerfileParseError, match="invalid escape token 'x' does not match ` or \\\\"):
        parse("# escape=x\nFROM x")


def test_bom_and_crlf() -> None:
    result = nodes("\ufeffFROM a\r\nRUN b\r\n")
    assert [(n.value, n.args) for n in result] == [("from", ("a",)), ("run", ("b",))]


def test_no_instructions() -> None:
    with pytest.raises(DockerfileParseError, match="^file with no instructions$"):
        parse("# just a comment\n\n")


def test_env_forms() -> None:
    old, new = nodes('ENV A b c\nENV X=1 Y="two words" Z=a\\ b')
    assert old.args == ("A", "b c")
    assert new.args == ("X", "1", "Y", '"two words"', "Z", "a\\ b")


def test_env_errors() -> None:
    with pytest.raises(DockerfileParseError, match="^ENV must have two arguments$"):
        parse("ENV X")
    with pytest.raises(DockerfileParseError, match='can\'t find = in "b"'):
        parse("LABEL a=1 b")


def test_flags_are_split_off() -> None:
    (copy,) = nodes("COPY --from=build --chown=1:1 a b /dst/")
    assert copy.flags == ("--from=build", "--chown=1:1") and copy.args == ("a", "b", "/dst/")
    assert split_command('RUN --mount="type=x" -- echo') == ("run", ["--mount=type=x"], "echo")


def test_healthcheck_and_onbuild() -> None:
    hc, ob = nodes('HEALTHCHECK --interval=5s CMD ["true"]\nONBUILD RUN echo hi')
    assert hc.args == ("CMD", "true") and hc.json and hc.flags == ("--interval=5s",)
    assert ob.sub is not None and ob.sub.value == "run" and ob.all_args == ("run", "echo hi")


def test_unknown_keyword_is_kept_for_the_instruction_parser() -> None:
    (node,) = nodes("FOO bar baz")
    assert node.value == "foo" and node.args == ()


def test_arg_and_expose_words() -> None:
    arg, expose, copy = nodes('ARG A B="x y"\nEXPOSE 80  443/udp\nCOPY ["a b", "c"]')
    assert arg.args == ("A", 'B="x y"')
    assert expose.args == ("80", "443/udp")
    assert copy.args == ("a b", "c") and copy.json


WORD = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_./:=$"), min_size=1,
               max_size=10)


@settings(deadline=None)
@given(st.lists(WORD, max_size=6))
def test_parse_words_splits_plain_words(words: list[str]) -> None:
    assert parse_words(" \t".join(words), "\\") == words


@settings(deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), min_size=1, max_size=5))
def test_exec_form_round_trips_any_strings(args: list[str]) -> None:
    (run,) = nodes("RUN " + json.dumps(args))
    assert run.json and list(run.args) == args


SHELL_TEXT = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" &|;$'\"=-_./"),
                     min_size=1, max_size=40)


@settings(deadline=None)
@given(SHELL_TEXT.filter(lambda t: t.strip() and not t.lstrip().startswith("-")))
def test_shell_form_keeps_the_text(text: str) -> None:
    (run,) = nodes("RUN " + text)
    assert run.args == (text.strip(" "),) and not run.json


@settings(deadline=None)
@given(st.text(max_size=200))
def test_parse_never_crashes(text: str) -> None:
    try:
        parse(text)
    except DockerfileParseError:
        pass
