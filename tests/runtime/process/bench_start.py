"""Measure (not assert) start+wait latency and per-container supervisor memory.

    python3 -m tests.runtime.process.bench_start [--runs 200] [--idle 50]

Starts a private supervisor in a temporary exec root with a busybox rootfs, runs
``/bin/true`` ``--runs`` times (start -> exec -> exit reported), then starts ``--idle``
``sleep`` containers and reports the supervisor's RSS/PSS growth. Everything is cleaned up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from runtime.process.client import SupervisorClient, spawn_supervisor
from tests.runtime.process.conftest import Harness, make_busybox_rootfs


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


async def bench(root: Path, rootfs: Path, tmp: Path, runs: int, idle: int, sup_pid: int) -> None:
    client = await SupervisorClient.connect(root)
    h = Harness(client, rootfs, tmp)
    client.on_exit(h.on_exit)
    times = []
    for _ in range(runs):
        spec = h.spec("true")
        t0 = time.perf_counter()
        proc = await h.start(spec)
        code = await h.wait(proc)
        times.append((time.perf_counter() - t0) * 1000)
        assert code == 0
        for fd in (proc.stdout, proc.stderr):
            if fd is not None:
                os.close(fd)
    times.sort()
    print(f"start+wait /bin/true: n={runs} p50={statistics.median(times):.2f} ms "
          f"p90={times[int(len(times) * 0.9)]:.2f} ms min={times[0]:.2f} ms")
    before = memory_kb(sup_pid)
    procs = []
    for _ in range(idle):
        p = await h.start(h.spec("sleep", "3600"))
        procs.append(p)
    await asyncio.sleep(0.5)
    after = memory_kb(sup_pid)
    fds = len(os.listdir(f"/proc/{sup_pid}/fd"))
    print(f"supervisor RSS {before[0]} -> {after[0]} KiB, PSS {before[1]} -> {after[1]} KiB "
          f"with {idle} idle containers: {(after[0] - before[0]) / max(idle, 1):.1f} KiB RSS "
          f"per container; supervisor total RSS {after[0] / 1024:.1f} MiB, {fds} fds")
    for p in procs:
        await client.signal(p.pid, 9)
        await h.wait(p)
        for fd in (p.stdout, p.stderr):
            if fd is not None:
                os.close(fd)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--idle", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        rootfs = tmp / "rootfs"
        make_busybox_rootfs(rootfs)
        root = tmp / "exec"
        sup, ready = spawn_supervisor(root)
        os.read(ready, 1)
        os.close(ready)
        try:
            asyncio.run(bench(root, rootfs, tmp / "c", args.runs, args.idle, sup.pid))
        finally:
            sup.terminate()
            sup.wait(10)


if __name__ == "__main__":
    main()
