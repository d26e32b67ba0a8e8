"""Access to the Engine API spec vendored in vendor/moby-api."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parents[1] / "vendor" / "moby-api" / "engine-api-v1.50.yaml"


@functools.cache
def _load() -> Any:
    return yaml.safe_load(SPEC_PATH.read_text())


def load_spec() -> Any:
    return _load()
