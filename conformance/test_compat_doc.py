"""docs/compat.md stays true: a row per spec operation, and every cited test exists."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType


from conformance.spec import SPEC_PATH

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "compat.md"
CITATION = re.compile(r"(test_[\w]+\.py)::(test_\w+)")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_compat", REPO / "tools" / "gen_compat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_compat", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _table_rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_every_spec_operation_has_a_row() -> None:
    assert _generator().main(["--check", "--spec", str(SPEC_PATH), "--doc", str(DOC)]) == 0


def test_cited_tests_exist_and_working_rows_cite_one() -> None:
    here = Path(__file__).resolve().parent
    for cells in _table_rows():
        if cells[0] in ("Method", "Command"):
            continue
        text = " | ".join(cells)
        citations = CITATION.findall(text)
        for filename, test in citations:
            source = here / filename
            assert source.exists(), f"{filename} cited in compat.md does not exist: {text}"
            assert re.search(rf"^def {test}\(", source.read_text(), re.MULTILINE), f"{filename}::{test} not found"
        if "works" in cells:
            assert citations, f"a 'works' row must name its conformance test: {text}"
