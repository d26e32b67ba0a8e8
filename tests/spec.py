"""Access to the Engine API spec kept beside the repository (../shared/reference)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "engine-api-v1.50.yaml"


@functools.cache
def _load() -> Any:
    return yaml.safe_load(SPEC_PATH.read_text())


def load_spec() -> Any:
    if not SPEC_PATH.exists():
        pytest.skip(f"API spec not found at {SPEC_PATH}")
    return _load()
