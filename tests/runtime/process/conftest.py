"""Fixtures for real container starts: a busybox rootfs, one supervisor per session."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime.process.client import SupervisorClient, spawn_supervisor
from runtime.process.contract import ExitReport, StartedProcess
from runtime.spec.defaults import (
    DEFAULT_CAPABILITIES, DEFAULT_DEVICES, DEFAULT_READONLY_PATHS, default_masked_paths,
    default_mounts,
)
from runtime.spec.model import ContainerSpec, ProcessSpec, RootfsSpec, UserSpec
from runtime.storage.overlay import stack_mount

BUSYBOX = "/bin/busybox"
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=test")

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(BUSYBOX),
                                reason="needs root and /bin/busybox")


def make_busybox_rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    names = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                           check=True).stdout.split()
    for name in names:
        if name != "busybox":
            (root / "bin" / name).symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "home"):
        (root / d).mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    make_busybox_rootfs(root)
    return root


@pytest.fixture(scope="session")
def supervisor_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = tmp_path_factory.mktemp("exec") / "root"
    proc, ready = spawn_supervisor(root)
    try:
        assert os.read(ready, 1) == b"1", (root / "supervisor.log").read_text()
    finally:
        os.close(ready)
    yield root
    proc.terminate()
    proc.wait(10)


def container_spec(rootfs: Path, tmp: Path, *args: str, tty: bool = False, user: str = "",
                   open_stdin: bool = False, cgroup_dirs: tuple[str, ...] = (),
                   cwd: str = "/") -> ContainerSpec:
    """A new container (fresh id and writable layer under ``tmp``) running ``args``."""
    cid = uuid.uuid4().hex
    layer = tmp / cid
    (layer / "upper").mkdir(parents=True)
    (layer / "work").mkdir()
    return ContainerSpec(
        container_id=cid,
        process=ProcessSpec(args=args, env=ENV, cwd=cwd, user=UserSpec(user), tty=tty,
                            open_stdin=open_stdin, capabilities=DEFAULT_CAPABILITIES),
        rootfs=RootfsSpec(stack_mount((str(rootfs),), str(layer / "upper"), str(layer / "work"))),
        hostname=cid[:12], domainname="",
        namespaces={k: None for k in ("mnt", "uts", "ipc", "net", "pid")},
        mounts=default_mounts(), masked_paths=default_masked_paths(),
        readonly_paths=DEFAULT_READONLY_PATHS, devices=DEFAULT_DEVICES, sysctls={},
        cgroup_dirs=cgroup_dirs)


@dataclass
class Harness:
    client: SupervisorClient
    rootfs: Path
    tmp: Path
    exits: dict[int, asyncio.Future[ExitReport]] = field(default_factory=dict)
    started: list[int] = field(default_factory=list)

    def on_exit(self, report: ExitReport) -> None:
        self._future(report.pid).set_result(report)

    def _future(self, pid: int) -> asyncio.Future[ExitReport]:
        if pid not in self.exits:
            self.exits[pid] = asyncio.get_running_loop().create_future()
        return self.exits[pid]

    def spec(self, *args: str, tty: bool = False, user: str = "", open_stdin: bool = False,
             cgroup_dirs: tuple[str, ...] = (), cwd: str = "/") -> ContainerSpec:
        return container_spec(self.rootfs, self.tmp, *args, tty=tty, user=user,
                              open_stdin=open_stdin, cgroup_dirs=cgroup_dirs, cwd=cwd)

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        proc = await self.client.start(spec)
        self.started.append(proc.pid)
        self._future(proc.pid)
        return proc

    async def wait(self, proc: StartedProcess, timeout: float = 10.0) -> int:
        report = await asyncio.wait_for(self._future(proc.pid), timeout)
        return report.exit_code

    async def run(self, spec: ContainerSpec) -> tuple[int, str, str]:
        """Start, read stdout/stderr to EOF, wait; (exit code, stdout, stderr)."""
        proc = await self.start(spec)
        loop = asyncio.get_running_loop()
        out, err = await asyncio.gather(loop.run_in_executor(None, read_all, proc.stdout),
                                        loop.run_in_executor(None, read_all, proc.stderr))
        return await self.wait(proc), out, err


def read_all(fd: int | None) -> str:
    if fd is None:
        return ""
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO on a pty master once the slave side is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


@pytest.fixture
async def harness(supervisor_root: Path, busybox_rootfs: Path,
                  tmp_path: Path) -> AsyncIterator[Harness]:
    client = await SupervisorClient.connect(supervisor_root)
    h = Harness(client, busybox_rootfs, tmp_path)
    client.on_exit(h.on_exit)
    yield h
    for pid in h.started:
        fut = h.exits.get(pid)
        if fut is not None and not fut.done():
            await client.signal(pid, 9)
            await asyncio.wait_for(fut, 10)
    await client.close()
