from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter, SystemError_
from runtime.filters import Filters


def test_validate_rejects_unknown_names() -> None:
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        Filters.of({"colour": ["red"]}).validate({"label"})


# moby's Args.MatchKVList; the rows of the former copies (volumes' match_kv_list, the
# list and prune matchers) together
@pytest.mark.parametrize(("exprs", "labels", "matches"), [
    ([], None, True),
    ([], {"a": "1"}, True),
    (["a"], None, False),
    (["a"], {}, False),
    (["a", "b=2"], {"a": "", "b": "2"}, True),
    (["a", "b=3"], {"a": "", "b": "2"}, False),
    (["a", "b=2"], {"b": "2"}, False),
    (["k=v=w"], {"k": "v=w"}, True),
    (["a="], {"a": ""}, True),
    (["a="], {"a": "x"}, False),
    # no "!=" operator: the key is "a!" (dockerd answers so for `docker ps --filter label=a!=b`)
    (["a!=b"], {"a": "c"}, False),
    (["a!=b"], {"a!": "b"}, True),
])
def test_label_matching_is_match_kv_list(exprs: list[str], labels: dict[str, str] | None,
                                         matches: bool) -> None:
    assert Filters.of({"label": exprs} if exprs else {}).match_labels(labels) is matches


@pytest.mark.parametrize(("label", "not_label", "labels", "kept"), [
    ([], [], {}, True),
    (["a"], [], {"a": "1"}, True),
    (["a"], [], {}, False),
    ([], ["a"], {"a": "1"}, False),
    ([], ["a"], {}, True),
    ([], ["a", "b"], {"a": "1"}, True),  # kept unless every label! expression holds
    ([], ["a", "b"], {"a": "1", "b": "2"}, False),
    (["a"], ["b=2"], {"a": "1", "b": "3"}, True),
    (["a"], ["b=2"], {"a": "1", "b": "2"}, False),
])
def test_prune_label_rule(label: list[str], not_label: list[str], labels: dict[str, str],
                          kept: bool) -> None:
    raw = {k: v for k, v in (("label", label), ("label!", not_label)) if v}
    assert Filters.of(raw).match_label_filters(labels) is kept


NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(("values", "until"), [
    ([], None),
    (["24h"], NOW - 86400 * 10**9),
    (["1h30m"], NOW - 5400 * 10**9),
    (["1700000000"], NOW),
    (["0"], 0),
])
def test_prune_until(values: list[str], until: int | None) -> None:
    assert Filters.of({"until": values} if values else {}).prune_until(NOW) == until


@pytest.mark.parametrize(("values", "message"), [
    (["1h", "2h"], "more than one until filter specified"),
    (["bogus"], 'failed to parse value as time or duration: "bogus"'),
])
def test_prune_until_errors_are_plain_ones(values: list[str], message: str) -> None:
    with pytest.raises(SystemError_, match=message):
        Filters.of({"until": values}).prune_until(NOW)


def test_list_until_takes_every_value() -> None:
    assert Filters.of({"until": ["1h", "0"]}).until_values(NOW) == (NOW - 3600 * 10**9, 0)
    with pytest.raises(SystemError_, match="bogus"):
        Filters.of({"until": ["bogus"]}).until_values(NOW)


def test_bool_value() -> None:
    assert Filters.of({"dangling": ["true", "1"]}).bool_value("dangling") is True
    assert Filters.of({"dangling": ["false"]}).bool_value("dangling") is False
    assert Filters().bool_value("dangling") is None
    with pytest.raises(InvalidParameter):
        Filters.of({"dangling": ["maybe"]}).bool_value("dangling")


def test_absent_filter_accepts_everything() -> None:
    f = Filters()
    assert f.exact_match("name", "x") and not f
