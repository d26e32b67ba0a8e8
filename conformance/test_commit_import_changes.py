"""``docker commit --change`` and ``docker import --change`` read the changes the same way,
as a Dockerfile through the builder's dispatcher (moby's ``BuildFromConfig``): port
ranges, relative ``WORKDIR`` (to the container's), ``$VAR`` from the config's ``Env``, and
dockerd's 400s. ``STOPSIGNAL`` is a valid change since Docker 23.0 (API 1.42)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from conformance.apiversion import APIVersion
from conformance.conftest import Advertised
from conformance.containerkit import unique
from conformance.imagetools import tiny_layer
from conformance.rawhttp import RawHTTP, RawResponse

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def repo(api_client: docker.APIClient) -> Iterator[str]:
    name = unique("changes")
    yield name
    for image in api_client.images(name=name):
        api_client.remove_image(image["Id"], force=True)


def _query(changes: list[str]) -> str:
    return "".join(f"&changes={urllib.parse.quote(c)}" for c in changes)


def _import(raw: RawHTTP, repo: str, changes: list[str]) -> RawResponse:
    return raw.post(f"/images/create?fromSrc=-&repo={repo}&tag=t{_query(changes)}", body=tiny_layer())


def _import_error(resp: RawResponse) -> tuple[int, str]:
    """dockerd answers a refused change before any output: status and message."""
    return resp.status, json.loads(resp.body)["message"]


def _config(raw: RawHTTP, ref: str) -> dict[str, Any]:
    config: dict[str, Any] = raw.get(f"/images/{ref}/json").json()["Config"]
    return config


@pytest.mark.parametrize(("change", "key", "value"), [
    ("EXPOSE 8000-8001", "ExposedPorts", {"8000/tcp": {}, "8001/tcp": {}}),
    ("WORKDIR rel", "WorkingDir", "/rel"),
    ("WORKDIR ../a/./b", "WorkingDir", "/a/b"),
    ("ENV X y z", "Env", ["X=y z"]),
    ("ONBUILD run x", "OnBuild", ["run x"]),
    ('VOLUME ["/a", "/b"]', "Volumes", {"/a": {}, "/b": {}}),
])
def test_import_change(raw: RawHTTP, repo: str, change: str, key: str, value: Any) -> None:
    resp = _import(raw, repo, [change])
    assert resp.status == 200, resp.body[:300]
    assert _config(raw, f"{repo}:t")[key] == value


@pytest.mark.parametrize(("change", "message"), [
    ("EXPOSE 80/bogus", "Invalid proto: bogus"),
    ("EXPOSE 70000", "Invalid containerPort: 70000"),
    ("RUN x", "run is not a valid change command"),
    ("FROM x", "from is not a valid change command"),
    ("LABEL", "LABEL requires at least one argument"),
    ("HEALTHCHECK --interval=bogus CMD true", 'time: invalid duration "bogus"'),
])
def test_import_change_refused(raw: RawHTTP, repo: str, change: str, message: str) -> None:
    assert _import_error(_import(raw, repo, [change])) == (400, message)


@pytest.fixture
def container(raw: RawHTTP, busybox_image: str) -> Iterator[str]:
    name = unique("changes")
    body = {"Image": busybox_image, "Cmd": ["true"], "WorkingDir": "/base", "Env": ["A=1"],
            "StopSignal": "SIGUSR1"}
    assert raw.post(f"/containers/create?name={name}", json_body=body).status == 201
    yield name
    raw.delete(f"/containers/{name}?force=1")


def _commit(raw: RawHTTP, container: str, repo: str, changes: list[str]) -> RawResponse:
    return raw.post(f"/commit?container={container}&repo={repo}&tag=t{_query(changes)}")


@pytest.mark.parametrize(("change", "key", "value"), [
    ("EXPOSE 8000-8001", "ExposedPorts", {"8000/tcp": {}, "8001/tcp": {}}),
    ("WORKDIR rel", "WorkingDir", "/base/rel"),  # relative to the container's
    ("ENV B=$A", "Env", ["A=1", "B=1"]),  # the container's Env expands
    ("USER $A", "User", "1"),
    ("ENTRYPOINT e", "Entrypoint", ["/bin/sh", "-c", "e"]),
])
def test_commit_change(raw: RawHTTP, container: str, repo: str, change: str, key: str, value: Any) -> None:
    resp = _commit(raw, container, repo, [change])
    assert resp.status == 201, resp.body[:300]
    config = _config(raw, f"{repo}:t")
    assert config[key] == value
    assert config["StopSignal"] == "SIGUSR1"  # the rest is the container's


@pytest.mark.parametrize(("change", "message"), [
    ("EXPOSE 80/bogus", "Invalid proto: bogus"),
    ("RUN x", "run is not a valid change command"),
])
def test_commit_change_refused(raw: RawHTTP, container: str, repo: str, change: str, message: str) -> None:
    resp = _commit(raw, container, repo, [change])
    assert (resp.status, resp.json()["message"]) == (400, message)


def test_stopsignal_change(raw: RawHTTP, container: str, repo: str, advertised: Advertised) -> None:
    bogus = _commit(raw, container, repo, ["STOPSIGNAL BOGUS"])
    number = _commit(raw, container, repo, ["STOPSIGNAL 99"])
    if advertised.max < APIVersion(1, 42):  # 20.10: not a valid change command yet
        for resp in (bogus, number):
            assert (resp.status, resp.json()["message"]) == (400, "stopsignal is not a valid change command")
        return
    # the signal parser of kill and --stop-signal (moby's ParseSignal; 28 lowercases it)
    assert bogus.status == 400 and bogus.json()["message"].lower() == "invalid signal: bogus"
    assert number.status == 201, number.body[:300]
    assert _config(raw, f"{repo}:t")["StopSignal"] == "99"
