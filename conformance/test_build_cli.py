"""``docker build`` with the classic builder (the harness sets DOCKER_BUILDKIT=0).

Checked against dockerd 20.10 and run against pydockerd. Every build tags a unique
repository and every test removes what its build left (tagged images with their
intermediate parents, intermediate images of failed builds, kept containers), so the
tests are safe on an engine other people use. Dockerfiles carry a per-test nonce where a
step must really run instead of coming from the build cache of an earlier test.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.imagetools import IMAGE_ID, remove_repo, tiny_layer, unique_repo
from conformance.registry import LocalRegistry, registry, remove_repository

__all__ = ["registry"]  # fixture

SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
STEP_ID = re.compile(r"^ ---> ([0-9a-f]{12})$", re.M)
RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12})$", re.M)


class Builds:
    """Runs builds in a scratch directory and cleans up after them."""

    def __init__(self, cli: DockerCLI, api: docker.APIClient, workdir: Path, base_id: str) -> None:
        self.cli = cli
        self.api = api
        self.workdir = workdir
        self.base_id = base_id
        self.repo = unique_repo("conf-build")
        self.nonce = uuid.uuid4().hex[:12]
        self.step_ids: set[str] = set()
        self.containers: set[str] = set()

    def context(self, dockerfile: str, files: dict[str, str] | None = None, name: str = "ctx") -> Path:
        ctx = self.workdir / name
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(dockerfile.replace("@NONCE@", self.nonce))
        for rel, content in (files or {}).items():
            path = ctx / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return ctx

    def build(self, ctx: Path, *args: str, tag: str = "latest", stdin: str | None = None,
              expect_ok: bool = True) -> tuple[int, str, str]:
        argv = ["build", *args]
        if tag:
            argv += ["-t", f"{self.repo}:{tag}"]
        argv.append(str(ctx) if stdin is None or "-f" in args else "-")
        proc = self.cli(*argv, input=stdin, timeout=300)
        out, err = str(proc.stdout), str(proc.stderr)
        self.step_ids |= set(STEP_ID.findall(out)) - {self.base_id}
        self.containers |= set(RUNNING.findall(out))
        if expect_ok:
            assert proc.returncode == 0, f"build failed:\nstdout: {out}\nstderr: {err}"
        return proc.returncode, out, err

    def ref(self, tag: str = "latest") -> str:
        return f"{self.repo}:{tag}"

    def inspect(self, ref: str) -> dict:  # type: ignore[type-arg]
        data = json.loads(self.cli.ok("image", "inspect", ref))
        return data[0]  # type: ignore[no-any-return]

    def history(self, ref: str) -> list[str]:
        out = self.cli.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref)
        return out.splitlines()

    def cleanup(self) -> None:
        for container in self.containers:
            try:
                self.api.remove_container(container, force=True)
            except (docker.errors.APIError, OSError):
                pass
        remove_repo(self.api, self.repo)
        for image in sorted(self.step_ids):
            try:
                self.api.remove_image(image, force=True)
            except (docker.errors.APIError, OSError):
                pass


@pytest.fixture
def builds(docker_cli: DockerCLI, api_client: docker.APIClient, busybox_image: str,
           tmp_path: Path) -> Iterator[Builds]:
    base_id = json.loads(docker_cli.ok("image", "inspect", busybox_image))[0]["Id"][7:19]
    b = Builds(docker_cli, api_client, tmp_path, base_id)
    yield b
    b.cleanup()


def test_build_output_image_and_history(builds: Builds) -> None:
    ctx = builds.context(
        "FROM busybox:latest\nLABEL nonce=@NONCE@\nENV GREETING=hello\nRUN echo \"$GREETING from run\"\n"
        "COPY data.txt /srv/\nWORKDIR /srv\nCMD [\"cat\", \"data.txt\"]\n", {"data.txt": "payload\n"})
    _, out, _ = builds.build(ctx)
    lines = out.splitlines()
    assert "Step 1/7 : FROM busybox:latest" in lines and "Step 7/7 : CMD [\"cat\", \"data.txt\"]" in lines
    assert "hello from run" in lines
    assert len(RUNNING.findall(out)) == 5  # every step but FROM and COPY runs a container
    for container in RUNNING.findall(out):
        assert f"Removing intermediate container {container}" in lines
    built = [line for line in lines if line.startswith("Successfully built ")]
    assert len(built) == 1 and SHORT_ID.match(built[0].split()[-1])
    assert lines[-1] == f"Successfully tagged {builds.ref()}"
    image = builds.inspect(builds.ref())
    assert image["Id"][7:19] == built[0].split()[-1]
    config = image["Config"]
    assert config["Cmd"] == ["cat", "data.txt"] and config["WorkingDir"] == "/srv"
    assert config["Labels"] == {"nonce": builds.nonce}
    assert "GREETING=hello" in config["Env"] and any(e.startswith("PATH=") for e in config["Env"])
    history = builds.history(builds.ref())
    assert history[0] == '/bin/sh -c #(nop)  CMD ["cat" "data.txt"]'
    assert history[1] == "/bin/sh -c #(nop) WORKDIR /srv"
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /srv/ ", history[2])
    assert history[3] == '/bin/sh -c echo "$GREETING from run"'
    assert history[4] == "/bin/sh -c #(nop)  ENV GREETING=hello"
    assert history[5] == f"/bin/sh -c #(nop)  LABEL nonce={builds.nonce}"
    run = builds.cli("run", "--rm", builds.ref(), timeout=60)
    assert run.returncode == 0 and str(run.stdout) == "payload\n"


def test_build_cache_and_no_cache(builds: Builds) -> None:
    ctx = builds.context("FROM busybox:latest\nRUN echo @NONCE@ > /n\nCOPY f /f\n", {"f": "x"})
    _, first, _ = builds.build(ctx)
    assert "Using cache" not in first
    _, second, _ = builds.build(ctx, tag="again")
    assert second.count(" ---> Using cache") == 2
    assert builds.inspect(builds.ref())["Id"] == builds.inspect(builds.ref("again"))["Id"]
    (ctx / "f").write_text("changed")
    _, third, _ = builds.build(ctx, tag="changed")
    assert third.count(" ---> Using cache") == 1  # the COPY's content checksum changed
    _, fourth, _ = builds.build(ctx, "--no-cache", tag="nocache")
    assert "Using cache" not in fourth
    assert builds.inspect(builds.ref("nocache"))["Id"] != builds.inspect(builds.ref("changed"))["Id"]


def test_build_quiet_and_iidfile(builds: Builds, tmp_path: Path) -> None:
    ctx = builds.context("FROM busybox:latest\nLABEL nonce=@NONCE@\n")
    _, out, _ = builds.build(ctx, "-q")
    image_id = builds.inspect(builds.ref())["Id"]
    assert out == image_id + "\n"
    iidfile = tmp_path / "iid"
    _, out, _ = builds.build(ctx, "--iidfile", str(iidfile), tag="iid")
    assert iidfile.read_text() == image_id  # from the aux message: no newline
    assert "Using cache" in out


def test_build_args_and_labels(builds: Builds) -> None:
    ctx = builds.context("FROM busybox:latest\nARG WHO=nobody\nARG UNSET\nRUN echo \"hi $WHO @NONCE@\"\n"
                         "LABEL who=$WHO\n")
    _, out, _ = builds.build(ctx, "--build-arg", "WHO=cli", "--build-arg", "EXTRA=1", "--label", "from=flag")
    assert f"hi cli {builds.nonce}" in out.splitlines()
    assert "[Warning] One or more build-args [EXTRA] were not consumed" in out
    image = builds.inspect(builds.ref())
    assert image["Config"]["Labels"] == {"who": "cli", "from": "flag"}
    assert not any(e.startswith("WHO=") for e in image["Config"]["Env"])  # ARGs are not persisted
    history = builds.history(builds.ref())
    assert history[0] == "/bin/sh -c #(nop)  LABEL from=flag"
    assert history[2] == f'|1 WHO=cli /bin/sh -c echo "hi $WHO {builds.nonce}"'


def test_build_multi_stage_and_target(builds: Builds) -> None:
    ctx = builds.context("FROM busybox:latest AS builder\nRUN echo built-@NONCE@ > /artifact\n"
                         "FROM busybox:latest AS final\nCOPY --from=builder /artifact /artifact\n"
                         "CMD [\"cat\", \"/artifact\"]\n"
                         "FROM final AS extra\nLABEL extra=1\n")
    _, out, _ = builds.build(ctx, "--target", "final")
    assert "Step 5/5 : CMD" in out and "extra" not in out  # later stages are not counted or built
    image = builds.inspect(builds.ref())
    assert "extra" not in (image["Config"].get("Labels") or {})
    run = builds.cli("run", "--rm", builds.ref(), timeout=60)
    assert str(run.stdout) == f"built-{builds.nonce}\n"


def test_build_stdin_dockerfile_and_dockerignore(builds: Builds) -> None:
    ctx = builds.context("unused", {"keep.txt": "keep", "secret.txt": "secret", ".dockerignore": "secret.txt\n"})
    dockerfile = "FROM busybox:latest\nCOPY . /ctx/\nRUN ls /ctx > /listing # @NONCE@\nCMD [\"cat\", \"/listing\"]\n"
    _, out, _ = builds.build(ctx, "-f", "-", stdin=dockerfile.replace("@NONCE@", builds.nonce))
    run = builds.cli("run", "--rm", builds.ref(), timeout=60)
    listing = str(run.stdout).split()
    assert "keep.txt" in listing and "secret.txt" not in listing and "Dockerfile" in listing


def test_build_context_from_stdin(builds: Builds) -> None:
    _, out, _ = builds.build(builds.workdir, stdin=f"FROM busybox:latest\nRUN echo stdin-{builds.nonce}\n")
    assert f"stdin-{builds.nonce}" in out.splitlines()


def test_build_network_none(builds: Builds) -> None:
    ctx = builds.context("FROM busybox:latest\nRUN ls /sys/class/net # @NONCE@\n")
    _, out, _ = builds.build(ctx, "--network", "none")
    index = out.splitlines().index(next(line for line in out.splitlines() if line.startswith(" ---> Running in")))
    assert out.splitlines()[index + 1] == "lo"


def test_build_rm_false_keeps_containers(builds: Builds, api_client: docker.APIClient) -> None:
    ctx = builds.context("FROM busybox:latest\nRUN echo @NONCE@\n")
    _, out, _ = builds.build(ctx, "--rm=false")
    (container,) = RUNNING.findall(out)
    assert "Removing intermediate container" not in out
    info = api_client.inspect_container(container)
    assert info["State"]["Status"] == "exited" and info["Config"]["Cmd"][-1] == f"echo {builds.nonce}"


def test_build_failures(builds: Builds) -> None:
    ctx = builds.context("FROM busybox:latest\nFOO bar\n", name="parse")
    code, _, err = builds.build(ctx, expect_ok=False)
    assert code != 0 and "Error response from daemon: dockerfile parse error line 2: unknown instruction: FOO" in err

    ctx = builds.context("FROM busybox:latest\nRUN echo @NONCE@ && exit 3\n", name="run")
    code, out, err = builds.build(ctx, "--force-rm", expect_ok=False)
    assert code == 3
    assert f"The command '/bin/sh -c echo {builds.nonce} && exit 3' returned a non-zero code: 3" in err
    (container,) = RUNNING.findall(out)
    assert f"Removing intermediate container {container}" in out  # --force-rm removes it even on failure

    ctx = builds.context("FROM busybox:latest\nCOPY missing.txt /\n", name="copy")
    code, _, err = builds.build(ctx, expect_ok=False)
    assert code != 0
    assert ("COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: "
            "file does not exist") in err

    code, _, err = builds.build(ctx, "-f", "nope", expect_ok=False)
    assert code != 0 and "nope" in err


def test_build_from_scratch(builds: Builds) -> None:
    ctx = builds.context("FROM scratch\nCOPY hello /hello\nLABEL nonce=@NONCE@\n", {"hello": "hi"})
    _, out, _ = builds.build(ctx)
    assert "Step 1/3 : FROM scratch\n ---> \n" in out.replace("\r", "")
    image = builds.inspect(builds.ref())
    assert len(image["RootFS"]["Layers"]) == 1 and image["Config"]["Labels"] == {"nonce": builds.nonce}


@pytest.mark.reference
def test_history_and_config_match_the_reference(builds: Builds, reference_cli: DockerCLI, busybox_tar: Path,
                                                reference_host: str) -> None:
    """The same Dockerfile and context on both engines give the same history and config."""
    base = f"{builds.repo}-base:1"
    dockerfile = ("ARG BASE\nFROM $BASE\nLABEL nonce=@NONCE@ other=\"two words\"\nENV A=1 B=\"x y\"\n"
                  "ARG V=1\nRUN echo $V > /v\nCOPY dir /d/\nWORKDIR rel\nEXPOSE 80 90/udp\n"
                  "VOLUME /data\nUSER nobody\nENTRYPOINT [\"/bin/echo\"]\nCMD hello\n")
    ctx = builds.context(dockerfile, {"dir/a": "a", "dir/sub/b": "b"})
    results = []
    reference_api = docker.APIClient(base_url=reference_host, version="auto")
    try:
        for cli in (builds.cli, reference_cli):
            cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), base, check=True, timeout=300)
            proc = cli("build", "--build-arg", f"BASE={base}", "-t", builds.ref("cmp"), str(ctx), timeout=300)
            assert proc.returncode == 0, proc.stderr
            history = cli.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", builds.ref("cmp"))
            image = json.loads(cli.ok("image", "inspect", builds.ref("cmp")))[0]
            # API 1.41 renders every Config field, later versions omit the empty ones
            config = {k: v for k, v in image["Config"].items() if k != "Image" and v not in (None, False, "", [], {})}
            results.append((history.splitlines()[:-1], config, len(image["RootFS"]["Layers"])))
    finally:
        for api in (reference_api, builds.api):
            remove_repo(api, builds.repo)  # the builds first: they are children of the base
            remove_repo(api, f"{builds.repo}-base")
        reference_api.close()
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]
    assert results[0][2] == results[1][2]


def test_disconnect_cancels_the_build(builds: Builds, docker_host: str, api_client: docker.APIClient) -> None:
    """A client that goes away cancels the build: the running step's container is removed
    (dockerd does this at once, not when the step ends)."""
    import io
    import socket
    import tarfile
    import time

    if not docker_host.startswith("unix://"):
        pytest.skip("needs a unix socket engine")
    dockerfile = f"FROM busybox:latest\nRUN echo started-{builds.nonce}; sleep 60\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    body = buf.getvalue()
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(docker_host[len("unix://"):])
    sock.sendall(b"POST /v1.41/build?nocache=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    received = b""
    while f'"stream":"started-{builds.nonce}'.encode() not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    match = re.search(rb"Running in ([0-9a-f]{12})", received)
    assert match is not None
    container = match.group(1).decode()
    builds.containers.add(container)
    sock.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            api_client.inspect_container(container)
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    pytest.fail(f"container {container} of the cancelled build still exists")


def test_builder_prune_on_pydockerd(docker_cli: DockerCLI, engine_kind: str) -> None:
    """Without BuildKit there is no build cache: ``docker builder prune`` reclaims nothing.
    (Not run on other engines: it would prune a shared engine's whole build cache; dockerd
    20.10 without BuildKit cache entries prints the same.)"""
    if engine_kind != "pydockerd":
        pytest.skip("prunes the engine's whole build cache")
    out = docker_cli.ok("builder", "prune", "-f")
    assert out.strip() == "Total reclaimed space: 0B"


def test_missing_base_image_is_pulled(builds: Builds, registry: LocalRegistry) -> None:
    """A base image that is not present is pulled from its registry during the build (here a
    private registry on 127.0.0.1, insecure by default on both engines); the pull's progress
    is part of the build output."""
    name = f"{registry.address}/{unique_repo('conf-buildpull')}"
    ref = f"{name}:base"
    try:
        proc = builds.cli("import", "-c", 'CMD ["cat", "/hello"]', "-", ref, input=tiny_layer(b"from registry\n"),
                          check=True)
        out = proc.stdout.decode() if isinstance(proc.stdout, bytes) else proc.stdout
        assert IMAGE_ID.match(out.strip()), out
        builds.cli.ok("push", ref)
        builds.cli.ok("rmi", ref)  # its only layer goes too: the build must download it
        ctx = builds.context(f"FROM {ref}\nLABEL nonce=@NONCE@\n")
        _, out, _ = builds.build(ctx)
        assert f"base: Pulling from {name.split('/', 1)[1]}" in out.splitlines()
        assert f"Status: Downloaded newer image for {ref}" in out
        pulled = builds.inspect(ref)
        built = builds.inspect(builds.ref())
        assert built["RootFS"]["Layers"] == pulled["RootFS"]["Layers"]
        assert built["Config"]["Cmd"] == ["cat", "/hello"] and built["Config"]["Labels"] == {"nonce": builds.nonce}
    finally:
        remove_repo(builds.api, builds.repo)
        remove_repository(builds.api, name)
