"""Soak: N clients x M minutes of mixed operations against one engine; resident memory,
open descriptors and operations per second over time, as a markdown table.

    python -m bench.soak                          # starts its own pydockerd
    python -m bench.soak --host unix:///tmp/ref.sock --clients 8 --minutes 10

Each client loops over: run a short container to completion and remove it; exec into a
long-running container; read its logs; inspect and list containers; create and remove a
network and a volume. Memory and descriptors are those of the engine's processes (for
pydockerd: the daemon and its supervisor; elsewhere: the processes listening on the socket
are not known, so ``--pid`` names them). A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker

from conformance.daemon import DaemonSettings, PydockerdProcess
from conformance.images import busybox_rootfs_tar, find_busybox


@dataclass
class Counters:
    ops: int = 0
    errors: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self, ok: bool, error: str = "") -> None:
        with self.lock:
            self.ops += 1
            if not ok:
                self.errors += 1
                self.last_error = error


def _rss_and_fds(pids: list[int]) -> tuple[float, int]:
    rss_kb, fds = 0, 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kb += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            continue
    return rss_kb / 1024, fds


def _pydockerd_pids(daemon: PydockerdProcess) -> list[int]:
    pids = [daemon.proc.pid] if daemon.proc is not None else []
    try:
        pids.append(int((daemon.exec_root / "supervisor" / "supervisor.pid").read_text().strip()))
    except (OSError, ValueError):
        pass
    return pids


def client_loop(host: str, image: str, stop: threading.Event, counters: Counters, index: int) -> None:
    api = docker.APIClient(base_url=host, version="auto", timeout=60)
    tag = f"soak-{index}-{uuid.uuid4().hex[:6]}"
    keeper = api.create_container(image, ["sh", "-c", "while true; do echo tick; sleep 1; done"],
                                  name=f"{tag}-keeper", host_config=api.create_host_config(network_mode="none"))
    api.start(keeper)

    def step(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
            counters.done(True)
        except Exception as exc:  # a benchmark counts failures, it does not stop on them
            counters.done(False, f"{type(exc).__name__}: {exc}"[:200])

    def run_once() -> None:
        cid = api.create_container(image, ["echo", "hi"], host_config=api.create_host_config(network_mode="none"))
        api.start(cid)
        api.wait(cid, timeout=60)
        api.logs(cid)
        api.remove_container(cid)

    def exec_once() -> None:
        exec_id = api.exec_create(keeper, ["cat", "/etc/hostname"])
        api.exec_start(exec_id)

    def network_and_volume() -> None:
        net = api.create_network(f"{tag}-net")["Id"]
        api.remove_network(net)
        vol = api.create_volume(f"{tag}-vol")["Name"]
        api.remove_volume(vol)

    try:
        while not stop.is_set():
            step(run_once)
            step(exec_once)
            step(lambda: api.logs(keeper, tail=10))
            step(lambda: (api.inspect_container(keeper), api.containers(all=True)))
            step(network_and_volume)
    finally:
        api.remove_container(keeper, force=True)


@contextmanager
def engine(host: str | None) -> Iterator[tuple[str, PydockerdProcess | None]]:
    if host:
        yield host, None
        return
    settings = DaemonSettings.from_env()
    settings.log_level = "info"
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        yield daemon.host, daemon
    finally:
        daemon.stop()
        daemon.remove_dirs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", help="engine to soak (default: a pydockerd started here)")
    parser.add_argument("--pid", type=int, action="append", default=[], help="engine process to measure (repeatable)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between samples")
    args = parser.parse_args()
    with engine(args.host) as (host, daemon):
        api = docker.APIClient(base_url=host, version="auto")
        api.import_image_from_data(busybox_rootfs_tar(find_busybox()), repository="soak-busybox", tag="latest",
                                   changes=['CMD ["sh"]'])
        image = "soak-busybox:latest"
        counters, stop = Counters(), threading.Event()
        threads = [threading.Thread(target=client_loop, args=(host, image, stop, counters, i), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        rows = []
        started = time.monotonic()
        last_ops, last_t = 0, started
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(args.interval)
            pids = _pydockerd_pids(daemon) if daemon is not None else args.pid
            rss, fds = _rss_and_fds(pids)
            now, ops = time.monotonic(), counters.ops
            rows.append((now - started, rss, fds, ops, (ops - last_ops) / (now - last_t), counters.errors))
            last_ops, last_t = ops, now
        stop.set()
        for t in threads:
            t.join(120)
        api.remove_image(image, force=True)
    print(f"\n{args.clients} clients x {args.minutes:g} min against {host}\n")
    print("| t (s) | RSS (MiB) | open fds | operations | ops/s | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    for t, rss, fds, ops, rate, errors in rows:
        print(f"| {t:.0f} | {rss:.1f} | {fds} | {ops} | {rate:.1f} | {errors} |")
    if len(rows) >= 2:
        print(f"\nRSS {rows[0][1]:.1f} -> {rows[-1][1]:.1f} MiB, fds {rows[0][2]} -> {rows[-1][2]}")
    if counters.last_error:
        print(f"last error: {counters.last_error}")


if __name__ == "__main__":
    main()
