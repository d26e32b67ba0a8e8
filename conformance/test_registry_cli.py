"""``docker push`` / ``pull`` / ``login`` through the stock CLI against a private registry.

The registry is Debian's ``docker-registry`` on 127.0.0.1 (``conformance/registry.py``); both
engines treat loopback registries as insecure (plain HTTP) without configuration. Every test
pushes into its own repository, so the tests are independent and safe on a shared engine.
Checked against dockerd 20.10, then run against pydockerd.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.imagetools import IMAGE_ID, tiny_layer, unique_repo
from conformance.registry import (
    AUTH_PASSWORD,
    AUTH_USER,
    LocalRegistry,
    auth_registry,
    registry,
    remove_repository,
)

__all__ = ["auth_registry", "registry"]  # fixtures

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def repo(registry: LocalRegistry, api_client: docker.APIClient) -> Iterator[str]:
    """A fresh ``127.0.0.1:<port>/conf-reg-<hex>`` repository name, cleaned up locally."""
    name = f"{registry.address}/{unique_repo('conf-reg')}"
    yield name
    remove_repository(api_client, name)


def _import_unique(cli: DockerCLI, ref: str) -> str:
    """An image with a layer no other image has (so a pull must really download it)."""
    proc = cli("import", "-c", 'CMD ["sh"]', "-", ref, input=tiny_layer(), check=True)
    out = proc.stdout.decode() if isinstance(proc.stdout, bytes) else proc.stdout
    assert IMAGE_ID.match(out.strip()), out
    return out.strip()


def _inspect(cli: DockerCLI, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli.ok("image", "inspect", ref))[0]  # type: ignore[no-any-return]


def _push_digest(out: str, tag: str) -> tuple[str, int]:
    m = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: (\d+)$", out, re.MULTILINE)
    assert m, out
    return m.group(1), int(m.group(2))


def _fails(proc: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode != 0, proc.stdout
    return str(proc.stderr)


# --- push ---------------------------------------------------------------------------------


def test_push_busybox_then_pull_gives_the_same_image(
    docker_cli: DockerCLI, busybox_image: str, registry: LocalRegistry, repo: str
) -> None:
    ref = f"{repo}:latest"
    docker_cli.ok("tag", busybox_image, ref)
    original = _inspect(docker_cli, ref)
    out = docker_cli.ok("push", ref)
    assert f"The push refers to repository [{repo}]" in out
    layer = original["RootFS"]["Layers"][0][7:19]
    # busybox's layer: pushed, or already in the registry from an earlier run of the suite
    assert re.search(rf"^{layer}: (Pushed|Layer already exists|Mounted from .+)$", out, re.MULTILINE), out
    digest, size = _push_digest(out, "latest")
    stored_digest, manifest = registry.manifest(repo.split("/", 1)[1], "latest")
    assert stored_digest == digest
    assert manifest["config"]["digest"] == original["Id"]
    assert len(manifest["layers"]) == 1 and size > 0

    docker_cli.ok("rmi", ref)
    out = docker_cli.ok("pull", ref)
    assert f"latest: Pulling from {repo.split('/', 1)[1]}" in out
    assert f"Digest: {digest}" in out
    assert f"Status: Downloaded newer image for {ref}" in out
    pulled = _inspect(docker_cli, ref)
    assert pulled["Id"] == original["Id"]
    assert f"{repo}@{digest}" in pulled["RepoDigests"]
    assert pulled["RootFS"] == original["RootFS"]
    assert pulled["Config"]["Cmd"] == ["sh"]


def test_push_again_says_layer_already_exists(docker_cli: DockerCLI, repo: str) -> None:
    ref = f"{repo}:v1"
    image_id = _import_unique(docker_cli, ref)
    first = docker_cli.ok("push", ref)
    layer = _inspect(docker_cli, ref)["RootFS"]["Layers"][0][7:19]
    assert re.search(rf"^{layer}: Pushed$", first, re.MULTILINE), first
    digest, _ = _push_digest(first, "v1")
    again = docker_cli.ok("push", ref)
    assert re.search(rf"^{layer}: Layer already exists$", again, re.MULTILINE), again
    assert _push_digest(again, "v1")[0] == digest
    assert f"{repo}@{digest}" in _inspect(docker_cli, image_id)["RepoDigests"]


def test_push_into_second_repository_mounts_the_layer(docker_cli: DockerCLI, repo: str, api_client: docker.APIClient) -> None:
    ref = f"{repo}:latest"
    _import_unique(docker_cli, ref)
    docker_cli.ok("push", ref)
    other = f"{repo}-copy"
    try:
        docker_cli.ok("tag", ref, f"{other}:latest")
        out = docker_cli.ok("push", f"{other}:latest")
        layer = _inspect(docker_cli, ref)["RootFS"]["Layers"][0][7:19]
        source = repo.split("/", 1)[1]
        assert re.search(rf"^{layer}: (Mounted from {re.escape(source)}|Layer already exists)$", out, re.MULTILINE), out
    finally:
        remove_repository(api_client, other)


def test_push_all_tags(docker_cli: DockerCLI, registry: LocalRegistry, repo: str) -> None:
    _import_unique(docker_cli, f"{repo}:one")
    docker_cli.ok("tag", f"{repo}:one", f"{repo}:two")
    out = docker_cli.ok("push", "--all-tags", repo)
    _push_digest(out, "one")
    _push_digest(out, "two")
    assert sorted(registry.tags(repo.split("/", 1)[1])) == ["one", "two"]


def test_push_of_a_missing_tag_fails(docker_cli: DockerCLI, repo: str) -> None:
    _import_unique(docker_cli, f"{repo}:there")
    err = _fails(docker_cli("push", f"{repo}:missing"))
    assert f"tag does not exist: {repo}:missing" in err


# --- pull ---------------------------------------------------------------------------------


def test_pull_downloads_and_extracts_a_new_layer(docker_cli: DockerCLI, registry: LocalRegistry, repo: str) -> None:
    ref = f"{repo}:latest"
    image_id = _import_unique(docker_cli, ref)
    digest, _ = _push_digest(docker_cli.ok("push", ref), "latest")
    _, manifest = registry.manifest(repo.split("/", 1)[1], "latest")
    blob = manifest["layers"][0]["digest"][7:19]
    docker_cli.ok("rmi", ref)  # the layer goes too: nothing else uses it
    out = docker_cli.ok("pull", ref)
    lines = out.splitlines()
    assert lines[0] == "latest: Pulling from " + repo.split("/", 1)[1]
    assert f"{blob}: Pull complete" in lines
    assert f"Digest: {digest}" in lines
    assert lines[-2:] == [f"Status: Downloaded newer image for {ref}", ref]
    assert _inspect(docker_cli, ref)["Id"] == image_id


def test_pull_twice_is_up_to_date(docker_cli: DockerCLI, repo: str) -> None:
    ref = f"{repo}:latest"
    _import_unique(docker_cli, ref)
    docker_cli.ok("push", ref)
    out = docker_cli.ok("pull", ref)
    assert f"Status: Image is up to date for {ref}" in out
    assert "Pull complete" not in out


def test_pull_by_digest(docker_cli: DockerCLI, repo: str) -> None:
    ref = f"{repo}:latest"
    image_id = _import_unique(docker_cli, ref)
    digest, _ = _push_digest(docker_cli.ok("push", ref), "latest")
    docker_cli.ok("rmi", ref)
    by_digest = f"{repo}@{digest}"
    out = docker_cli.ok("pull", by_digest)
    assert f"Digest: {digest}" in out
    assert f"Status: Downloaded newer image for {by_digest}" in out
    image = _inspect(docker_cli, by_digest)
    assert image["Id"] == image_id
    assert image["RepoDigests"] == [by_digest]
    assert image["RepoTags"] == []


def test_pull_all_tags(docker_cli: DockerCLI, repo: str) -> None:
    image_id = _import_unique(docker_cli, f"{repo}:a")
    docker_cli.ok("tag", f"{repo}:a", f"{repo}:b")
    docker_cli.ok("push", "--all-tags", repo)
    docker_cli.ok("rmi", f"{repo}:a", f"{repo}:b")
    out = docker_cli.ok("pull", "--all-tags", repo)
    assert f"Status: Downloaded newer image for {repo}" in out
    assert _inspect(docker_cli, f"{repo}:a")["Id"] == _inspect(docker_cli, f"{repo}:b")["Id"] == image_id


def test_pull_of_a_missing_repository_fails_with_manifest_unknown(docker_cli: DockerCLI, registry: LocalRegistry) -> None:
    ref = f"{registry.address}/{unique_repo('conf-missing')}:latest"
    err = _fails(docker_cli("pull", ref))
    assert f"Error response from daemon: manifest for {ref} not found: manifest unknown: manifest unknown" in err


def test_pull_of_a_missing_tag_fails(docker_cli: DockerCLI, repo: str) -> None:
    _import_unique(docker_cli, f"{repo}:latest")
    docker_cli.ok("push", f"{repo}:latest")
    err = _fails(docker_cli("pull", f"{repo}:nosuchtag"))
    assert f"manifest for {repo}:nosuchtag not found: manifest unknown" in err


def test_pull_from_a_closed_port_fails_with_connection_refused(docker_cli: DockerCLI) -> None:
    from conformance.registry import free_port

    ref = f"127.0.0.1:{free_port()}/nothing:latest"
    err = _fails(docker_cli("pull", ref, timeout=30))
    assert "connect: connection refused" in err


def test_pull_with_an_invalid_reference_fails(docker_cli: DockerCLI, registry: LocalRegistry) -> None:
    err = _fails(docker_cli("pull", f"{registry.address}/UPPER"))
    assert "invalid reference format" in err


# --- login / private registry --------------------------------------------------------------


def test_login_push_pull_logout_with_basic_auth(
    docker_cli: DockerCLI, auth_registry: LocalRegistry, api_client: docker.APIClient
) -> None:
    server = auth_registry.address
    repo = f"{server}/{unique_repo('conf-auth')}"
    try:
        ref = f"{repo}:latest"
        image_id = _import_unique(docker_cli, ref)
        err = _fails(docker_cli("push", ref))
        assert "no basic auth credentials" in err

        proc = docker_cli("login", server, "-u", AUTH_USER, "--password-stdin", input=AUTH_PASSWORD + "\n")
        assert proc.returncode == 0, proc.stderr
        assert "Login Succeeded" in str(proc.stdout)
        config = json.loads((docker_cli.config_dir / "config.json").read_text())
        assert server in config.get("auths", {})

        out = docker_cli.ok("push", ref)
        digest, _ = _push_digest(out, "latest")
        assert auth_registry.manifest(repo.split("/", 1)[1], "latest")[0] == digest
        docker_cli.ok("rmi", ref)
        docker_cli.ok("pull", ref)
        assert _inspect(docker_cli, ref)["Id"] == image_id

        docker_cli.ok("logout", server)
        docker_cli.ok("rmi", ref)
        err = _fails(docker_cli("pull", ref))
        assert "no basic auth credentials" in err
    finally:
        remove_repository(api_client, repo)


def test_login_with_a_wrong_password_fails(docker_cli: DockerCLI, auth_registry: LocalRegistry) -> None:
    proc = docker_cli("login", auth_registry.address, "-u", AUTH_USER, "--password-stdin", input="wrong\n")
    err = _fails(proc)
    assert f"login attempt to http://{auth_registry.address}/v2/ failed with status: 401 Unauthorized" in err


def test_login_to_an_open_registry_succeeds(docker_cli: DockerCLI, registry: LocalRegistry) -> None:
    proc = docker_cli("login", registry.address, "-u", "anyone", "--password-stdin", input="anything\n")
    assert proc.returncode == 0, proc.stderr
    assert "Login Succeeded" in str(proc.stdout)


# --- events ---------------------------------------------------------------------------------


def test_push_and_pull_events(docker_cli: DockerCLI, repo: str) -> None:
    ref = f"{repo}:latest"
    since = str(int(time.time()) - 1)
    _import_unique(docker_cli, ref)
    docker_cli.ok("push", ref)
    docker_cli.ok("pull", ref)
    until = str(int(time.time()) + 1)
    out = docker_cli.ok(
        "events", "--since", since, "--until", until, "--filter", "type=image",
        "--filter", "event=push", "--filter", "event=pull", "--format", "{{json .}}",
    )
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    mine = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("name")) for e in events
            if e["Actor"]["ID"].startswith(repo)]  # fmt: skip
    assert mine == [("push", ref, repo), ("pull", ref, repo)]


# --- run pulls what it does not have ---------------------------------------------------------


def test_run_pulls_a_missing_image(docker_cli: DockerCLI, busybox_image: str, repo: str) -> None:
    ref = f"{repo}:latest"
    docker_cli.ok("tag", busybox_image, ref)
    docker_cli.ok("push", ref)
    docker_cli.ok("rmi", ref)
    proc = docker_cli("run", "--rm", "--network", "none", ref, "echo", "pulled and ran", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "pulled and ran\n"
    assert f"Unable to find image '{ref}' locally" in str(proc.stderr)
    assert f"Status: Downloaded newer image for {ref}" in str(proc.stderr)


def test_two_layer_image_round_trips_and_runs(docker_cli: DockerCLI, busybox_image: str, repo: str) -> None:
    """A committed image (busybox layer + one more) keeps its ID through push and pull."""
    ref = f"{repo}:committed"
    name = f"conf-reg-{uuid.uuid4().hex[:10]}"
    try:
        docker_cli.ok("run", "--name", name, "--network", "none", busybox_image, "sh", "-c", "echo layered > /marker")
        image_id = docker_cli.ok("commit", name, ref).strip()
    finally:
        docker_cli("rm", "-f", name)
    original = _inspect(docker_cli, ref)
    assert len(original["RootFS"]["Layers"]) == 2
    out = docker_cli.ok("push", ref)
    top, base = original["RootFS"]["Layers"][1][7:19], original["RootFS"]["Layers"][0][7:19]
    assert out.index(f"{top}: Preparing") < out.index(f"{base}: Preparing")  # top layer first
    docker_cli.ok("rmi", ref)
    out = docker_cli.ok("pull", ref)
    assert "Already exists" in out  # the busybox layer is still here
    assert _inspect(docker_cli, ref)["Id"] == image_id
    proc = docker_cli("run", "--rm", "--network", "none", ref, "cat", "/marker")
    assert (proc.returncode, proc.stdout) == (0, "layered\n"), proc.stderr
