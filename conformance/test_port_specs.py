"""Port specs are read by one parser (go-connections ``nat``, runtime/ports.py): create
checks ``PortBindings`` as dockerd's ``validatePortBindings`` does and takes any
``ExposedPorts`` key; ``EXPOSE`` ranges are in test_commit_import_changes.py."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP

pytestmark = pytest.mark.timeout(60)


def _create(raw: RawHTTP, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    name = unique("ports")
    resp = raw.post(f"/containers/create?name={name}", json_body=body)
    return resp.status, resp.json(), name


@pytest.mark.parametrize(("bindings", "message"), [
    ({"8o/tcp": [{"HostPort": "80"}]}, 'invalid port specification: "8o"'),
    ({"70000/tcp": [{"HostPort": "80"}]}, 'invalid port specification: "70000"'),
    ({"80/tcp": [{"HostPort": "99999"}]}, 'invalid port specification: "99999"'),
    ({"80/tcp": [{"HostPort": "9-8"}]}, 'invalid port specification: "9-8"'),
])
def test_create_checks_port_bindings(raw: RawHTTP, busybox_image: str, bindings: dict[str, Any],
                                     message: str) -> None:
    status, body, name = _create(raw, {"Image": busybox_image, "HostConfig": {"PortBindings": bindings}})
    try:
        assert (status, body.get("message")) == (400, message)
    finally:
        raw.delete(f"/containers/{name}?force=1")


def test_create_takes_any_exposed_port_key(raw: RawHTTP, busybox_image: str) -> None:
    exposed = {"70000/tcp": {}, "80/bogus": {}, "8000-8001/tcp": {}, "81/udp": {}}
    status, body, name = _create(raw, {"Image": busybox_image, "Cmd": ["true"], "ExposedPorts": exposed})
    try:
        assert status == 201, body
        assert raw.get(f"/containers/{name}/json").json()["Config"]["ExposedPorts"] == exposed
    finally:
        raw.delete(f"/containers/{name}?force=1")
