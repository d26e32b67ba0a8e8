"""json-file log options through docker-py, as dockerd treats them: the keys are checked at
create (400), the values when the logger starts with the container (500 "failed to initialize
logging driver: ...", the container stays ``created`` with ExitCode 128 and State.Error)."""

from __future__ import annotations

import docker
import docker.errors
import pytest
from docker.types import LogConfig

from conformance.containerkit import unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


def _create(client: docker.DockerClient, tracker: ResourceTracker, image: str, log: LogConfig) -> str:
    name = tracker.container(unique("logopt"))
    host = client.api.create_host_config(log_config=log, network_mode="none")
    return str(client.api.create_container(image, ["true"], name=name, host_config=host)["Id"])


@pytest.mark.parametrize("kind", ["json-file", ""])
def test_max_file_without_max_size_is_accepted(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str, kind: str
) -> None:
    ident = _create(client, tracker, busybox_image, LogConfig(type=kind, config={"max-file": "100"}))
    client.api.start(ident)
    assert client.api.wait(ident)["StatusCode"] == 0
    log = client.api.inspect_container(ident)["HostConfig"]["LogConfig"]
    assert log == {"Type": "json-file", "Config": {"max-file": "100"}}


def test_every_json_file_option_is_known(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    config = {"max-size": "10k", "max-file": "3", "compress": "true", "labels": "a", "labels-regex": "^a",
              "env": "HOME", "env-regex": "^H", "tag": "{{.Name}}"}
    ident = _create(client, tracker, busybox_image, LogConfig(type="json-file", config=config))
    client.api.start(ident)
    assert client.api.wait(ident)["StatusCode"] == 0
    assert client.api.inspect_container(ident)["HostConfig"]["LogConfig"]["Config"] == config


def test_unknown_option_is_refused_at_create(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        _create(client, tracker, busybox_image, LogConfig(type="json-file", config={"foo": "bar"}))
    assert err.value.status_code == 400
    assert err.value.explanation == "unknown log opt 'foo' for json-file log driver"


@pytest.mark.parametrize(("config", "reason"), [
    ({"max-file": "abc"}, 'strconv.Atoi: parsing "abc": invalid syntax'),
    ({"max-file": "0"}, "max-file cannot be less than 1"),
    ({"max-size": "1x"}, "invalid size: '1x'"),
    ({"max-size": "0"}, "max-size must be a positive number"),
    ({"compress": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ({"compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
])
def test_bad_values_fail_the_start(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str,
    config: dict[str, str], reason: str,
) -> None:
    ident = _create(client, tracker, busybox_image, LogConfig(type="json-file", config=config))
    with pytest.raises(docker.errors.APIError) as err:
        client.api.start(ident)
    message = f"failed to initialize logging driver: {reason}"
    assert err.value.status_code == 500
    assert err.value.explanation == message
    state = client.api.inspect_container(ident)["State"]
    assert (state["Status"], state["ExitCode"], state["Error"]) == ("created", 128, message)
