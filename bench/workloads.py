"""The workloads of ``python -m bench``: each measures one or more table rows on one engine.

A workload is a function ``(ctx, engine) -> {row: value}``; the runner calls it on each engine
in turn (interleaved, ``reps`` times) and takes medians. Values are seconds unless the row's
unit says otherwise. Every container, image, network and tag made here is named ``pdbench-*``
and removed afterwards, so the reference engine can be a shared one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.engines import Engine, median, pss_kib, rss_kib

IMAGE = "pdbench/busybox:latest"


@dataclass
class Context:
    """Sizes (full or ``--quick``) and shared resources."""

    quick: bool
    workdir: Path
    busybox_tar: bytes
    registry: str | None = None          # host:port of a local registry
    rootfs_tar: Path | None = None
    notes: list[str] = field(default_factory=list)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass(frozen=True)
class Workload:
    """Rows are named by ``run`` (their labels carry the sizes); a label ending in ``MB)``
    or ``ms)`` says its unit, seconds otherwise."""

    name: str
    run: Callable[[Context, Engine], dict[str, float]]
    reps_full: int = 1
    reps_quick: int = 1


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def prepare(ctx: Context, engine: Engine) -> None:
    engine.docker("import", "-c", 'CMD ["sh"]', "-", IMAGE, input=ctx.busybox_tar)
    engine.docker("run", "--rm", "--network", "none", IMAGE, "true")


def _rm(engine: Engine, names: list[str]) -> None:
    for start in range(0, len(names), 100):
        engine.docker("rm", "-f", *names[start:start + 100], check=False)


# --- docker run ----------------------------------------------------------------------------

def run_true(ctx: Context, engine: Engine) -> dict[str, float]:
    return {
        "`docker run --rm busybox true` (default bridge)":
            timed(lambda: engine.docker("run", "--rm", IMAGE, "true")),
        "same, `--network none`":
            timed(lambda: engine.docker("run", "--rm", "--network", "none", IMAGE, "true")),
    }


def run_detached(ctx: Context, engine: Engine) -> dict[str, float]:
    count = ctx.size(50, 5)
    names = [f"pdbench-d{i}" for i in range(count)]
    try:
        seconds = timed(lambda: [engine.docker("run", "-d", "--name", n, IMAGE, "sleep", "600")
                                 for n in names])
    finally:
        _rm(engine, names)
    return {f"{count} `docker run -d` in a row": seconds}


# --- logs ----------------------------------------------------------------------------------

LOGS_NAME = "pdbench-logs"


def log_lines(ctx: Context) -> int:
    return ctx.size(1_000_000, 20_000)


def make_log(ctx: Context, engine: Engine) -> None:
    engine.docker("rm", "-f", LOGS_NAME, check=False)
    engine.docker("run", "--name", LOGS_NAME, "--network", "none", IMAGE, "sh", "-c",
                  f'seq {log_lines(ctx)} | sed "s/$/ hello world/"')


def _ps_latency_during(engine: Engine, args: list[str]) -> tuple[float, float]:
    """GET /containers/json answer times (ms; median, worst) while ``docker *args`` runs:
    what another client sees of the event loop meanwhile."""
    def ps_once() -> float:
        start = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(engine.socket_path())
            s.sendall(b"GET /containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
        return time.perf_counter() - start

    proc = engine.popen(*args)
    samples = []
    while proc.poll() is None:
        samples.append(ps_once())
        time.sleep(0.02)
    proc.wait()
    if not samples:
        return 0.0, 0.0
    return median(samples) * 1000, max(samples) * 1000


def logs(ctx: Context, engine: Engine) -> dict[str, float]:
    lines = log_lines(ctx)
    label = f"{lines:,}-line json-file log"
    out = {
        f"`docker logs` of a {label}": timed(lambda: engine.quiet("logs", LOGS_NAME)),
        "same, `docker logs -t`": timed(lambda: engine.quiet("logs", "-t", LOGS_NAME)),
        "same, `docker logs --since` (epoch + 1 s: every line filtered)":
            timed(lambda: engine.quiet("logs", "--since", "1", LOGS_NAME)),
        "same, `docker logs --tail 1000`":
            timed(lambda: engine.quiet("logs", "--tail", "1000", LOGS_NAME)),
        "same, `docker logs -f` (container exited: the whole file, then the end)":
            timed(lambda: engine.quiet("logs", "-f", LOGS_NAME)),
    }
    typical, worst = _ps_latency_during(engine, ["logs", LOGS_NAME])
    out["`docker ps` answer during that `docker logs`: median (ms)"] = typical
    out["same, worst (ms)"] = worst
    return out


class CliFloor:
    """The CLI's own time for the same log's frames served prebuilt (engine-independent):
    ``docker logs`` and ``docker logs -t`` against stub engines (``bench/cli_floor.py``).
    ``measure`` runs once per repetition, between the engines' runs, so the floor sees the
    same machine load as they do."""

    COMMANDS = (("docker logs", False), ("docker logs -t", True))

    def __init__(self, engine: Engine) -> None:
        from bench.cli_floor import FloorServer, build_frames

        self.servers: dict[str, FloorServer] = {}
        self.samples: dict[str, list[float]] = {}
        path = json.loads(engine.docker("inspect", LOGS_NAME).stdout)[0].get("LogPath")
        if not path or not Path(path).exists():
            return
        for label, stamps in self.COMMANDS:
            self.servers[label] = FloorServer(build_frames(Path(path), timestamps=stamps))

    def measure(self) -> None:
        from bench.cli_floor import time_cli_logs

        for label, server in self.servers.items():
            self.samples.setdefault(label, []).append(time_cli_logs(server.host, "floor"))

    def medians(self) -> dict[str, float]:
        return {label: median(values) for label, values in self.samples.items()}

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


# --- build ---------------------------------------------------------------------------------

def build(ctx: Context, engine: Engine) -> dict[str, float]:
    context = ctx.workdir / "build-context"
    if not context.exists():
        context.mkdir()
        (context / "data.bin").write_bytes(bytes(range(256)) * (5 * 4096))  # 5 MB
        (context / "Dockerfile").write_text(
            f"FROM {IMAGE}\nCOPY data.bin /data.bin\nRUN wc -c /data.bin > /size\n"
            "ENV PDBENCH=1\nRUN echo built > /built\nLABEL pdbench=yes\nCMD [\"cat\", \"/size\"]\n")
    tag = "pdbench/build:latest"
    try:
        cold = timed(lambda: engine.docker("build", "--no-cache", "-q", "-t", tag, str(context)))
        cached = timed(lambda: engine.docker("build", "-q", "-t", tag, str(context)))
    finally:
        engine.docker("rmi", "-f", tag, check=False)
    return {"cold classic build (6 steps, 5 MB context)": cold, "same, cached": cached}


# --- distribution --------------------------------------------------------------------------

def distribution(ctx: Context, engine: Engine) -> dict[str, float]:
    assert ctx.rootfs_tar is not None
    size = ctx.rootfs_tar.stat().st_size / 1e6
    tag = f"pdbench/rootfs:{engine.name}"
    out: dict[str, float] = {}
    with open(ctx.rootfs_tar, "rb") as f:
        data = f.read()
    out[f"`docker import` of a {size:.0f} MB rootfs"] = timed(
        lambda: engine.docker("import", "-", tag, input=data))
    if ctx.registry:
        remote = f"{ctx.registry}/pdbench/rootfs-{engine.name}:latest"
        engine.docker("tag", tag, remote)
        out["`docker push` of it (local registry)"] = timed(lambda: engine.docker("push", remote))
        engine.docker("rmi", remote)
        engine.docker("rmi", tag)
        out["`docker pull` of it"] = timed(lambda: engine.docker("pull", remote))
        engine.docker("tag", remote, tag)
        engine.docker("rmi", remote)
    saved = ctx.workdir / f"saved-{engine.name}.tar"
    out["`docker save` of it"] = timed(lambda: engine.docker("save", "-o", str(saved), tag))
    engine.docker("rmi", tag)
    out["`docker load` of it"] = timed(lambda: engine.docker("load", "-i", str(saved)))
    engine.docker("rmi", tag, check=False)
    saved.unlink(missing_ok=True)
    return out


# --- many containers -----------------------------------------------------------------------

def idle_containers(ctx: Context, engine: Engine) -> dict[str, float]:
    count = ctx.size(200, 10)
    names = [f"pdbench-idle{i}" for i in range(count)]
    out: dict[str, float] = {}
    before = pss_kib(engine.pids)
    try:
        out[f"{count} idle containers: start all"] = timed(lambda: [
            engine.docker("run", "-d", "--network", "none", "--name", n, IMAGE, "sleep", "3600")
            for n in names])
        after = pss_kib(engine.pids)
        if engine.pids:
            out["engine memory per running container (PSS, MB)"] = (after - before) / count / 1024
        out["`docker ps` of them"] = timed(lambda: engine.docker("ps"))
        out["`docker inspect` of all of them"] = timed(lambda: engine.docker("inspect", *names))
        out["`docker stats --no-stream` of them"] = timed(
            lambda: engine.docker("stats", "--no-stream", *names))
    finally:
        out["`docker rm -f` all of them"] = timed(lambda: _rm(engine, names))
    return out


def memory_at_rest(ctx: Context, engine: Engine) -> dict[str, float]:
    if not engine.pids:
        return {}
    return {"engine memory at rest (RSS of its processes, MB)": rss_kib(engine.pids) / 1024}


def scale(ctx: Context, engine: Engine) -> dict[str, float]:
    running = ctx.size(500, 10)
    endpoints = ctx.size(200, 5)
    tags = ctx.size(1000, 10)
    out: dict[str, float] = {}
    names = [f"pdbench-s{i}" for i in range(running)]
    # a fresh name each run: dockerd 20.10 can keep endpoints of force-removed containers,
    # and then refuses to remove the network until it restarts
    network = f"pdbench-net-{os.getpid()}-{int(time.time())}"
    on_net = [f"pdbench-n{i}" for i in range(endpoints)]
    tagged = [f"pdbench/tag{i}:latest" for i in range(tags)]
    engine.docker("network", "rm", network, check=False)
    try:
        for n in names:
            engine.docker("run", "-d", "--network", "none", "--name", n, IMAGE, "sleep", "3600")
        out[f"`docker ps` with {running} running"] = timed(lambda: engine.docker("ps"))
        out[f"`docker inspect` of {running}"] = timed(lambda: engine.docker("inspect", *names))
        for t in tagged:
            engine.docker("tag", IMAGE, t)
        out[f"`docker images` with {tags} tags"] = timed(lambda: engine.docker("images"))
        engine.docker("network", "create", "--subnet", "10.219.0.0/16", network)
        for n in on_net:
            engine.docker("run", "-d", "--network", network, "--name", n, IMAGE, "sleep", "3600")
        out[f"`docker network inspect` with {endpoints} endpoints"] = timed(
            lambda: engine.docker("network", "inspect", network))
        out["20 concurrent `docker logs -f` of one busy container"] = _followers(ctx, engine)
        out["100 concurrent `docker exec true`"] = concurrent(
            100, lambda: engine.docker("exec", names[0], "true"))
    finally:
        _rm(engine, names + on_net)
        engine.docker("network", "rm", network, check=False)
        for start in range(0, len(tagged), 200):
            engine.docker("rmi", *tagged[start:start + 200], check=False)
    return out


def concurrent(count: int, fn: Callable[[], object]) -> float:
    """Seconds for ``count`` threads each running ``fn`` once, all started together."""
    threads = [threading.Thread(target=fn) for _ in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _followers(ctx: Context, engine: Engine) -> float:
    """Wall time from starting 20 followers until each has seen the busy container's whole
    output and ended with it (the container writes 100k lines after a short pause)."""
    name = "pdbench-busy"
    lines = ctx.size(100_000, 2_000)
    engine.docker("run", "-d", "--network", "none", "--name", name, IMAGE, "sh", "-c",
                  f"sleep 2; seq {lines}")
    try:
        start = time.perf_counter()
        procs = [subprocess.Popen(["docker", "logs", "-f", name], env=engine.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for _ in range(20)]
        counts = [p.communicate()[0].count(b"\n") for p in procs]
        elapsed = time.perf_counter() - start
        if any(c != lines for c in counts):
            ctx.notes.append(f"{engine.name}: followers saw {sorted(set(counts))} lines, "
                             f"expected {lines}")
        return elapsed
    finally:
        engine.docker("rm", "-f", name, check=False)


WORKLOADS = (
    Workload("memory", memory_at_rest),
    Workload("run", run_true, reps_full=9, reps_quick=3),
    Workload("run-d", run_detached),
    Workload("logs", logs, reps_full=3, reps_quick=1),
    Workload("build", build, reps_full=3, reps_quick=1),
    Workload("distribution", distribution),
    Workload("idle", idle_containers),
    Workload("scale", scale),
)


def make_rootfs(ctx: Context, source: Path, limit_mb: int) -> Path:
    """A tar of ``source`` (regular files and dirs, up to ~``limit_mb``)."""
    tar = ctx.workdir / "rootfs.tar"
    listing = ctx.workdir / "rootfs.list"
    total = 0
    chosen = []
    for path in sorted(source.rglob("*")):
        try:
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
        except OSError:
            continue
        if total + size > limit_mb * 1_000_000:
            continue
        total += size
        chosen.append(str(path.relative_to(source)))
    listing.write_text("\n".join(chosen) + "\n")
    subprocess.run(["tar", "-C", str(source), "-cf", str(tar), "-T", str(listing)], check=True,
                   stderr=subprocess.DEVNULL)
    return tar


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pdbench-", dir="/tmp"))


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
