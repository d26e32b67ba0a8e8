#!/usr/bin/env python3
"""Regenerates the endpoint table of docs/compat.md from the Engine API spec.

    python3 tools/gen_compat.py            # rewrite the table between the endpoint markers
    python3 tools/gen_compat.py --check    # exit 1 if the table and the spec disagree

One row per operation of the spec, in the spec's order, grouped by its tag. Status, covering
tests and notes of rows that already exist are kept, so the file is edited by hand (one line per
row) and this tool only adds rows for operations it does not list yet and drops ones the spec no
longer has. Everything outside the markers (the CLI table, prose) is left alone.

The spec is vendored: vendor/moby-api/engine-api-v1.50.yaml (see the README there).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO / "vendor" / "moby-api" / "engine-api-v1.50.yaml"
DEFAULT_DOC = REPO / "docs" / "compat.md"
BEGIN = "<!-- endpoints:begin (tools/gen_compat.py keeps one row per spec operation) -->"
END = "<!-- endpoints:end -->"
HEADER = "| Method | Path | Operation | Status | Conformance tests | Notes |"
RULE = "|---|---|---|---|---|---|"
METHODS = ("get", "head", "post", "put", "delete")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


@dataclass(frozen=True, slots=True)
class Row:
    method: str
    path: str
    operation_id: str
    status: str
    tests: str
    notes: str

    def render(self) -> str:
        return (
            f"| {self.method} | `{self.path}` | {self.operation_id} | {self.status} | {self.tests} | {self.notes} |"
        )


def spec_operations(spec_path: Path) -> list[Operation]:
    spec = yaml.safe_load(spec_path.read_text())
    ops = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                tag = (op.get("tags") or ["Other"])[0]
                ops.append(Operation(method.upper(), path, op["operationId"], tag))
    return ops


def parse_row(line: str) -> Row | None:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 6 or cells[0] not in {m.upper() for m in METHODS}:
        return None
    return Row(cells[0], cells[1].strip("`"), cells[2], cells[3], cells[4], cells[5])


def split_doc(text: str) -> tuple[str, list[str], str]:
    try:
        head, rest = text.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"markers missing in {DEFAULT_DOC.name}: {BEGIN!r} ... {END!r}") from None
    return head, body.strip("\n").splitlines(), tail


def render_table(ops: list[Operation], existing: dict[tuple[str, str], Row]) -> list[str]:
    lines: list[str] = []
    tag = None
    for op in ops:
        if op.tag != tag:
            tag = op.tag
            count = sum(1 for o in ops if o.tag == tag)
            lines += ["", f"#### {tag} ({count})", "", HEADER, RULE]
        old = existing.get(op.key)
        row = Row(
            op.method,
            op.path,
            op.operation_id,
            old.status if old else "missing",
            old.tests if old else "—",
            old.notes if old else "",
        )
        lines.append(row.render())
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)

    ops = spec_operations(args.spec)
    head, body, tail = split_doc(args.doc.read_text())
    existing = {(r.method, r.path): r for r in map(parse_row, body) if r is not None}
    new_body = render_table(ops, existing)
    new_text = f"{head}{BEGIN}\n" + "\n".join(new_body).lstrip("\n") + f"\n\n{END}{tail}"

    if args.check:
        stale = sorted(set(existing) - {op.key for op in ops})
        missing = [op.key for op in ops if op.key not in existing]
        if new_text != args.doc.read_text() or stale or missing:
            print(f"{args.doc} is out of date: run tools/gen_compat.py", file=sys.stderr)
            for method, path in missing:
                print(f"  not listed: {method} {path}", file=sys.stderr)
            for method, path in stale:
                print(f"  not in the spec: {method} {path}", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(new_text)
    print(f"wrote {args.doc}: {len(ops)} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
