"""Networking through the stock CLI: bridge addresses, user-defined networks with names and
aliases, isolation, network create/inspect/ls/rm/prune, connect/disconnect, published ports,
``docker port``, and the none/host/container network modes.

Traffic goes only to 127.0.0.1 and to container addresses on bridges the engine made.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import time
from typing import Any

import pytest

from conformance.cli import CliDialect, DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

WWW = "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 8000 -h /www"


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def network(box: Box, *args: str) -> str:
    """``docker network create`` with a unique, tracked name; returns the name."""
    name = box.tracker.network(unique("net"))
    box.ok("network", "create", *args, name)
    return name


def net_inspect(box: Box, name: str) -> dict[str, Any]:
    data = json.loads(box.ok("network", "inspect", name))
    assert isinstance(data, list) and len(data) == 1
    result: dict[str, Any] = data[0]
    return result


def ip_on(box: Box, container: str, net: str) -> str:
    ip = box.inspect(container)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert ip, box.inspect(container)["NetworkSettings"]
    return str(ip)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, timeout: float = 20.0) -> bytes:
    """GET / from 127.0.0.1:port, retrying until the server in the container answers."""
    deadline = time.monotonic() + timeout
    last: Exception | bytes = b""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if b"200 OK" in data:
                return data
            last = data
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"no answer on 127.0.0.1:{port}: {last!r}")


# -- default bridge ------------------------------------------------------------------------


def test_eth0_has_an_address_in_the_bridge_subnet(box: Box) -> None:
    subnet = ipaddress.ip_network(net_inspect(box, "bridge")["IPAM"]["Config"][0]["Subnet"])
    proc = box.run("--rm", box.image, "ip", "-4", "addr", "show", "eth0", network="bridge")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", proc.stdout)
    assert match, proc.stdout
    assert ipaddress.ip_address(match.group(1)) in subnet
    assert int(match.group(2)) == subnet.prefixlen


def test_two_containers_on_the_default_bridge_ping_by_ip(box: Box) -> None:
    peer = box.run_d(box.image, "sleep", "60", network="bridge")
    ip = ip_on(box, peer, "bridge")
    settings = box.inspect(peer)["NetworkSettings"]
    assert settings["IPAddress"] == ip and settings["Gateway"] and settings["MacAddress"]
    proc = box.run("--rm", box.image, "ping", "-c", "1", "-W", "3", ip, network="bridge")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_bridge_resolv_conf_and_hosts(box: Box) -> None:
    name = box.name()
    proc = box.run("--rm", "--name", name, "--hostname", "web", "--add-host", "db:10.213.99.9",
                   box.image, "cat", "/etc/hosts", "/etc/resolv.conf", network="bridge")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("127.0.0.1\tlocalhost\n")
    assert "10.213.99.9\tdb\n" in proc.stdout
    assert re.search(r"\n\d+\.\d+\.\d+\.\d+\tweb\n", proc.stdout), proc.stdout
    assert "nameserver 127.0.0.11" not in proc.stdout


# -- user-defined networks -------------------------------------------------------------------


def test_user_network_names_aliases_and_isolation(box: Box) -> None:
    n1, n2 = network(box), network(box)
    server = box.run_d("--network-alias", "db", box.image, "sleep", "60", network=n1)
    for target in (server, "db", f"{server}.{n1}"):
        proc = box.run("--rm", box.image, "ping", "-c", "1", "-W", "3", target, network=n1)
        assert proc.returncode == 0, (target, proc.stdout, proc.stderr)
    proc = box.run("--rm", box.image, "cat", "/etc/resolv.conf", network=n1)
    assert "nameserver 127.0.0.11\n" in proc.stdout and "options ndots:0" in proc.stdout
    aliases = box.inspect(server)["NetworkSettings"]["Networks"][n1]
    assert "db" in aliases["Aliases"]
    # another network neither resolves nor reaches the server
    ip = ip_on(box, server, n1)
    blocked = box.run("--rm", box.image, "ping", "-c", "1", "-W", "1", ip, network=n2)
    assert blocked.returncode != 0
    unknown = box.run("--rm", box.image, "nslookup", server, network=n2)
    assert unknown.returncode != 0 or "can't find" in unknown.stdout + unknown.stderr


def test_network_create_inspect_ls_rm(box: Box, cli_dialect: CliDialect) -> None:
    name = network(box, "--subnet", "10.213.150.0/24", "--gateway", "10.213.150.254",
                   "--label", "conf=1", "--internal")
    data = net_inspect(box, name)
    assert data["Name"] == name and data["Driver"] == "bridge" and data["Scope"] == "local"
    assert data["Internal"] is True and data["Labels"] == {"conf": "1"}
    assert data["IPAM"]["Config"] == [{"Subnet": "10.213.150.0/24", "Gateway": "10.213.150.254"}]
    assert data["Containers"] == {}
    listed = box.ok("network", "ls", "--filter", f"name={name}", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert listed == f"{name} bridge local\n"
    ids = box.ok("network", "ls", "-q", "--filter", "label=conf=1", "--no-trunc")
    assert data["Id"] in ids.split()
    dup = box.cli("network", "create", name)
    assert dup.returncode != 0 and f"network with name {name} already exists" in str(dup.stderr)
    overlap = box.cli("network", "create", "--subnet", "10.213.150.0/25", unique("net"))
    assert overlap.returncode != 0 and "Pool overlaps with other one on this address space" in str(overlap.stderr)
    assert box.ok("network", "rm", name) == f"{name}\n"
    gone = box.cli("network", "inspect", name)
    expected = cli_dialect.not_found(f"network {name} not found", "network", name)
    assert gone.returncode != 0 and expected in str(gone.stderr)


def test_predefined_networks(box: Box) -> None:
    names = box.ok("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}").split()
    assert sorted(names) == ["bridge", "host", "none"]
    for name in ("bridge", "host", "none"):
        proc = box.cli("network", "rm", name)
        assert proc.returncode != 0
        assert f"{name} is a pre-defined network and cannot be removed" in str(proc.stderr)


def test_rm_with_active_endpoint_and_prune(box: Box) -> None:
    busy, idle = network(box), network(box, "--label", "conf-prune=1")
    c = box.run_d(box.image, "sleep", "60", network=busy)
    proc = box.cli("network", "rm", busy)
    assert proc.returncode != 0
    assert "error while removing network" in str(proc.stderr) and "has active endpoints" in str(proc.stderr)
    pruned = box.ok("network", "prune", "-f", "--filter", "label=conf-prune=1")
    assert idle in pruned and busy not in pruned
    assert box.cli("network", "inspect", idle).returncode != 0
    box.ok("rm", "-f", c)
    assert box.ok("network", "rm", busy) == f"{busy}\n"


def test_connect_and_disconnect_a_running_container(box: Box) -> None:
    n1 = network(box)
    web = box.run_d(box.image, "sleep", "60", network="bridge")
    box.ok("network", "connect", "--alias", "front", n1, web)
    nets = box.inspect(web)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", n1} and "front" in nets[n1]["Aliases"]
    links = box.ok("exec", web, "ip", "-o", "link")
    assert "eth1" in links, links
    members = net_inspect(box, n1)["Containers"]
    assert [m["Name"] for m in members.values()] == [web]
    proc = box.run("--rm", box.image, "ping", "-c", "1", "-W", "3", "front", network=n1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = box.cli("network", "connect", n1, web)
    assert again.returncode != 0 and "already exists in network" in str(again.stderr)
    box.ok("network", "disconnect", n1, web)
    assert set(box.inspect(web)["NetworkSettings"]["Networks"]) == {"bridge"}
    assert "eth1" not in box.ok("exec", web, "ip", "-o", "link")
    assert net_inspect(box, n1)["Containers"] == {}


def test_static_ip(box: Box) -> None:
    n = network(box, "--subnet", "10.213.151.0/24")
    c = box.run_d("--ip", "10.213.151.77", box.image, "sleep", "60", network=n)
    assert ip_on(box, c, n) == "10.213.151.77"
    auto = network(box)
    proc = box.cli("run", "--rm", "--network", auto, "--ip", "10.213.152.5", box.image, "true")
    assert proc.returncode != 0
    assert "user specified IP address is supported only when connecting to networks with user configured subnets" in str(proc.stderr)


# -- published ports ---------------------------------------------------------------------------


def test_publish_on_loopback_serves_a_file(box: Box) -> None:
    port = free_port()
    c = box.run_d("-p", f"127.0.0.1:{port}:8000", box.image, "sh", "-c", WWW, network="bridge")
    assert http_get(port).endswith(b"hello-from-httpd\n")
    assert box.ok("port", c) == f"8000/tcp -> 127.0.0.1:{port}\n"
    ports = box.inspect(c)["NetworkSettings"]["Ports"]
    assert ports == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    listed = box.ok("ps", "--filter", f"id={box.inspect(c)['Id']}", "--format", "{{.Ports}}")
    assert listed == f"127.0.0.1:{port}->8000/tcp\n"


def test_publish_all_exposed_ports(box: Box, cli_dialect: CliDialect) -> None:
    c = box.run_d("-P", "--expose", "8000", box.image, "sh", "-c", WWW, network="bridge")
    out = box.ok("port", c)
    match = re.match(r"8000/tcp -> 0\.0\.0\.0:(\d+)\n", out)
    assert match, out
    port = int(match.group(1))
    assert 32768 <= port <= 60999
    lines = out.splitlines()
    assert lines[0] == f"8000/tcp -> {cli_dialect.host_port('0.0.0.0', str(port))}"
    for line in lines[1:]:  # IPv6: dockerd 20.10 may pick another port for it
        v6 = re.fullmatch(r"8000/tcp -> (.+):(\d+)", line)
        assert v6 and line == f"8000/tcp -> {cli_dialect.host_port('::', v6.group(2))}", out
        assert 32768 <= int(v6.group(2)) <= 60999
    assert box.ok("port", c, "8000/tcp") == "".join(line.split(" -> ")[1] + "\n" for line in out.splitlines())
    assert http_get(port).endswith(b"hello-from-httpd\n")


def test_port_conflict_message(box: Box) -> None:
    port = free_port()
    box.run_d("-p", f"127.0.0.1:{port}:8000", box.image, "sleep", "60", network="bridge")
    proc = box.cli("run", "-d", "--name", box.name(), "-p", f"127.0.0.1:{port}:80", box.image, "sleep", "60")
    assert proc.returncode != 0
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in str(proc.stderr)


def _udp_noports(box: Box, name: str) -> int:
    snmp = box.ok("exec", name, "cat", "/proc/net/snmp").splitlines()
    header, values = [line.split() for line in snmp if line.startswith("Udp:")][:2]
    return int(values[header.index("NoPorts")])


def test_udp_publishing_delivers_datagrams(box: Box) -> None:
    port = free_port(socket.SOCK_DGRAM)
    c = box.run_d("-p", f"127.0.0.1:{port}:9999/udp", box.image, "sleep", "60", network="bridge")
    assert box.ok("port", c) == f"9999/udp -> 127.0.0.1:{port}\n"
    before = _udp_noports(box, c)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            s.sendto(b"ping", ("127.0.0.1", port))
            time.sleep(0.2)
    # nothing listens on 9999 inside: each datagram that arrived counts as NoPorts there
    deadline = time.monotonic() + 10
    while _udp_noports(box, c) <= before:
        assert time.monotonic() < deadline, "no datagram reached the container"
        time.sleep(0.2)


# -- network modes ---------------------------------------------------------------------------


def test_none_has_only_loopback(box: Box) -> None:
    proc = box.run("--rm", box.image, "ip", "-o", "link", network="none")
    assert proc.returncode == 0
    assert [line.split(":")[1].strip() for line in proc.stdout.splitlines()] == ["lo"]


def test_host_sees_the_hosts_interfaces(box: Box) -> None:
    proc = box.run("--rm", box.image, "ip", "-o", "link", network="host")
    assert proc.returncode == 0
    inside = {line.split(":")[1].strip().split("@")[0] for line in proc.stdout.splitlines()}
    host = {p.name for p in __import__("pathlib").Path("/sys/class/net").iterdir()}
    assert inside == host or inside <= host and len(inside) > 1


def test_container_mode_shares_the_namespace(box: Box) -> None:
    first = box.run_d(box.image, "sleep", "60", network="bridge")
    ip = ip_on(box, first, "bridge")
    proc = box.run("--rm", box.image, "ip", "-4", "addr", "show", "eth0", network=f"container:{first}")
    assert proc.returncode == 0, proc.stderr
    assert f"inet {ip}/" in proc.stdout


def test_dns_options_are_written(box: Box) -> None:
    for net in ("bridge", network(box)):
        proc = box.run("--rm", "--dns", "10.213.99.53", "--dns-search", "corp.example", "--dns-option", "ndots:2",
                       box.image, "cat", "/etc/resolv.conf", network=net)
        assert proc.returncode == 0, proc.stderr
        # (dockerd 20.10 writes "search" first, dockerd 28 "nameserver")
        lines = sorted(line for line in proc.stdout.splitlines() if line and not line.startswith("#"))
        server = "10.213.99.53" if net == "bridge" else "127.0.0.11"  # user networks: the embedded server
        assert lines == [f"nameserver {server}", "options ndots:2", "search corp.example"], proc.stdout


def test_legacy_link_on_the_default_bridge(box: Box, cli_dialect: CliDialect) -> None:
    target = box.run_d("--hostname", "srvhost", box.image, "sleep", "60", network="bridge")
    ip = ip_on(box, target, "bridge")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # CLI 20.10 refuses --link beside any --network; without one it is the default bridge
        if cli_dialect.legacy:
            return box.cli("run", *args)  # type: ignore[return-value]
        return box.run(*args, network="bridge")  # type: ignore[return-value]

    proc = run("--rm", "--link", f"{target}:db", box.image, "cat", "/etc/hosts")
    assert proc.returncode == 0, proc.stderr
    assert f"{ip}\tdb srvhost {target}\n" in proc.stdout
    ping = run("--rm", "--link", f"{target}:db", box.image, "ping", "-c", "1", "-W", "3", "db")
    assert ping.returncode == 0, ping.stdout + ping.stderr
