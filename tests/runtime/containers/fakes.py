"""Fakes for the container service's neighbours: a host-process runtime (no namespaces),
an image backend and a writable-layer store. Shared by service and router tests."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.containers.model import RwLayer
from runtime.errors import ImageNotFound
from runtime.process.contract import ExitReport, StartedProcess, start_failed
from runtime.spec.model import ContainerSpec, ExecSpec, ProcessSpec


@dataclass
class FakeImage:
    id: str
    repo_tags: tuple[str, ...]
    config: dict[str, Any]


class FakeImages:
    def __init__(self) -> None:
        busybox = FakeImage("sha256:" + "b" * 64, ("busybox:latest",),
                            {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Cmd": ["sh"]})
        self.images: dict[str, FakeImage] = {"busybox:latest": busybox, busybox.id: busybox}
        self.committed: list[tuple[str, str, Mapping[str, Any], str | None, str, str]] = []
        self.checker: Callable[[str], list[str]] | None = None

    def get(self, ref: str) -> FakeImage:
        key = ref if ":" in ref else ref + ":latest"
        image = self.images.get(key) or self.images.get(ref)
        if image is None:
            raise ImageNotFound(key)
        return image

    def image_config(self, image: FakeImage) -> Mapping[str, Any]:
        return image.config

    def repo_tags(self, image: FakeImage) -> tuple[str, ...]:
        return image.repo_tags

    async def commit(self, parent_id: str, diff_dir: str, config: Mapping[str, Any],
                     repo_tag: str | None, comment: str, author: str,
                     container_id: str = "") -> str:
        self.committed.append((parent_id, diff_dir, config, repo_tag, comment, author))
        if repo_tag and repo_tag.startswith("docker.io/library/"):  # the CLI sends it normalised
            repo_tag = repo_tag[len("docker.io/library/"):]
        new = FakeImage("sha256:" + f"{len(self.committed):064x}", (repo_tag,) if repo_tag else (),
                        dict(config))
        self.images[new.id] = new
        if repo_tag:
            self.images[repo_tag] = new
        return new.id

    def set_usage_checker(self, checker: Callable[[str], list[str]],
                          running: Callable[[str], list[str]]) -> None:
        self.checker = checker


class FakeLayers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.removed: list[str] = []

    def prepare(self, container_id: str, image: Any) -> RwLayer:
        base = self.root / container_id
        (base / "diff").mkdir(parents=True)
        (base / "work").mkdir()
        return RwLayer(str(base / "diff"), str(base / "work"), ("/lower",), container_id)

    def remove(self, container_id: str) -> None:
        self.removed.append(container_id)

    def size(self, container_id: str) -> int:
        return 0


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    container_id: str
    exec_id: str | None
    pidfd: int


class HostRuntime:
    """Runs the spec's argv as a plain host process (shell builtins via /bin/busybox)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[ExitReport], None]] = []
        self.procs: dict[int, _Proc] = {}
        self.signals: list[tuple[int, int]] = []
        self.specs: list[ContainerSpec] = []

    def on_exit(self, callback: Callable[[ExitReport], None]) -> None:
        self.callbacks.append(callback)

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        self.specs.append(spec)
        return self._spawn(spec.container_id, None, spec.process)

    async def exec(self, spec: ExecSpec) -> StartedProcess:
        return self._spawn(spec.container_id, spec.exec_id, spec.process)

    def _spawn(self, container_id: str, exec_id: str | None, process: ProcessSpec) -> StartedProcess:
        args = list(process.args)
        if not args[0].startswith("/"):
            args = ["/bin/busybox", *args]
        if not os.path.exists(args[0]):
            raise start_failed("exec", f'exec: "{process.args[0]}": stat {process.args[0]}: '
                                       "no such file or directory")
        env = dict(e.split("=", 1) for e in process.env if "=" in e)
        if process.tty:
            master, slave = pty.openpty()
            popen = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
            os.close(slave)
            started = StartedProcess(popen.pid, master, os.dup(master), None, True)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if process.open_stdin else (None, None)
            popen = subprocess.Popen(args, stdin=in_r if in_r is not None else subprocess.DEVNULL,
                                     stdout=out_w, stderr=err_w, env=env, start_new_session=True)
            for fd in (out_w, err_w, in_r):
                if fd is not None:
                    os.close(fd)
            started = StartedProcess(popen.pid, in_w, out_r, err_r, False)
        pidfd = os.pidfd_open(popen.pid)
        self.procs[popen.pid] = _Proc(popen, container_id, exec_id, pidfd)
        asyncio.get_running_loop().add_reader(pidfd, self._reap, popen.pid)
        return started

    def _reap(self, pid: int) -> None:
        proc = self.procs.pop(pid)
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.pidfd)
        os.close(proc.pidfd)
        status = proc.popen.wait()
        code = 128 - status if status < 0 else status
        report = ExitReport(proc.container_id, proc.exec_id, pid, code, time.time_ns())
        for callback in self.callbacks:
            callback(report)

    async def resume(self, container_id: str) -> None:
        pass

    async def signal(self, pid: int, sig: int) -> None:
        self.signals.append((pid, sig))
        if pid in self.procs:
            os.killpg(pid, sig)

    async def running(self) -> list[tuple[str, str | None, StartedProcess]]:
        return []

    async def close(self) -> None:
        for pid in list(self.procs):
            os.killpg(pid, signal.SIGKILL)
