"""Engine memory per idle running container, on both engines.

Usage: python3 -m bench.idle_memory [--containers 50]
Engine memory = PSS of the engine's own processes (pydockerd: daemon + supervisor;
dockerd: dockerd + containerd + every containerd-shim), container processes excluded,
measured before and after starting N `sleep` containers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.engines import Engine, pydockerd, reference_dockerd
from conformance.images import busybox_rootfs_tar

IMAGE = "pydockerd-bench/busybox:latest"
ENGINE_COMMANDS = ("dockerd", "containerd", "containerd-shim", "compat_api", "runtime.process.supervisor")


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def engine_pss_kib() -> int:
    """PSS of every engine process on the host (both engines' daemons are told apart by
    measuring one engine at a time with the other idle)."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(word in cmdline for word in ENGINE_COMMANDS):
            total += _pss_kib(int(proc.name))
    return total


def _measure(engine: Engine, count: int) -> float:
    engine.docker("import", "-c", 'CMD ["sh"]', "-", IMAGE, input=busybox_rootfs_tar())
    before = engine_pss_kib()
    ids = [engine.docker("run", "-d", "--network", "none", IMAGE, "sleep", "3600").stdout.decode().strip()
           for _ in range(count)]
    after = engine_pss_kib()
    engine.docker("rm", "-f", *ids)
    engine.docker("rmi", IMAGE, check=False)
    return (after - before) / count / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=50)
    args = parser.parse_args()
    results = {}
    with reference_dockerd() as ref:
        results["dockerd"] = _measure(ref, args.containers)
    with pydockerd() as ours:
        results["pydockerd"] = _measure(ours, args.containers)
    print(f"engine memory (PSS) per idle running container, {args.containers} containers")
    for name, mib in results.items():
        print(f"  {name:9s} {mib:7.3f} MiB")


if __name__ == "__main__":
    main()
