"""An engine deletes only the bridges it created (moby's ``BridgeIfaceCreator``).

A bridge that existed before ``docker network create -o com.docker.network.bridge.name=...``
survives ``network rm``, ``network prune`` and (pydockerd) a daemon stop or crash, with the
addresses it had; an interface that is not a bridge is refused and left alone; the spec's
own example body for ``POST /networks/create`` (which names ``docker0``) changes nothing on
the host once the network is gone.

Interfaces are made here with ``ip link`` (``pydto*`` names, 10.213.18x.0/24 subnets) and
deleted by the test; no traffic is sent.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP
from conformance.spec import SPEC_PATH, example_body
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def addresses(name: str) -> set[str]:
    """IPv4 addresses of an interface ("a.b.c.d/len")."""
    data = json.loads(ip("-j", "-4", "addr", "show", "dev", name))
    return {f"{a['local']}/{a['prefixlen']}" for entry in data for a in entry.get("addr_info", [])}


def host_interfaces() -> dict[str, tuple[str, bool, frozenset[str]]]:
    """name -> (kind, up, IPv4 addresses) of the host's interfaces, leaving out what
    engines running meanwhile add and remove on their own (veths, br-*, pydt* bridges)."""
    links = json.loads(ip("-j", "-d", "link", "show"))
    addrs = json.loads(ip("-j", "-4", "addr", "show"))
    by_name = {e["ifname"]: frozenset(f"{a['local']}/{a['prefixlen']}" for a in e.get("addr_info", [])) for e in addrs}
    result = {}
    for link in links:
        name = link["ifname"]
        if name.startswith(("veth", "br-", "pydt")):
            continue
        kind = link.get("linkinfo", {}).get("info_kind", "")
        result[name] = (kind, "UP" in link.get("flags", []), by_name.get(name, frozenset()))
    return result


@pytest.fixture
def host_bridge() -> Iterator[tuple[str, str, int]]:
    """A bridge the host made (not the engine): (name, its address, third octet)."""
    name = "pydto" + os.urandom(3).hex()
    octet = 180 + int.from_bytes(os.urandom(1), "big") % 10
    cidr = f"10.213.{octet}.1/24"
    ip("link", "add", name, "type", "bridge")
    ip("addr", "add", cidr, "dev", name)
    ip("link", "set", name, "up")
    yield name, cidr, octet
    subprocess.run(["ip", "link", "del", name], capture_output=True)


def _label() -> str:
    return f"pydockerd.test.ownership={unique('own')}"


def test_network_rm_and_prune_leave_an_adopted_bridge_as_found(
    docker_cli: DockerCLI, tracker: ResourceTracker, host_bridge: tuple[str, str, int]
) -> None:
    name, cidr, octet = host_bridge
    label = _label()
    for remove in (["network", "rm"], ["network", "prune", "-f", "--filter", f"label={label}"]):
        net = tracker.network(unique("adopt"))
        docker_cli.ok("network", "create", "--label", label, "-o", f"com.docker.network.bridge.name={name}",
                      "--subnet", f"10.213.{octet}.0/24", "--gateway", f"10.213.{octet}.1", net)
        inspect = json.loads(docker_cli.ok("network", "inspect", net))[0]
        assert inspect["Options"]["com.docker.network.bridge.name"] == name
        docker_cli.ok(*remove, *([net] if remove[1] == "rm" else []))
        assert net not in docker_cli.ok("network", "ls", "--format", "{{.Name}}").split()
        assert os.path.exists(f"/sys/class/net/{name}"), f"`docker {' '.join(remove)}` deleted the host's bridge"
        assert addresses(name) == {cidr}


def test_an_interface_that_is_not_a_bridge_is_refused_and_left_alone(
    docker_cli: DockerCLI, tracker: ResourceTracker
) -> None:
    veth = "pydto" + os.urandom(3).hex()
    ip("link", "add", veth, "type", "veth", "peer", "name", veth + "p")
    try:
        net = tracker.network(unique("notbr"))
        proc = docker_cli("network", "create", "-o", f"com.docker.network.bridge.name={veth}", net)
        assert proc.returncode != 0
        assert f"existing interface {veth} is not a bridge" in proc.stderr
        assert net not in docker_cli.ok("network", "ls", "--format", "{{.Name}}").split()
        assert os.path.exists(f"/sys/class/net/{veth}")
        assert addresses(veth) == set()
        assert "master" not in ip("link", "show", veth)
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)


@pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Engine API spec is not in the repository")
@pytest.mark.parametrize("variant", ["as-documented", "ipv4-only"])
def test_the_spec_example_body_leaves_the_host_as_it_was(
    raw: RawHTTP, host_bridge: tuple[str, str, int], variant: str
) -> None:
    """POST /networks/create with the spec's example (it names docker0; here the test's own
    bridge stands in for it), then remove what was made: the host's interfaces and their
    addresses are what they were, whether the engine took the body or refused it."""
    name, cidr, octet = host_bridge
    body = example_body("/networks/create")
    body["Name"] = unique("specex")
    body["Options"]["com.docker.network.bridge.name"] = name
    if variant == "ipv4-only":
        for key in ("EnableIPv6", "ConfigFrom", "ConfigOnly"):
            body.pop(key, None)
        body["IPAM"]["Config"] = [{"Subnet": f"10.213.{octet}.0/24", "Gateway": f"10.213.{octet}.1"}]
    before = host_interfaces()
    resp = raw.post("/networks/create", json_body=body)
    try:
        if variant == "ipv4-only":
            assert resp.status == 201, resp.body
    finally:
        if resp.status == 201:
            created: dict[str, Any] = json.loads(resp.body)
            assert raw.delete(f"/networks/{created['Id']}").status == 204
    assert host_interfaces() == before
    assert addresses(name) == {cidr}


@pytest.fixture
def own_daemon(engine: Engine) -> Iterator[Any]:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to stop and kill")
    from conformance.daemon import own_pydockerd

    with own_pydockerd("pydtq", 189) as daemon:
        yield daemon


def test_daemon_stop_and_crash_give_an_adopted_bridge_back(own_daemon: Any, host_bridge: tuple[str, str, int]) -> None:
    """pydockerd follows dockerd in putting the network's gateway in place of the bridge's
    address while the network exists, and puts the host's address back whenever it lets
    go of the bridge: at network rm, at a clean stop, and after a crash and restart."""
    name, cidr, _ = host_bridge
    api = docker.APIClient(base_url=own_daemon.host, version="auto")
    net = api.create_network("adoptme", driver="bridge", options={"com.docker.network.bridge.name": name})["Id"]
    gateway = api.inspect_network(net)["IPAM"]["Config"][0]["Gateway"]
    prefix = api.inspect_network(net)["IPAM"]["Config"][0]["Subnet"].split("/")[1]
    assert addresses(name) == {f"{gateway}/{prefix}"}
    own_daemon.stop()  # SIGTERM: a clean stop
    assert addresses(name) == {cidr}
    own_daemon.start()
    api = docker.APIClient(base_url=own_daemon.host, version="auto")
    assert addresses(name) == {f"{gateway}/{prefix}"}
    assert own_daemon.proc is not None
    own_daemon.proc.kill()  # SIGKILL: nothing given back, but the claim is on disk
    own_daemon.proc.wait()
    own_daemon.start()
    api = docker.APIClient(base_url=own_daemon.host, version="auto")
    api.remove_network(net)
    assert os.path.exists(f"/sys/class/net/{name}")
    assert addresses(name) == {cidr}
    assert "UP" in ip("link", "show", name)
