"""`docker import` throughput of a large rootfs tar on both engines.

Usage: python3 -m bench.import_rootfs [--rootfs DIR_OR_TAR] [--runs 3]
Without --rootfs it tars /usr (a large, realistic tree of many small files).
Prints MB/s (uncompressed tar bytes / wall time) for each engine and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from bench.engines import Engine, median, pydockerd, reference_dockerd


def _make_tar(source: Path, dest: Path) -> Path:
    if source.is_file():
        return source
    subprocess.run(["tar", "-C", str(source), "-cf", str(dest), "."], check=True,
                   stderr=subprocess.DEVNULL)
    return dest


def _import_once(engine: Engine, tar: Path, tag: str) -> float:
    start = time.perf_counter()
    with open(tar, "rb") as f:
        engine.docker("import", "-", tag, input=f.read())
    elapsed = time.perf_counter() - start
    engine.docker("rmi", tag, check=False)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rootfs", type=Path, default=Path("/usr"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tar = _make_tar(args.rootfs, Path(tmp) / "rootfs.tar")
        size_mb = tar.stat().st_size / 1e6
        with reference_dockerd() as ref, pydockerd() as ours:
            results = {}
            for engine in (ref, ours):
                results[engine.name] = median(
                    [_import_once(engine, tar, f"bench-import:{i}") for i in range(args.runs)]
                )
        print(f"docker import of a {size_mb:.0f} MB tar ({args.rootfs}), median of {args.runs}")
        for name, seconds in results.items():
            print(f"  {name:9s} {seconds:6.2f} s  {size_mb / seconds:7.1f} MB/s")
        print(f"  ratio (dockerd time / pydockerd time): {results['dockerd'] / results['pydockerd']:.2f}x")


if __name__ == "__main__":
    main()
