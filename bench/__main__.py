"""One command for the performance table: every workload on pydockerd and a reference engine.

    python -m bench --against unix:///var/run/docker.sock        # full run, both engines
    python -m bench --quick                                       # CI: pydockerd alone, small

It starts its own pydockerd (on a free test bridge) unless ``--pydockerd HOST`` names one; the
reference (``--against``) must already run: it is never started here. Workloads run on both
engines in turn, alternating which goes first, ``reps`` times; the table shows medians and the
ratio reference / pydockerd (above 1: pydockerd is faster or smaller). Everything created is
named ``pdbench-*`` and removed. Timings on a shared machine are noisy: the load average at
start and end is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import workloads as W
from bench.engines import Engine, median, pydockerd, reference
from conformance.images import busybox_rootfs_tar

if TYPE_CHECKING:
    from conformance.registry import LocalRegistry


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _fmt(value: float | None, label: str) -> str:
    if value is None:
        return "-"
    if label.endswith("MB)"):
        return f"{value:.1f} MB" if value >= 1 else f"{value:.3f} MB"
    if label.endswith("ms)"):
        return f"{value:.0f} ms"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="HOST", help="reference engine, e.g. "
                        "unix:///var/run/docker.sock (never started by the bench)")
    parser.add_argument("--pydockerd", metavar="HOST", help="a running pydockerd to measure "
                        "instead of starting one (memory rows then need its pids: skipped)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition "
                        "(CI runs this against pydockerd alone)")
    parser.add_argument("--only", default="", help="comma-separated workloads: " +
                        ",".join(w.name for w in W.WORKLOADS))
    parser.add_argument("--rootfs", type=Path, default=Path("/usr/lib"),
                        help="tree to tar for import/push/pull/save/load (default /usr/lib)")
    parser.add_argument("--rootfs-mb", type=int, default=0,
                        help="size of that tar (default 200, --quick 10)")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    unknown = only - {w.name for w in W.WORKLOADS}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    chosen = [w for w in W.WORKLOADS if not only or w.name in only]

    ctx = W.Context(quick=args.quick, workdir=W.workdir(), busybox_tar=busybox_rootfs_tar())
    load_start = _load()
    started = time.monotonic()
    results: dict[str, dict[str, list[float]]] = {}
    floor: dict[str, float] | None = None
    registry = None
    engines: list[Engine] = []
    try:
        with pydockerd(args.pydockerd) as ours:
            engines.append(ours.engine())
            if args.against:
                engines.insert(0, reference(args.against))
            for engine in engines:
                W.prepare(ctx, engine)
            if any(w.name == "distribution" for w in chosen):
                ctx.rootfs_tar = W.make_rootfs(ctx, args.rootfs,
                                               args.rootfs_mb or (10 if args.quick else 200))
                registry = _start_registry(ctx)
            for workload in chosen:
                if workload.name == "logs":
                    for engine in engines:
                        W.make_log(ctx, engine)
                reps = workload.reps_quick if args.quick else workload.reps_full
                # the CLI floor of docker logs: measured in every repetition, beside the engines
                floor_now = W.CliFloor(engines[-1]) if workload.name == "logs" else None
                try:
                    for rep in range(reps):
                        order = engines if rep % 2 == 0 else engines[::-1]
                        if floor_now is not None and rep % 2:
                            floor_now.measure()
                        for engine in order:
                            if engine.name == "pydockerd":
                                engine = ours.engine()   # its supervisor may be new
                            print(f"... {workload.name} on {engine.name} ({rep + 1}/{reps})",
                                  file=sys.stderr, flush=True)
                            try:
                                measured = workload.run(ctx, engine)
                            except RuntimeError as exc:
                                # one workload failing (say, a leftover on the reference
                                # engine) must not lose the rows already measured
                                print(f"!!! {workload.name} on {engine.name}: {exc}",
                                      file=sys.stderr, flush=True)
                                continue
                            for row, value in measured.items():
                                results.setdefault(row, {}).setdefault(engine.name, []).append(value)
                        if floor_now is not None and rep % 2 == 0:
                            floor_now.measure()
                finally:
                    if floor_now is not None:
                        floor_now.close()
                if floor_now is not None:
                    floor = floor_now.medians()
                    for engine in engines:
                        engine.docker("rm", "-f", W.LOGS_NAME, check=False)
    finally:
        for engine in engines:
            engine.docker("rm", "-f", W.LOGS_NAME, check=False)
            engine.docker("rmi", W.IMAGE, check=False)
        if registry is not None:
            registry.stop()
        W.cleanup(ctx.workdir)

    names = ["dockerd", "pydockerd"] if args.against else ["pydockerd"]
    print()
    print(f"| workload | {' | '.join(names)} |" + (" ratio |" if args.against else ""))
    print("|---" * (len(names) + 1 + bool(args.against)) + "|")
    for row, by_engine in results.items():
        values = {n: median(v) if (v := by_engine.get(n)) else None for n in names}
        cells = [_fmt(values[n], row) for n in names]
        line = f"| {row} | {' | '.join(cells)} |"
        if args.against:
            ref, py = values["dockerd"], values["pydockerd"]
            line += f" {ref / py:.2f}x |" if ref and py else " - |"
        print(line)
    print()
    if floor:
        print("docker CLI floor for that log (a stub engine serving prebuilt frames, one per "
              "line as dockerd sends them; measured in every repetition beside the engines, "
              "medians): " + ", ".join(f"`{cmd}` {seconds:.3f} s" for cmd, seconds in floor.items()))
    for note in ctx.notes:
        print(f"note: {note}")
    print(f"load average (1/5/15 min) at start: {load_start}; at end: {_load()}; "
          f"{os.cpu_count()} CPUs; took {time.monotonic() - started:.0f} s")
    return 0


def _start_registry(ctx: W.Context) -> "LocalRegistry | None":
    from conformance.registry import LocalRegistry, RegistryStartError, find_registry

    if find_registry() is None:
        ctx.notes.append("no docker-registry binary: push/pull rows skipped")
        return None
    try:
        registry = LocalRegistry().start()
    except RegistryStartError as exc:
        ctx.notes.append(f"registry did not start ({exc}): push/pull rows skipped")
        return None
    ctx.registry = registry.address
    return registry


if __name__ == "__main__":
    sys.exit(main())
