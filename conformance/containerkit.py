"""Helpers for the container conformance tests: named containers driven by the docker CLI, and
the CLI under a real pseudo-terminal (``docker run -it``).

Containers get unique names registered with the resource tracker, so every test removes what it
started even when it fails half-way. Networking is ``--network none`` unless a test asks
otherwise: these tests are about the container lifecycle, not about networks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

from conformance.cli import DockerCLI
from conformance.tracker import ResourceTracker

#: Short timeout for CLI calls that should be quick: a hang fails the test instead of blocking it.
QUICK = 30.0


def unique(prefix: str = "conf") -> str:
    """A container/image name no other test (or developer) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Box:
    """Runs containers through the CLI; every container it names is removed afterwards."""

    def __init__(self, cli: DockerCLI, tracker: ResourceTracker, image: str) -> None:
        self.cli = cli
        self.tracker = tracker
        self.image = image

    def name(self, prefix: str = "conf") -> str:
        """A fresh container name, tracked for removal."""
        return self.tracker.container(unique(prefix))

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = QUICK,
        network: str = "none",
    ) -> subprocess.CompletedProcess[str]:
        """``docker run --network <network> *args`` (the caller gives image and command)."""
        proc = self.cli(
            "run", "--network", network, *args, input=input, timeout=timeout
        )
        assert isinstance(proc.stdout, str)
        return proc

    def run_d(self, *args: str, name: str | None = None, network: str = "none") -> str:
        """``docker run -d --name N ... busybox *args``; returns the name after checking the ID printed."""
        name = name or self.name()
        proc = self.cli(
            "run", "-d", "--name", name, "--network", network, *args, timeout=QUICK
        )
        assert proc.returncode == 0, (
            f"docker run -d failed ({proc.returncode}): {proc.stderr!r}"
        )
        assert re.fullmatch(r"[0-9a-f]{64}\n", str(proc.stdout)), proc.stdout
        return name

    def ok(self, *args: str, input: str | None = None, timeout: float = QUICK) -> str:
        return self.cli.ok(*args, input=input, timeout=timeout)

    def inspect(self, name: str) -> dict[str, Any]:
        data = json.loads(self.ok("container", "inspect", name))
        assert isinstance(data, list) and len(data) == 1, data
        result: dict[str, Any] = data[0]
        return result

    def state(self, name: str) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect(name)["State"]
        return state

    def wait_until(
        self, name: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll the container's State until ``pred`` holds; fails with the last State otherwise."""
        deadline = time.monotonic() + timeout
        state = self.state(name)
        while not pred(state):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"container {name}: condition not reached in {timeout}s; State={state}"
                )
            time.sleep(0.1)
            state = self.state(name)
        return state

    def wait_exited(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_until(name, lambda s: s["Status"] == "exited", timeout)

    def logs(
        self, name: str, *args: str, timeout: float = QUICK
    ) -> subprocess.CompletedProcess[str]:
        proc = self.cli("logs", *args, name, timeout=timeout)
        return proc  # type: ignore[return-value]


class PtyCLI:
    """The docker CLI with a pseudo-terminal as its stdin/stdout/stderr and controlling terminal.

    ``expect`` reads until a regex matches the output seen since the previous match, so a test
    waits for what the container printed instead of sleeping.
    """

    def __init__(
        self, cli: DockerCLI, *args: str, rows: int = 24, cols: int = 80
    ) -> None:
        self.master, slave = os.openpty()
        self._set_size(slave, rows, cols)
        try:
            self.proc = subprocess.Popen(
                [cli.binary, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=cli.env({"TERM": "xterm"}),
                start_new_session=True,
                # The terminal must be the controlling one, for SIGWINCH on resize.
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # noqa: PLW1509
            )
        finally:
            os.close(slave)
        self.buffer = b""
        self.transcript = b""
        self.eof = False

    @staticmethod
    def _set_size(fd: int, rows: int, cols: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read_some(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError as exc:  # EIO: every slave fd closed, the CLI is gone
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.eof = True
        self.buffer += data
        self.transcript += data

    def expect(self, pattern: bytes, timeout: float = 15.0) -> re.Match[bytes]:
        """Wait for ``pattern`` (a bytes regex) in the output; consume everything up to its end."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                return match
            if self.eof or time.monotonic() > deadline:
                why = "end of output" if self.eof else f"{timeout}s timeout"
                raise AssertionError(
                    f"{why} waiting for {pattern!r}; transcript:\n{self.transcript!r}"
                )
            self._read_some(min(0.2, max(0.0, deadline - time.monotonic())))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal as a terminal emulator does (the kernel sends SIGWINCH)."""
        self._set_size(self.master, rows, cols)
        # Also signal the CLI directly, in case the kernel's SIGWINCH raced its handler setup.
        try:
            os.kill(self.proc.pid, signal.SIGWINCH)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 15.0) -> int:
        """Drain the output until the CLI exits; return its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"docker CLI still running after {timeout}s; transcript:\n{self.transcript!r}"
                )
            self._read_some(0.1)
        while not self.eof:
            before = len(self.transcript)
            self._read_some(0.05)
            if len(self.transcript) == before:
                break
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
