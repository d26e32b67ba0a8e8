"""Runs the real, unmodified ``docker`` CLI against the engine under test."""

from __future__ import annotations

import os
import shutil
import subprocess
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
