"""Reading out of a container never reads the host: ``docker cp -L`` of a symlink that
points at a host path, ``GET /containers/{id}/archive`` of a path climbing with ``..``
or through an absolute symlink, all stay inside the container's root (the other
direction, PUT archive and load, is in test_cp_cli.py and test_images_hostile.py)."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(60)

SECRET = "host secret, never to be read\n"


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def host_secret() -> Iterator[Path]:
    path = Path("/tmp") / f"cp-secret-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    (path / "secret").write_text(SECRET)
    yield path / "secret"
    (path / "secret").unlink()
    path.rmdir()


def _wait_for(box: Box, name: str, path: str, timeout: float = 10.0) -> None:
    """The container's command has made ``path`` (it runs right after start)."""
    deadline = time.monotonic() + timeout
    while box.cli("exec", name, "test", "-L", path).returncode != 0:
        assert time.monotonic() < deadline, f"{path} never appeared in {name}"
        time.sleep(0.1)


def _members(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


def test_cp_follow_of_a_symlink_to_a_host_path_reads_the_container(box: Box, host_secret: Path, tmp_path: Path) -> None:
    name = box.run_d(box.image, "sh", "-c",
                     f"mkdir -p {host_secret.parent} && echo container-file > {host_secret} "
                     f"&& ln -s {host_secret} /link && ln -s ../../../../../../{str(host_secret).lstrip('/')} /rel "
                     "&& sleep 300")
    _wait_for(box, name, "/rel")
    for link in ("/link", "/rel"):
        out = tmp_path / link.strip("/")
        box.ok("cp", "-L", f"{name}:{link}", str(out))
        assert out.read_text() == "container-file\n", link


def test_archive_get_of_climbing_paths_stays_inside(box: Box, raw: RawHTTP, host_secret: Path) -> None:
    name = box.run_d(box.image, "sh", "-c", "ln -s / /root-link && sleep 300")
    _wait_for(box, name, "/root-link")
    for path in (f"/../../../../..{host_secret}", f"/root-link{host_secret}", f"/root-link/../..{host_secret}"):
        resp = raw.get(f"/containers/{name}/archive?path={quote(path)}")
        if resp.status == 200:
            assert SECRET.encode() not in b"".join(_members(resp.body).values()), path
        else:
            assert resp.status == 404, (path, resp.status, resp.body[:200])
