"""Volume names (dockerd's rule and texts) and the CreatedAt format."""

from __future__ import annotations

import re

import pytest

from runtime.errors import InvalidParameter
from runtime.volumes.model import ANONYMOUS_LABEL, Volume, created_at, validate_name


@pytest.mark.parametrize("name", ["ab", "a1", "data_1", "x.y-z", "A" * 200, "0abc"])
def test_valid_names(name: str) -> None:
    validate_name(name)


def test_short_name() -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_name("a")
    assert str(err.value) == ("volume name is too short, names should be at least two "
                              "alphanumeric characters")


@pytest.mark.parametrize("name", ["-ab", ".ab", "_ab", "a/b", "a b", "a:b", "ä1", "", "a$b"])
def test_invalid_characters(name: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_name(name)
    assert str(err.value) == (
        f'"{name}" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path")


def test_created_at_is_rfc3339_seconds() -> None:
    text = created_at(1_700_000_000_123_456_789)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", text), text


def test_anonymous_is_the_label() -> None:
    assert Volume("x" * 64, "local", "/m", 1, labels={ANONYMOUS_LABEL: ""}).anonymous
    assert not Volume("named", "local", "/m", 1).anonymous
