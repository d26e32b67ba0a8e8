"""Create and update bodies are checked as dockerd checks them: values of the wrong JSON
type and integers that their Go type cannot hold are refused with Go's ``json: cannot
unmarshal`` text (400 since Engine 23, 500 before it: derived from the advertised API
version), and resource values with dockerd's own messages. Nothing is stored that the CLI
could not read back. The body is sent as written here (the numbers' literal text matters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.apiversion import APIVersion
from conformance.conftest import Advertised
from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024


def decode_status(advertised: Advertised) -> int:
    """A body that cannot be decoded: 500 up to Engine 20.10 (API 1.41), 400 since 23."""
    return 400 if advertised.max >= APIVersion(1, 42) else 500


# (id, HostConfig JSON text, stable part of the message, is a decoding error)
HOST_CONFIG_CASES = [
    ("hostconfig-string", '"AAA"', ["json: cannot unmarshal string into Go struct field",
                                    "HostConfig of type container.HostConfig"], True),
    ("memory-2^63", '{"Memory": 9223372036854775808}', [
        "json: cannot unmarshal number 9223372036854775808 into Go struct field HostConfig.HostConfig.Memory of type int64"], True),
    ("memory-1e30", '{"Memory": 1e30}', [
        "json: cannot unmarshal number 1e30 into Go struct field HostConfig.HostConfig.Memory of type int64"], True),
    ("memory-fraction", '{"Memory": 1.5}', [
        "json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64"], True),
    ("blkio-weight-uint16", '{"BlkioWeight": 70000}', [
        "json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16"], True),
    ("ulimit-soft", '{"Ulimits": [{"Name": "nofile", "Soft": 1e+30, "Hard": 1}]}', [
        "json: cannot unmarshal number 1e+30 into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64"], True),
    ("ulimits-string", '{"Ulimits": "x"}', [
        "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Ulimits of type []*units.Ulimit"], True),
    ("memory-negative", '{"Memory": -5}', ["Minimum memory limit allowed is 6MB"], False),
    ("memory-too-small", '{"Memory": 1000}', ["Minimum memory limit allowed is 6MB"], False),
    ("reservation-too-small", '{"MemoryReservation": 1000}', ["Minimum memory reservation allowed is 6MB"], False),
    ("memory-below-reservation", f'{{"Memory": {10 * MB}, "MemoryReservation": {20 * MB}}}',
     ["Minimum memory limit can not be less than memory reservation limit, see usage"], False),
    ("swap-below-memory", f'{{"Memory": {20 * MB}, "MemorySwap": {10 * MB}}}',
     ["Minimum memoryswap limit should be larger than memory limit, see usage"], False),
    ("swap-without-memory", f'{{"MemorySwap": {10 * MB}}}',
     ["You should always set the Memory limit when using Memoryswap limit, see usage"], False),
    ("swappiness", '{"MemorySwappiness": 200}', ["Invalid value: 200, valid memory swappiness range is 0-100"], False),
    ("cpu-period", '{"CpuPeriod": 5}', ["CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"], False),
    ("cpu-quota", '{"CpuQuota": 5}', ["CPU cfs quota can not be less than 1ms (i.e. 1000)"], False),
    ("nano-cpus-and-quota", '{"NanoCpus": 500000000, "CpuQuota": 50000}',
     ["Conflicting options: Nano CPUs and CPU Quota cannot both be set"], False),
    ("nano-cpus-negative", '{"NanoCpus": -1}', ["of CPUs is from 0.01 to"], False),
    ("shm-size", '{"ShmSize": -1}', ["SHM size can not be less than 0"], False),
    ("oom-score-adj", '{"OomScoreAdj": 5000}', ["Invalid value 5000, range for oom score adj is [-1000, 1000]"], False),
]

# (id, Config fields JSON text, stable parts of the message)
CONFIG_CASES = [
    ("cmd-number", '"Cmd": 5', ["json: cannot unmarshal number into Go struct field", ".Cmd of type string"]),
    ("env-object", '"Env": {"a": 1}', ["json: cannot unmarshal object into Go struct field", ".Env of type []string"]),
    ("labels-array", '"Labels": ["a"]', ["json: cannot unmarshal array into Go struct field", ".Labels of type map[string]string"]),
    ("exposed-ports-array", '"ExposedPorts": ["80/tcp"]', ["json: cannot unmarshal array into Go struct field",
                                                          ".ExposedPorts of type nat.PortSet"]),
    ("stop-timeout-string", '"StopTimeout": "x"', ["json: cannot unmarshal string into Go struct field",
                                                  ".StopTimeout of type int"]),
]


@pytest.fixture
def names(raw: RawHTTP) -> Iterator[list[str]]:
    """Containers a wrongly accepted body created, removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        raw.delete(f"/containers/{name}?force=1")


def create(raw: RawHTTP, body: str, names: list[str]) -> tuple[int, str]:
    name = unique("valid")
    names.append(name)
    resp = raw.request("POST", f"/containers/create?name={name}", body=body,
                       headers={"Content-Type": "application/json"})
    message = resp.json().get("message", "") if resp.body.startswith(b"{") else resp.body.decode()
    return resp.status, message


@pytest.mark.parametrize("case", HOST_CONFIG_CASES, ids=[c[0] for c in HOST_CONFIG_CASES])
def test_host_config_is_refused_as_dockerd_refuses_it(
    raw: RawHTTP, busybox_image: str, advertised: Advertised, names: list[str],
    case: tuple[str, str, list[str], bool],
) -> None:
    _, host_config, fragments, decoding = case
    status, message = create(raw, f'{{"Image": "{busybox_image}", "HostConfig": {host_config}}}', names)
    assert status == (decode_status(advertised) if decoding else 400), message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_of_the_wrong_type_is_refused_with_go_text(
    raw: RawHTTP, busybox_image: str, advertised: Advertised, names: list[str],
    case: tuple[str, str, list[str]],
) -> None:
    _, fields, fragments = case
    status, message = create(raw, f'{{"Image": "{busybox_image}", {fields}}}', names)
    assert status == decode_status(advertised), message
    for fragment in fragments:
        assert fragment in message


def test_update_checks_types_and_ranges(
    raw: RawHTTP, busybox_image: str, advertised: Advertised, tracker: ResourceTracker, names: list[str],
) -> None:
    status, message = create(raw, json.dumps({"Image": busybox_image, "Cmd": ["true"]}), names)
    assert status == 201, message
    name = names[-1]
    for body, fragments, decoding in (
        ('{"Memory": 1e30}', ["json: cannot unmarshal number 1e30 into Go struct field", "Memory of type int64"], True),
        ('{"CpuQuota": 5}', ["CPU cfs quota can not be less than 1ms (i.e. 1000)"], False),
        ('{"Memory": 1000}', ["Minimum memory limit allowed is 6MB"], False),
    ):
        resp = raw.request("POST", f"/containers/{name}/update", body=body, headers={"Content-Type": "application/json"})
        message = resp.json()["message"]
        assert resp.status == (decode_status(advertised) if decoding else 400), message
        for fragment in fragments:
            assert fragment in message
    # what the engine kept is still readable by a Go client: the values it started with
    inspect = raw.get(f"/containers/{name}/json").json()
    assert inspect["HostConfig"]["Memory"] == 0 and inspect["HostConfig"]["CpuQuota"] == 0


@pytest.fixture
def network_and_container(raw: RawHTTP, busybox_image: str, names: list[str]) -> Iterator[tuple[str, str]]:
    net = unique("valnet")
    assert raw.post("/networks/create", json_body={"Name": net}).status == 201
    status, message = create(raw, json.dumps({"Image": busybox_image, "Cmd": ["sleep", "30"]}), names)
    assert status == 201, message
    yield net, names[-1]
    raw.delete(f"/containers/{names[-1]}?force=1")
    raw.delete(f"/networks/{net}")


# (id, path template, body, stable parts); these bodies were 400 in 20.10 already
OTHER_BODY_CASES = [
    ("network-create-ipam", "/networks/create", '{"Name": "val-x1", "IPAM": "a"}',
     ["json: cannot unmarshal string into Go struct field", ".IPAM of type network.IPAM"]),
    ("network-create-internal", "/networks/create", '{"Name": "val-x2", "Internal": "yes"}',
     ["json: cannot unmarshal string into Go struct field", ".Internal of type bool"]),
    ("network-create-labels", "/networks/create", '{"Name": "val-x3", "Labels": 5}',
     ["json: cannot unmarshal number into Go struct field", ".Labels of type map[string]string"]),
    ("connect-driver-opts", "/networks/{net}/connect", '{"Container": "{ctr}", "EndpointConfig": {"DriverOpts": 5}}',
     ["json: cannot unmarshal number into Go struct field EndpointSettings.EndpointConfig.DriverOpts of type map[string]string"]),
    ("connect-ipam-config", "/networks/{net}/connect", '{"Container": "{ctr}", "EndpointConfig": {"IPAMConfig": "x"}}',
     ["json: cannot unmarshal string into Go struct field EndpointSettings.EndpointConfig.IPAMConfig of type network.EndpointIPAMConfig"]),
    ("connect-aliases", "/networks/{net}/connect", '{"Container": "{ctr}", "EndpointConfig": {"Aliases": "x"}}',
     ["json: cannot unmarshal string into Go struct field EndpointSettings.EndpointConfig.Aliases of type []string"]),
    ("volume-labels", "/volumes/create", '{"Name": "val-v1", "Labels": ["a"]}',
     ["json: cannot unmarshal array into Go struct field", ".Labels of type map[string]string"]),
    ("volume-driver-opts", "/volumes/create", '{"Name": "val-v2", "DriverOpts": {"a": 1}}',
     ["json: cannot unmarshal number into Go struct field", ".DriverOpts of type string"]),
    ("exec-cmd", "/containers/{ctr}/exec", '{"Cmd": 5}',
     ["json: cannot unmarshal number into Go struct field", ".Cmd of type []string"]),
    ("exec-env", "/containers/{ctr}/exec", '{"Cmd": ["true"], "Env": {"a": "b"}}',
     ["json: cannot unmarshal object into Go struct field", ".Env of type []string"]),
]


@pytest.mark.parametrize("case", OTHER_BODY_CASES, ids=[c[0] for c in OTHER_BODY_CASES])
def test_other_bodies_of_the_wrong_type_are_400_with_go_text(
    raw: RawHTTP, network_and_container: tuple[str, str], case: tuple[str, str, str, list[str]],
) -> None:
    net, ctr = network_and_container
    _, path, body, fragments = case
    resp = raw.request("POST", path.replace("{net}", net).replace("{ctr}", ctr),
                       body=body.replace("{ctr}", ctr), headers={"Content-Type": "application/json"})
    if resp.status in (200, 201):  # refused nothing: clean up before failing
        for name in ("val-x1", "val-x2", "val-x3"):
            raw.delete(f"/networks/{name}")
        for name in ("val-v1", "val-v2"):
            raw.delete(f"/volumes/{name}")
    message = resp.json()["message"] if resp.body.startswith(b"{") else resp.body.decode()
    assert resp.status == 400, message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("networking, fragments", [
    ('"x"', ["json: cannot unmarshal string into Go struct field", ".NetworkingConfig of type network.NetworkingConfig"]),
    ('{"EndpointsConfig": {"bridge": {"Aliases": "x"}}}',
     ["json: cannot unmarshal string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string"]),
], ids=["networking-config-string", "endpoint-aliases-string"])
def test_networking_config_of_the_wrong_type_is_refused(
    raw: RawHTTP, busybox_image: str, advertised: Advertised, names: list[str], networking: str, fragments: list[str],
) -> None:
    status, message = create(raw, f'{{"Image": "{busybox_image}", "NetworkingConfig": {networking}}}', names)
    assert status == decode_status(advertised), message
    for fragment in fragments:
        assert fragment in message
