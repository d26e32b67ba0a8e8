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


def example_body(operation_path: str, method: str = "post", path: Path = SPEC_PATH) -> dict[str, Any]:
    """The request body that the spec's own examples spell out for an operation: each
    property's ``example`` (through ``$ref``s), as a client copying the docs would send it."""
    spec = load_spec(path)
    op = spec["paths"][operation_path][method]
    body = next(p for p in op["parameters"] if p.get("in") == "body")

    def build(schema: dict[str, Any]) -> Any:
        if "example" in schema:
            return schema["example"]
        if "$ref" in schema:
            return build(spec["definitions"][schema["$ref"].rsplit("/", 1)[-1]])
        if "properties" in schema:
            fields = {k: build(v) for k, v in schema["properties"].items()}
            return {k: v for k, v in fields.items() if v is not None}
        return None

    result = build(body["schema"])
    assert isinstance(result, dict)
    return result
