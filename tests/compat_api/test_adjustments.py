"""The per-version table (compat_api.adjustments): every row on both sides of its boundary,
and docs/compat.md listing exactly the table's rows."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from compat_api.adjustments import ADJUSTMENTS, Adjustment, adjust_request, adjust_response, doc_rows
from compat_api.versions import MAX_API_VERSION, MIN_API_VERSION, APIVersion

DOC = Path(__file__).resolve().parents[2] / "docs" / "compat.md"
BEGIN = "<!-- adjustments:begin (compat_api/adjustments.py, one row per entry) -->"
END = "<!-- adjustments:end -->"


def _run(row: Adjustment, version: APIVersion) -> dict[str, object]:
    body = copy.deepcopy(row.example)
    if row.side == "request":
        return adjust_request(row.operation, version, body)
    return adjust_response(row.operation, version, body, row.legacy)


def _by_hand(row: Adjustment, version: APIVersion) -> dict[str, object]:
    """The row's example put through every row of its operation that applies at ``version``."""
    body = copy.deepcopy(row.example)
    for other in ADJUSTMENTS:
        if other.operation == row.operation and other.side == row.side and version < other.below:
            other.apply(body, row.legacy)
    return body


@pytest.mark.parametrize("row", ADJUSTMENTS, ids=lambda r: f"{r.operation}-{r.side}-{r.below}-{r.change[:24]}")
def test_each_adjustment_on_both_sides_of_its_boundary(row: Adjustment) -> None:
    assert MIN_API_VERSION < row.below <= MAX_API_VERSION
    alone = copy.deepcopy(row.example)
    row.apply(alone, row.legacy)
    assert alone == row.expected != row.example
    at, just_below = row.below, APIVersion(row.below.major, row.below.minor - 1)
    # from its version on the row does nothing; just below it, it does
    assert _run(row, at) == _by_hand(row, at)
    assert _run(row, just_below) == _by_hand(row, just_below) != _run(row, at)
    for key in set(row.expected) | set(row.example):
        if row.expected.get(key) != row.example.get(key):
            assert _run(row, at).get(key) != _run(row, just_below).get(key), key
    assert _run(row, MAX_API_VERSION) == row.example


def test_field_order_follows_dockerd() -> None:
    body = adjust_response("ImageInspect", APIVersion(1, 41), {"Id": "x", "Comment": "", "DockerVersion": "",
                                                                "Size": 1, "GraphDriver": {}},
                           {"Container": "c", "ContainerConfig": {}, "FullConfig": {}})
    assert list(body) == ["Id", "Comment", "Created", "Container", "ContainerConfig", "DockerVersion",
                          "Size", "VirtualSize", "GraphDriver"]


def test_docs_list_every_adjustment() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"docs/compat.md needs the block {BEGIN} ... {END}"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| <")]
    assert rows == doc_rows(), "docs/compat.md's per-version table differs from compat_api/adjustments.py:\n" + \
        "\n".join(doc_rows())
