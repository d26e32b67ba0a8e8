"""IPv6 on a user-defined network through the CLI: ``network create --ipv6 --subnet``,
addresses and gateway in inspect, AAAA answers from the embedded DNS, two containers
reaching each other by name over IPv6, and a port published on ``[::1]``.

The subnet is a random ULA /64 in fd42::/16 that no host interface uses; traffic goes only
to ::1 and to the containers' own addresses.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

from conformance.cli import CliDialect, DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

WWW = "mkdir -p /www && echo hello-over-ipv6 > /www/index.html && exec httpd -f -p 8000 -h /www"


def _free_ula() -> str:
    used = subprocess.run(["ip", "-o", "-6", "addr"], capture_output=True, text=True).stdout
    while True:
        # normalised (no leading zeros), as engines print it
        subnet = str(ipaddress.IPv6Network(f"fd42:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64"))
        if subnet.split("::")[0] + ":" not in used:
            return subnet


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("the host has no IPv6")
    return Box(docker_cli, tracker, busybox_image)


def test_ipv6_network_names_and_published_port(box: Box, cli_dialect: CliDialect) -> None:
    subnet = _free_ula()
    net = box.tracker.network(unique("net6"))
    box.ok("network", "create", "--ipv6", "--subnet", subnet, net)
    info = json.loads(box.ok("network", "inspect", net))[0]
    assert info["EnableIPv6"] is True
    assert subnet in [c["Subnet"] for c in info["IPAM"]["Config"]]

    web = box.run_d("-p", "[::1]::8000", box.image, "sh", "-c", WWW, network=net)
    ep = box.inspect(web)["NetworkSettings"]["Networks"][net]
    addr = ipaddress.IPv6Address(ep["GlobalIPv6Address"])
    assert addr in ipaddress.IPv6Network(subnet)
    assert ep["GlobalIPv6PrefixLen"] == 64
    assert ipaddress.IPv6Address(ep["IPv6Gateway"]) in ipaddress.IPv6Network(subnet)
    containers = json.loads(box.ok("network", "inspect", net))[0]["Containers"]
    assert containers[box.inspect(web)["Id"]]["IPv6Address"] == f"{addr}/64"

    # by name, over IPv6, from a second container on the network
    script = (f"nslookup -type=AAAA {web} && ping -6 -c 1 -W 3 {web} && "
              f"wget -qO- http://[{addr}]:8000/")
    proc = box.run("--rm", box.image, "sh", "-c", script, network=net, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(addr) in proc.stdout
    assert proc.stdout.rstrip().endswith("hello-over-ipv6")
    proc = box.run("--rm", box.image, "nslookup", str(addr), network=net, timeout=60)
    assert f"{web}.{net}" in proc.stdout, proc.stdout + proc.stderr  # reverse (PTR) lookup

    port = box.ok("port", web, "8000").strip()
    host_port = port.rsplit(":", 1)[1]
    assert port == cli_dialect.host_port("::1", host_port), port  # 20.10 prints it bare
    with urllib.request.urlopen(f"http://[::1]:{host_port}/", timeout=10) as resp:
        assert resp.read().decode().strip() == "hello-over-ipv6"


def test_static_ipv6_address(box: Box) -> None:
    subnet = _free_ula()
    net = box.tracker.network(unique("net6"))
    box.ok("network", "create", "--ipv6", "--subnet", subnet, net)
    wanted = str(ipaddress.IPv6Network(subnet).network_address + 0xF00D)
    name = box.run_d("--ip6", wanted, box.image, "sleep", "300", network=net)
    ep = box.inspect(name)["NetworkSettings"]["Networks"][net]
    assert ep["GlobalIPv6Address"] == wanted
    assert ep["IPAMConfig"]["IPv6Address"] == wanted
    proc = box.run("--rm", box.image, "ping", "-6", "-c", "1", "-W", "3", wanted, network=net, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_bridge_ipv6_daemon_options(engine: Engine, busybox_tar: Path, docker_binary: str,
                                            tmp_path: Path) -> None:
    """``--ipv6 --fixed-cidr-v6`` (pydockerd only: the test starts a daemon of its own)."""
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own, started with --ipv6")
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("the host has no IPv6")
    from conformance.daemon import DaemonSettings, PydockerdProcess, free_test_bridge

    subnet = _free_ula()
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    settings.extra_args = [*settings.extra_args, "--ipv6", "--fixed-cidr-v6", subnet]
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        cli = DockerCLI(docker_binary, daemon.host, tmp_path / "cli")
        cli.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest", timeout=120)
        info = json.loads(cli.ok("network", "inspect", "bridge"))[0]
        assert info["EnableIPv6"] is True
        gateway = str(ipaddress.IPv6Network(subnet).network_address + 1)
        assert {"Subnet": subnet, "Gateway": gateway} in info["IPAM"]["Config"]
        cli.ok("run", "-d", "--name", "v6web", "busybox:latest", "sh", "-c", WWW)
        settings_ = json.loads(cli.ok("inspect", "v6web"))[0]["NetworkSettings"]
        addr = settings_["Networks"]["bridge"]["GlobalIPv6Address"]
        assert ipaddress.IPv6Address(addr) in ipaddress.IPv6Network(subnet)
        assert settings_["GlobalIPv6Address"] == addr and settings_["IPv6Gateway"] == gateway
        proc = cli("run", "--rm", "busybox:latest", "wget", "-qO-", f"http://[{addr}]:8000/", timeout=60)
        assert str(proc.stdout).strip() == "hello-over-ipv6", proc.stderr
        cli.ok("rm", "-f", "v6web")
    finally:
        daemon.stop()
        daemon.remove_dirs()


def test_ipv6_address_on_a_network_without_ipv6(api_client: docker.APIClient, tracker: ResourceTracker,
                                                busybox_image: str) -> None:
    """An IPv6 pool on a network created without EnableIPv6 (docker-py's
    ``test_create_with_ipv6_address``): the pool is listed after an automatic IPv4 one, an
    ``IPv6Address`` is accepted at create and connect and kept in ``IPAMConfig``, and nothing
    IPv6 is configured (dockerd 20.10)."""
    subnet = _free_ula()
    addr = str(ipaddress.IPv6Network(subnet).network_address + 0xF00D)
    net = tracker.network(unique("net6off"))
    api_client.create_network(net, ipam=IPAMConfig(driver="default", pool_configs=[IPAMPool(subnet=subnet)]))
    info = api_client.inspect_network(net)
    assert info["EnableIPv6"] is False
    assert [c["Subnet"] for c in info["IPAM"]["Config"]][1:] == [subnet]
    assert ":" not in info["IPAM"]["Config"][0]["Subnet"]
    created = api_client.create_container(
        busybox_image, ["sleep", "60"], name=tracker.container(unique("v6off")),
        host_config=api_client.create_host_config(network_mode=net),
        networking_config=api_client.create_networking_config(
            {net: api_client.create_endpoint_config(ipv6_address=addr)}))["Id"]
    api_client.start(created)
    entry = api_client.inspect_container(created)["NetworkSettings"]["Networks"][net]
    assert entry["IPAMConfig"]["IPv6Address"] == addr
    assert entry["GlobalIPv6Address"] == "" and entry["IPAddress"] != ""
    other = api_client.create_container(busybox_image, ["sleep", "60"], name=tracker.container(unique("v6off")))["Id"]
    api_client.connect_container_to_network(other, net, ipv6_address=addr)
    entry = api_client.inspect_container(other)["NetworkSettings"]["Networks"][net]
    assert entry["IPAMConfig"]["IPv6Address"] == addr


def test_ipv6_address_needs_a_configured_ipv6_pool(api_client: docker.APIClient, tracker: ResourceTracker,
                                                  busybox_image: str) -> None:
    net = tracker.network(unique("net4"))
    api_client.create_network(net)
    # dockerd 20.10 refuses it at start, Engines from 25 (and pydockerd) already at create
    with pytest.raises(docker.errors.APIError) as err:
        created = api_client.create_container(
            busybox_image, ["true"], name=tracker.container(unique("v6no")),
            host_config=api_client.create_host_config(network_mode=net),
            networking_config=api_client.create_networking_config(
                {net: api_client.create_endpoint_config(ipv6_address="fd42::f00d")}))
        api_client.start(created)
    assert err.value.status_code == 400
    assert "supported only when connecting to networks with user configured subnets" in str(err.value)
