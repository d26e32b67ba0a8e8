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

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

WWW = "mkdir -p /www && echo hello-over-ipv6 > /www/index.html && exec httpd -f -p 8000 -h /www"


def _free_ula() -> str:
    used = subprocess.run(["ip", "-o", "-6", "addr"], capture_output=True, text=True).stdout
    while True:
        subnet = f"fd42:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64"
        if subnet.split("::")[0] + ":" not in used:
            return subnet


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("the host has no IPv6")
    return Box(docker_cli, tracker, busybox_image)


def test_ipv6_network_names_and_published_port(box: Box) -> None:
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

    port = box.ok("port", web, "8000").strip()
    assert port.startswith("[::1]:"), port
    with urllib.request.urlopen(f"http://{port}/", timeout=10) as resp:
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
