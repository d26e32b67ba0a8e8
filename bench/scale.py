"""Cost as work grows (issue #14 item 5), pydockerd and a reference engine in the same run.

    python -m bench.scale --against unix:///tmp/ref.sock            # full sizes
    python -m bench.scale --against unix:///tmp/ref.sock --quick    # 20 containers, 50 tags

Each engine is filled once (N running containers, T image tags, a network with E
endpoints, one busy container), then every read is timed on both engines in turn,
``--reps`` times, alternating which goes first; the table shows medians and the ratio
reference / pydockerd (above 1: pydockerd is faster). Memory is the resident size of the
engine's processes, full. Everything made is named ``pdscale-*`` and removed afterwards.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.engines import Engine, median, pydockerd, reference, rss_kib
from bench.workloads import concurrent, timed
from conformance.images import busybox_rootfs_tar

IMAGE = "pdscale/busybox:latest"
PREFIX = "pdscale"


def _free_subnet(taken_by: list[Engine]) -> str:
    """A /16 in 10.160-10.199 that no host route and no network of the engines uses."""
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for engine in taken_by:
        used += engine.docker("network", "inspect", "--format",
                              "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                              *engine.docker("network", "ls", "-q").stdout.decode().split(),
                              check=False).stdout.decode()
    nets = []
    for word in used.split():
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for second in range(160, 200):
        candidate = ipaddress.ip_network(f"10.{second}.0.0/16")
        if not any(candidate.overlaps(n) for n in nets if n.version == 4):
            return str(candidate)
    raise RuntimeError("no free 10.x/16 for the test network")


class Filled:
    """What one engine was filled with."""

    def __init__(self, engine: Engine, running: int, tags: int, endpoints: int) -> None:
        self.engine = engine
        self.running = [f"{PREFIX}-r{i}" for i in range(running)]
        self.tags = [f"{PREFIX}/tag{i}:latest" for i in range(tags)]
        self.on_net = [f"{PREFIX}-n{i}" for i in range(endpoints)]
        self.network = f"{PREFIX}-net-{os.getpid()}"
        self.busy = f"{PREFIX}-busy"

    def fill(self, subnet: str, workers: int = 4) -> None:
        e = self.engine
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda n: e.docker("run", "-d", "--network", "none", "--name", n, IMAGE,
                                             "sleep", "3600"), self.running))
            list(pool.map(lambda t: e.docker("tag", IMAGE, t), self.tags))
            e.docker("network", "create", "--subnet", subnet, self.network)
            list(pool.map(lambda n: e.docker("run", "-d", "--network", self.network, "--name", n,
                                             IMAGE, "sleep", "3600"), self.on_net))

    def clean(self) -> None:
        e = self.engine
        # dockerd 20.10 can keep the endpoint of a container force-removed while running,
        # and then refuses to remove the network until it restarts: disconnect them first
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: e.docker("network", "disconnect", "-f", self.network, n, check=False),
                          self.on_net))
        names = self.running + self.on_net + [self.busy]
        for start in range(0, len(names), 100):
            e.docker("rm", "-f", *names[start:start + 100], check=False)
        e.docker("network", "rm", self.network, check=False)
        for start in range(0, len(self.tags), 200):
            e.docker("rmi", *self.tags[start:start + 200], check=False)


def followers(filled: Filled, lines: int, count: int = 20) -> float:
    """Wall time from starting ``count`` followers until each has seen the busy container's
    whole output (``lines`` lines written after a short pause) and ended with it."""
    e = filled.engine
    e.docker("rm", "-f", filled.busy, check=False)
    e.docker("run", "-d", "--network", "none", "--name", filled.busy, IMAGE, "sh", "-c",
             f"sleep 2; seq {lines}")
    start = time.perf_counter()
    procs = [subprocess.Popen(["docker", "logs", "-f", filled.busy], env=e.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
             for _ in range(count)]
    counts = [p.communicate()[0].count(b"\n") for p in procs]
    elapsed = time.perf_counter() - start
    e.docker("rm", "-f", filled.busy, check=False)
    if any(c != lines for c in counts):
        print(f"  {e.name}: followers saw {sorted(set(counts))} lines, expected {lines}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="HOST", help="reference engine (never started here)")
    parser.add_argument("--pydockerd", metavar="HOST", help="a running pydockerd instead of a fresh one")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    running, tags, endpoints, lines = (20, 50, 10, 2_000) if args.quick else (500, 1000, 200, 100_000)
    tar = busybox_rootfs_tar()
    rows: dict[str, dict[str, list[float]]] = {}
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with pydockerd(args.pydockerd) as ours:
        engines = [ours.engine()]
        if args.against:
            engines.insert(0, reference(args.against))
        filled: list[Filled] = []
        try:
            for e in engines:
                e.docker("import", "-c", 'CMD ["sh"]', "-", IMAGE, input=tar)
                f = Filled(e, running, tags, endpoints)
                filled.append(f)
                t0 = time.perf_counter()
                f.fill(_free_subnet(engines))
                print(f"... filled {e.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            for f in filled:
                if f.engine.name == "pydockerd":
                    f.engine = ours.engine()  # names the supervisor too, now that it runs
            reads: list[tuple[str, Callable[[Filled], float]]] = [
                (f"`docker ps` with {running + endpoints} running",
                 lambda f: timed(lambda: f.engine.docker("ps"))),
                (f"`docker inspect` of {running} containers",
                 lambda f: timed(lambda: f.engine.docker("inspect", *f.running))),
                (f"`docker images` with {tags} tags",
                 lambda f: timed(lambda: f.engine.docker("images"))),
                (f"`docker network inspect` with {endpoints} endpoints",
                 lambda f: timed(lambda: f.engine.docker("network", "inspect", f.network))),
                ("100 concurrent `docker exec true`",
                 lambda f: concurrent(100, lambda: f.engine.docker("exec", f.running[0], "true"))),
            ]
            for rep in range(args.reps):
                order = filled if rep % 2 == 0 else list(reversed(filled))
                for label, fn in reads:
                    for f in order:
                        rows.setdefault(label, {}).setdefault(f.engine.name, []).append(fn(f))
                print(f"... reads {rep + 1}/{args.reps}", flush=True)
            label = f"20 concurrent `docker logs -f` of one busy container ({lines:,} lines)"
            for rep in range(max(1, args.reps // 2)):
                order = filled if rep % 2 == 0 else list(reversed(filled))
                for f in order:
                    rows.setdefault(label, {}).setdefault(f.engine.name, []).append(followers(f, lines))
            mem = f"engine memory with {running + endpoints} running (RSS, MB)"
            for f in filled:
                if f.engine.pids:
                    rows.setdefault(mem, {})[f.engine.name] = [rss_kib(f.engine.pids) / 1024]
        finally:
            for f in filled:
                f.clean()
                f.engine.docker("rmi", IMAGE, check=False)
    names = [e.name for e in engines]
    print(f"\nload average: {load_start} at start, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at end; medians of {args.reps}\n")
    print("| workload | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"))
    print("|---|" + "---:|" * (len(names) + (1 if len(names) == 2 else 0)))
    for label, values in rows.items():
        meds = [median(values[n]) if n in values else None for n in names]
        cells = [("-" if m is None else (f"{m:.1f} MB" if label.endswith("MB)") else f"{m:.3f} s"))
                 for m in meds]
        ratio = ""
        if len(names) == 2 and meds[0] and meds[1]:
            ratio = f" {meds[0] / meds[1]:.2f} |"
        print(f"| {label} | " + " | ".join(cells) + (" |" + ratio if ratio else " |"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
