"""Debian's ``docker-compose`` (1.29, docker-py underneath, classic builder) runs a
two-service project end to end: build, published port, named volume, service-name DNS,
ps, logs, exec, --scale, restart and ``down -v``.

Traffic goes only to 127.0.0.1 (the published port) and between the project's containers.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cli import DockerCLI

pytestmark = pytest.mark.timeout(600)

DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo hello-from-web > /www/index.html
CMD ["sh", "-c", "echo web-started; exec httpd -f -p 8000 -h /www"]
"""

COMPOSE_FILE = """\
version: "3.7"
services:
  web:
    build: ./web
    ports:
      - "127.0.0.1::8000"
    volumes:
      - data:/data
  client:
    image: busybox:latest
    command: ["sleep", "3600"]
    depends_on: [web]
volumes:
  data: {}
"""


class Compose:
    """``docker-compose -p <project>`` in the project directory, against the engine under test."""

    def __init__(self, binary: str, cli: DockerCLI, project: str, workdir: Path) -> None:
        self.binary, self.cli, self.project, self.workdir = binary, cli, project, workdir

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        # COMPOSE_DOCKER_CLI_BUILD=0: compose builds through the API (the classic builder)
        env = self.cli.env({"COMPOSE_DOCKER_CLI_BUILD": "0", "COMPOSE_INTERACTIVE_NO_CLI": "1"})
        return subprocess.run([self.binary, "-p", self.project, "--no-ansi", *args], cwd=self.workdir, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 180) -> str:
        proc = self(*args, timeout=timeout)
        assert proc.returncode == 0, f"docker-compose {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout


@pytest.fixture
def compose(docker_cli: DockerCLI, busybox_image: str, tmp_path: Path) -> Iterator[Compose]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/install-deps.sh installs Debian's)")
    project = "pydtc" + secrets.token_hex(4)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    runner = Compose(binary, docker_cli, project, tmp_path)
    try:
        yield runner
    finally:
        runner("down", "-v", "--rmi", "local", "--remove-orphans")


def _project_ids(cli: DockerCLI, project: str, service: str | None = None) -> list[str]:
    label = f"com.docker.compose.project={project}"
    args = ["ps", "-aq", "--filter", f"label={label}"]
    if service:
        args += ["--filter", f"label=com.docker.compose.service={service}"]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout).split()


def _fetch_through_web(compose: Compose, index: int = 1) -> str:
    return compose.ok("exec", "-T", "--index", str(index), "client", "wget", "-qO-", "http://web:8000/")


def test_compose_project_end_to_end(compose: Compose, docker_cli: DockerCLI) -> None:
    project = compose.project
    compose.ok("up", "-d", timeout=300)

    ps = compose.ok("ps")
    for service in ("web", "client"):
        line = next(line for line in ps.splitlines() if line.startswith(f"{project}_{service}_1"))
        assert " Up " in f" {line} ", ps
    assert set(compose.ok("ps", "--services", "--filter", "status=running").split()) == {"web", "client"}

    # service-name DNS between the services (the aliases Compose gives each endpoint)
    assert _fetch_through_web(compose).strip() == "hello-from-web"
    web = json.loads(str(docker_cli("inspect", f"{project}_web_1").stdout))[0]
    aliases = web["NetworkSettings"]["Networks"][f"{project}_default"]["Aliases"]
    assert "web" in aliases

    # the published port, on 127.0.0.1 only
    host_port = compose.ok("port", "web", "8000").strip()
    assert host_port.startswith("127.0.0.1:"), host_port
    with urllib.request.urlopen(f"http://{host_port}/", timeout=10) as resp:
        assert resp.read().decode().strip() == "hello-from-web"

    assert "web-started" in compose.ok("logs", "--no-color", "web")
    assert compose.ok("exec", "-T", "web", "sh", "-c", "echo exec-ok > /data/f && cat /data/f").strip() == "exec-ok"

    compose.ok("up", "-d", "--scale", "client=2", timeout=300)
    assert len(_project_ids(docker_cli, project, "client")) == 2
    assert _fetch_through_web(compose, 2).strip() == "hello-from-web"

    compose.ok("restart", timeout=300)
    assert set(compose.ok("ps", "--services", "--filter", "status=running").split()) == {"web", "client"}
    assert _fetch_through_web(compose, 2).strip() == "hello-from-web"
    # the named volume kept its content across the restart
    assert compose.ok("exec", "-T", "web", "cat", "/data/f").strip() == "exec-ok"

    compose.ok("down", "-v", timeout=300)
    assert _project_ids(docker_cli, project) == []
    networks = str(docker_cli("network", "ls", "-q", "--filter", f"name={project}_default").stdout).split()
    assert networks == []
    volumes = str(docker_cli("volume", "ls", "-q", "--filter", f"name={project}_data").stdout).split()
    assert volumes == []
