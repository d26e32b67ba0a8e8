"""Runs the real, unmodified ``docker`` CLI against the engine under test."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Variables that would point the CLI elsewhere or change how it negotiates.
_SCRUBBED = (
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
    "DOCKER_DEFAULT_PLATFORM",
    "DOCKER_CONTENT_TRUST",
)


def find_docker_cli() -> str | None:
    """The docker CLI to drive: $CONFORMANCE_DOCKER_CLI, else ``docker`` on PATH."""
    return os.environ.get("CONFORMANCE_DOCKER_CLI") or shutil.which("docker")


class DockerCLI:
    """Callable runner: ``docker_cli("version", "--format", "{{json .}}")``.

    Every call gets DOCKER_HOST set to the engine under test, the classic builder
    (DOCKER_BUILDKIT=0: BuildKit needs buildx and /grpc) and a private DOCKER_CONFIG so the
    developer's own config and contexts never leak in.
    """

    def __init__(self, binary: str, host: str, config_dir: Path, default_timeout: float = 120.0) -> None:
        self.binary = binary
        self.host = host
        self.config_dir = config_dir
        self.default_timeout = default_timeout
        config_dir.mkdir(parents=True, exist_ok=True)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            DOCKER_HOST=self.host,
            DOCKER_BUILDKIT="0",
            DOCKER_CONFIG=str(self.config_dir),
            DOCKER_CLI_HINTS="false",
        )
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
        """Run ``docker *args``; text mode unless ``input`` is bytes.

        With ``check=True`` a non-zero exit fails the test with the CLI's stderr.
        """
        text = not isinstance(input, bytes)
        proc = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout if timeout is not None else self.default_timeout,
            env=self.env(env),
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
            )
        return proc

    def ok(self, *args: str, input: str | None = None, timeout: float | None = None) -> str:
        """Run a command that must succeed and return its stdout."""
        proc = self(*args, input=input, timeout=timeout, check=True)
        assert isinstance(proc.stdout, str)
        return proc.stdout


@dataclass(frozen=True, slots=True)
class CliDialect:
    """What the suite sees differently from the two CLI generations it runs with: Debian's
    docker.io 20.10 and a current one (28.x). Tests assert the stable part of a message and
    take the CLI-specific rest from here, so they hold with either binary.

    ``legacy`` is 20.10's behaviour (the changes arrived with CLI 23.0): its API client turns a
    404 into its own ``Error: No such <object>: <name as typed>`` instead of showing the
    daemon's message, ``--format json`` does not exist, and ``docker port`` prints IPv6
    addresses bare (``:::32768``, not ``[::]:32768``).
    """

    version: tuple[int, int]

    @classmethod
    def parse(cls, text: str) -> CliDialect:
        """``"20.10.24+dfsg1"`` or ``"28.2.2"`` -> the dialect of that release."""
        major, minor = (text.strip().split(".") + ["0"])[:2]
        return cls((int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)))

    @property
    def legacy(self) -> bool:
        return self.version < (23, 0)

    @property
    def has_json_format(self) -> bool:
        return not self.legacy

    def not_found(self, daemon_message: str, kind: str, given: str) -> str:
        """The CLI's line for a 404: the daemon's message, or 20.10's own text."""
        if self.legacy:
            return f"Error: No such {kind}: {given}"
        return f"Error response from daemon: {daemon_message}"

    def host_port(self, host_ip: str, port: str) -> str:
        """``docker port``'s rendering of a binding."""
        if ":" in host_ip and not self.legacy:
            return f"[{host_ip}]:{port}"
        return f"{host_ip}:{port}"
