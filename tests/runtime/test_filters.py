from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.filters import Filters


def test_validate_rejects_unknown_names() -> None:
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        Filters.of({"colour": ["red"]}).validate({"label"})


def test_label_matching() -> None:
    f = Filters.of({"label": ["a", "b=2", "c!=3"]})
    assert f.match_labels({"a": "x", "b": "2", "c": "4"})
    assert not f.match_labels({"b": "2"})
    assert not f.match_labels({"a": "", "b": "2", "c": "3"})


def test_bool_value() -> None:
    assert Filters.of({"dangling": ["true", "1"]}).bool_value("dangling") is True
    assert Filters.of({"dangling": ["false"]}).bool_value("dangling") is False
    assert Filters().bool_value("dangling") is None
    with pytest.raises(InvalidParameter):
        Filters.of({"dangling": ["maybe"]}).bool_value("dangling")


def test_absent_filter_accepts_everything() -> None:
    f = Filters()
    assert f.exact_match("name", "x") and not f
