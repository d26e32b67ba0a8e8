"""Fixtures for the black-box conformance suite.

By default a pydockerd subprocess is started once per session on a temporary unix socket.
With ``--docker-host URL`` or ``CONFORMANCE_DOCKER_HOST=URL`` the very same tests run against
that engine instead (e.g. a real dockerd on ``unix:///tmp/ref.sock``), which is how the tests
themselves are checked. Expectations that depend on the engine's release are derived from what
it advertises (``Api-Version``, ``MinAPIVersion``), not hard-coded.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from conformance.apiversion import APIVersion
from conformance.cli import CliDialect, DockerCLI, find_docker_cli
from conformance.daemon import DaemonSettings, DaemonStartError, PydockerdProcess
from conformance.images import busybox_rootfs_tar, find_busybox
from conformance.leaks import RunWitness, leftovers
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

REPO_ROOT = Path(__file__).resolve().parent.parent

PYDOCKERD = "pydockerd"
REFERENCE = "reference"

_daemon_key = pytest.StashKey["PydockerdProcess | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption(
        "--docker-host",
        default=None,
        help="run the conformance suite against this engine (unix:///... or tcp://...) instead of "
        "starting pydockerd; default: $CONFORMANCE_DOCKER_HOST",
    )


@dataclass(frozen=True, slots=True)
class Engine:
    """The engine under test."""

    host: str
    kind: str  # PYDOCKERD or REFERENCE
    daemon: PydockerdProcess | None

    @property
    def is_pydockerd(self) -> bool:
        return self.kind == PYDOCKERD


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    host = request.config.getoption("--docker-host") or os.environ.get("CONFORMANCE_DOCKER_HOST")
    if host:
        yield Engine(host=host, kind=REFERENCE, daemon=None)
        return
    daemon = PydockerdProcess(DaemonSettings.from_env(), cwd=REPO_ROOT)
    try:
        daemon.start()
    except DaemonStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    request.config.stash[_daemon_key] = daemon
    witness = RunWitness(daemon.socket_path)
    witness.start()
    try:
        yield Engine(host=daemon.host, kind=PYDOCKERD, daemon=daemon)
    finally:
        request.config.stash[_daemon_key] = None
        code = daemon.stop()
        if code not in (0, None):
            print(f"\npydockerd exited with {code} on SIGTERM\n{daemon.log_tail()}")
            if not daemon.settings.keep_dirs:
                daemon.remove_dirs()
            pytest.fail(f"pydockerd did not shut down cleanly (exit {code})", pytrace=False)
        leftover = daemon.socket_path.exists()
        # the leak check: nothing of the run may outlive a clean stop (conformance/leaks.py)
        leaked = leftovers(witness, daemon.workdir, daemon.data_root, daemon.exec_root, daemon.settings.bridge)
        daemon.remove_dirs()
        if leftover:
            pytest.fail("pydockerd left its socket file behind after SIGTERM", pytrace=False)
        if leaked:
            pytest.fail(f"the run left {len(leaked)} thing(s) behind after a clean stop:\n"
                        + "\n".join(leaked[:50]), pytrace=False)


@pytest.fixture(scope="session")
def engine_kind(engine: Engine) -> str:
    """``"pydockerd"`` or ``"reference"``; for the rare assertion only pydockerd must satisfy."""
    return engine.kind


@pytest.fixture
def docker_host(engine: Engine) -> Iterator[str]:
    """The engine's URL; afterwards, a crash of the daemon fails the test that caused it."""
    yield engine.host
    if engine.daemon is not None and not engine.daemon.alive():
        pytest.fail(f"pydockerd died during this test\n{engine.daemon.log_tail()}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the daemon's log written during a failed test to its report."""
    report = yield
    daemon = item.config.stash.get(_daemon_key, None)
    if daemon is None:
        return report
    if call.when == "setup":
        item.stash[_log_offset_key] = daemon.log_size()
    elif report.failed:
        since = item.stash.get(_log_offset_key, 0)
        if daemon.log_text(since).strip():
            report.sections.append(("pydockerd log during this test", daemon.log_tail(80, since)))
        else:
            report.sections.append(("pydockerd log during this test", "(nothing logged)"))
    return report


_log_offset_key = pytest.StashKey[int]()


@pytest.fixture
def raw(docker_host: str) -> RawHTTP:
    """Plain HTTP to the engine: exact status codes, headers and bodies."""
    return RawHTTP(docker_host)


@pytest.fixture(scope="session")
def docker_binary() -> str:
    binary = find_docker_cli()
    if binary is None:
        pytest.skip("no docker CLI found (install it or set CONFORMANCE_DOCKER_CLI)")
    return binary


@pytest.fixture(scope="session")
def cli_max_api(docker_binary: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The highest API version the docker CLI speaks (1.50 for CLI 28.2.2, 1.41 for Debian's 20.10)."""
    cli = DockerCLI(docker_binary, "unix:///nonexistent/docker.sock", tmp_path_factory.mktemp("cli-probe"))
    out = cli("version", "--format", "{{.Client.DefaultAPIVersion}}", timeout=30).stdout
    assert isinstance(out, str)
    return str(APIVersion.parse(out.strip().splitlines()[0]))


@pytest.fixture(scope="session")
def cli_dialect(docker_binary: str, tmp_path_factory: pytest.TempPathFactory) -> CliDialect:
    """How the docker CLI under test words what the suite checks (20.10 vs 23+), from its version."""
    cli = DockerCLI(docker_binary, "unix:///nonexistent/docker.sock", tmp_path_factory.mktemp("cli-probe"))
    out = cli("version", "--format", "{{.Client.Version}}", timeout=30).stdout
    assert isinstance(out, str)
    return CliDialect.parse(out.strip().splitlines()[0])


@pytest.fixture
def docker_cli(docker_binary: str, docker_host: str, tmp_path: Path) -> DockerCLI:
    """The real docker CLI bound to the engine, with a private DOCKER_CONFIG."""
    return DockerCLI(docker_binary, docker_host, tmp_path / "docker-config")


@pytest.fixture(scope="session")
def reference_host(engine: Engine) -> str:
    """A second, real engine for interoperability tests (mark them ``@pytest.mark.reference``).

    Given by CONFORMANCE_REFERENCE_HOST (e.g. unix:///tmp/ref.sock, see scripts/ref-dockerd.sh);
    tests that need it skip without it.
    """
    host = os.environ.get("CONFORMANCE_REFERENCE_HOST")
    if not host:
        pytest.skip("no reference engine: set CONFORMANCE_REFERENCE_HOST (scripts/ref-dockerd.sh starts one)")
    if host == engine.host:
        pytest.skip("the reference engine is the engine under test")
    return host


@pytest.fixture
def reference_cli(docker_binary: str, reference_host: str, tmp_path: Path) -> DockerCLI:
    """The docker CLI bound to the reference engine."""
    return DockerCLI(docker_binary, reference_host, tmp_path / "docker-config-reference")


@pytest.fixture
def client(docker_host: str) -> Iterator[docker.DockerClient]:
    """docker-py's high-level client, negotiating the version as users' code does."""
    c = docker.DockerClient(base_url=docker_host, version="auto", timeout=60)
    yield c
    c.close()


@pytest.fixture
def api_client(docker_host: str) -> Iterator[docker.APIClient]:
    """docker-py's low-level client."""
    c = docker.APIClient(base_url=docker_host, version="auto", timeout=60)
    yield c
    c.close()


@pytest.fixture
def tracker(api_client: docker.APIClient) -> Iterator[ResourceTracker]:
    """Register what a test creates; it is removed afterwards (best effort)."""
    t = ResourceTracker(api_client)
    yield t
    t.cleanup()


@dataclass(frozen=True, slots=True)
class Advertised:
    """What the engine says about itself on /_ping and /version."""

    api_version: str  # the Api-Version header == /version ApiVersion (the max)
    min_api_version: str

    @property
    def max(self) -> APIVersion:
        return APIVersion.parse(self.api_version)

    @property
    def min(self) -> APIVersion:
        return APIVersion.parse(self.min_api_version)


@pytest.fixture(scope="session")
def advertised(engine: Engine) -> Advertised:
    raw = RawHTTP(engine.host)
    version = raw.get("/version").json()
    return Advertised(api_version=version["ApiVersion"], min_api_version=version["MinAPIVersion"])


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic busybox rootfs tar (see conformance/images.py)."""
    busybox = find_busybox()
    if not busybox.exists():
        pytest.skip(f"{busybox} missing: install Debian's busybox-static")
    path = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    path.write_bytes(busybox_rootfs_tar(busybox))
    return path


BUSYBOX_REF = "busybox:latest"


def _not_implemented(proc: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]) -> bool:
    err = str(proc.stderr).lower()
    return any(s in err for s in ("page not found", "not implemented", "501", "404 not found"))


@pytest.fixture(scope="session")
def busybox_image(
    engine: Engine, docker_binary: str, busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``busybox:latest`` imported into the engine with ``CMD ["sh"]``; yields the reference.

    Skips (with the engine's answer) while image import is not implemented.
    """
    cli = DockerCLI(docker_binary, engine.host, tmp_path_factory.mktemp("busybox-cli"))
    existed = cli("image", "inspect", BUSYBOX_REF).returncode == 0
    proc = cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), BUSYBOX_REF, timeout=300)
    assert isinstance(proc.stderr, str)
    if proc.returncode != 0:
        if _not_implemented(proc):
            pytest.skip(f"engine cannot import images yet: {proc.stderr.strip()}")
        pytest.fail(f"docker import of the busybox rootfs failed:\n{proc.stderr}", pytrace=False)
    yield BUSYBOX_REF
    if not existed and not engine.is_pydockerd:
        cli("rmi", BUSYBOX_REF)
