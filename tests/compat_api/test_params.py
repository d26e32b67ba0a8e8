from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from compat_api.params import bool_value, bool_value_or_default, int_value, parse_filters
from runtime.errors import InvalidParameter


@pytest.mark.parametrize("raw", ["1", "true", "True", "yes", "anything"])
def test_bool_truthy(raw: str) -> None:
    assert bool_value(make_mocked_request("GET", f"/x?all={raw}"), "all") is True


@pytest.mark.parametrize("raw", ["", "0", "no", "false", "False", "NONE"])
def test_bool_falsy(raw: str) -> None:
    assert bool_value(make_mocked_request("GET", f"/x?all={raw}"), "all") is False


def test_bool_default_only_when_absent() -> None:
    assert bool_value_or_default(make_mocked_request("GET", "/x"), "rm", True) is True
    assert bool_value_or_default(make_mocked_request("GET", "/x?rm=False"), "rm", True) is False


def test_int_value_rejects_garbage() -> None:
    assert int_value(make_mocked_request("GET", "/x?t=5"), "t") == 5
    with pytest.raises(InvalidParameter):
        int_value(make_mocked_request("GET", "/x?t=abc"), "t")


def test_filters_both_encodings() -> None:
    go_form = parse_filters('{"label":{"a=b":true},"dangling":{"true":true}}')
    py_form = parse_filters('{"label":["a=b"],"dangling":["true"]}')
    assert go_form.values == py_form.values == {"label": ("a=b",), "dangling": ("true",)}


def test_filters_malformed_is_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter):
        parse_filters("{not json")
    with pytest.raises(InvalidParameter):
        parse_filters('["a"]')
