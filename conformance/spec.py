"""The Engine API spec the project targets, vendored in vendor/moby-api."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parents[1] / "vendor" / "moby-api" / "engine-api-v1.50.yaml"
SWARM_TAGS = frozenset({"Swarm", "Node", "Service", "Task", "Secret", "Config"})


@dataclass(frozen=True, slots=True)
class SpecOperation:
    method: str
    path: str
    operation_id: str
    tag: str


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> Any:
    return yaml.safe_load(path.read_text())


def operations(path: Path = SPEC_PATH) -> list[SpecOperation]:
    """Every operation of the spec, in its order."""
    ops = []
    for route, item in load_spec(path)["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                ops.append(SpecOperation(method.upper(), route, op["operationId"], (op.get("tags") or [""])[0]))
    return ops
