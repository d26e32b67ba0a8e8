"""`docker run --rm busybox true`, timed end to end through the real CLI on both engines.

Usage: python3 -m bench.run_true [--runs 20] [--network none|bridge]
Prints both medians and the ratio dockerd / pydockerd (higher is better for pydockerd).
"""

from __future__ import annotations

import argparse
import time

from bench.engines import Engine, median, pydockerd, reference_dockerd
from conformance.images import busybox_rootfs_tar

IMAGE = "pydockerd-bench/busybox:latest"


def _prepare(engine: Engine, rootfs: bytes) -> None:
    engine.docker("import", "-c", 'CMD ["sh"]', "-", IMAGE, input=rootfs)
    engine.docker("run", "--rm", IMAGE, "true")  # warm-up


def _time_runs(engine: Engine, runs: int, network: str) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.docker("run", "--rm", "--network", network, IMAGE, "true")
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--network", default="none")
    args = parser.parse_args()
    rootfs = busybox_rootfs_tar()
    with reference_dockerd() as ref, pydockerd() as ours:
        for engine in (ref, ours):
            _prepare(engine, rootfs)
        ref_samples: list[float] = []
        our_samples: list[float] = []
        # interleave so both see the same machine conditions
        for _ in range(args.runs):
            ref_samples += _time_runs(ref, 1, args.network)
            our_samples += _time_runs(ours, 1, args.network)
        ref_med, our_med = median(ref_samples), median(our_samples)
        print(f"docker run --rm --network {args.network} busybox true, {args.runs} runs each")
        print(f"  dockerd   median {ref_med * 1000:8.1f} ms")
        print(f"  pydockerd median {our_med * 1000:8.1f} ms")
        print(f"  ratio (dockerd / pydockerd): {ref_med / our_med:.2f}x")
        for engine in (ref, ours):
            engine.docker("rmi", IMAGE, check=False)


if __name__ == "__main__":
    main()
