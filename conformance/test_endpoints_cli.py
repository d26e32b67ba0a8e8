"""Endpoint settings and legacy links through the CLI and docker-py: link environment and
/etc/hosts on the default bridge, ``DELETE /containers/<parent>/<alias>?link=1``, links
and aliases on user-defined networks as DNS names, reconnecting the NetworkMode network
with aliases (what Compose 1.29 does), MAC and link-local addresses.

Traffic stays between containers on networks the engine made.
"""

from __future__ import annotations

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.apiversion import APIVersion
from conformance.conftest import Advertised
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _network(box: Box, *args: str) -> str:
    name = box.tracker.network(unique("net"))
    box.ok("network", "create", *args, name)
    return name


def test_link_environment_and_hosts_entry(box: Box) -> None:
    target = box.run_d("--expose", "80", "--expose", "53/udp", "-e", "FOO=bar", box.image, "sleep", "300",
                       network="default")
    child = box.name("child")
    # no --network at all: with one, the 20.10 CLI puts links on that network's endpoint and
    # refuses them for anything but a user-defined network
    proc = box.cli("run", "--rm", "--name", child, "--link", f"{target}:my-db", "-e", "MY_DB_ENV_FOO=own",
                   box.image, "sh", "-c", "env; echo ---; cat /etc/hosts", timeout=60)
    assert proc.returncode == 0, proc.stderr
    env_text, _, hosts = proc.stdout.partition("---\n")
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    ip = box.inspect(target)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert env["MY_DB_NAME"] == f"/{child}/my-db"
    assert env["MY_DB_PORT"] == f"udp://{ip}:53"  # lowest port number first
    assert env["MY_DB_PORT_80_TCP"] == f"tcp://{ip}:80"
    assert env["MY_DB_PORT_80_TCP_ADDR"] == ip
    assert env["MY_DB_PORT_80_TCP_PORT"] == "80"
    assert env["MY_DB_PORT_80_TCP_PROTO"] == "tcp"
    assert env["MY_DB_PORT_53_UDP"] == f"udp://{ip}:53"
    assert env["MY_DB_ENV_FOO"] == "own"  # the container's own variable wins
    assert "MY_DB_ENV_PATH" not in env
    entry = next(line.split() for line in hosts.splitlines() if line.startswith(f"{ip}\t") or line.startswith(f"{ip} "))
    assert entry[1] == "my-db" and target in entry


def test_remove_link(api_client: docker.APIClient, tracker: ResourceTracker, busybox_image: str) -> None:
    parent_name, target_name = tracker.container(unique("parent")), tracker.container(unique("target"))
    target = api_client.create_container(busybox_image, "cat", stdin_open=True, name=target_name)
    api_client.start(target)
    parent = api_client.create_container(busybox_image, "cat", stdin_open=True, name=parent_name,
                                         host_config=api_client.create_host_config(links={target_name: "mylink"}))
    assert api_client.inspect_container(parent)["HostConfig"]["Links"] == [f"/{target_name}:/{parent_name}/mylink"]
    listed = {c["Id"]: c["Names"] for c in api_client.containers(all=True)}
    assert sorted(listed[target["Id"]]) == sorted([f"/{target_name}", f"/{parent_name}/mylink"])
    api_client.remove_container(f"{parent_name}/mylink", link=True)
    assert not api_client.inspect_container(parent)["HostConfig"]["Links"]
    assert {c["Id"]: c["Names"] for c in api_client.containers(all=True)}[target["Id"]] == [f"/{target_name}"]
    assert api_client.inspect_container(target)["State"]["Running"]  # only the link went
    with pytest.raises(docker.errors.NotFound):
        api_client.remove_container(f"{parent_name}/mylink", link=True)


def test_links_on_a_user_network_are_dns_aliases(api_client: docker.APIClient, tracker: ResourceTracker,
                                                 busybox_image: str) -> None:
    net = tracker.network(unique("net"))
    api_client.create_network(net)
    upstream = tracker.container(unique("up"))
    asker = api_client.create_container(
        busybox_image, "sleep 300", name=tracker.container(unique("asker")),
        host_config=api_client.create_host_config(network_mode=net),
        networking_config=api_client.create_networking_config(
            {net: api_client.create_endpoint_config(links=[(upstream, "bar")])}),
    )
    api_client.start(asker)
    assert api_client.inspect_container(asker)["NetworkSettings"]["Networks"][net]["Links"] == [f"{upstream}:bar"]
    up = api_client.create_container(busybox_image, "sleep 300", name=upstream,
                                     host_config=api_client.create_host_config(network_mode=net))
    api_client.start(up)
    up_ip = api_client.inspect_container(up)["NetworkSettings"]["Networks"][net]["IPAddress"]
    exec_id = api_client.exec_create(asker, ["nslookup", "bar"])
    out = api_client.exec_start(exec_id).decode()
    assert api_client.exec_inspect(exec_id)["ExitCode"] == 0, out
    assert up_ip in out


def test_reconnect_the_network_mode_network_with_aliases(box: Box) -> None:
    """Compose 1.29 creates the container on its network, disconnects it and connects it
    again with the service name as alias before starting it."""
    net = _network(box)
    web = box.name("web")
    box.ok("create", "--name", web, "--network", net, box.image, "sleep", "300")
    box.ok("network", "disconnect", net, web)
    assert box.inspect(web)["NetworkSettings"]["Networks"] == {}
    box.ok("network", "connect", "--alias", "websvc", net, web)
    # older API versions also list the short ID (and hostname): the configured alias comes first
    assert box.inspect(web)["NetworkSettings"]["Networks"][net]["Aliases"][0] == "websvc"
    box.ok("start", web)
    ip = box.inspect(web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    proc = box.run("--rm", box.image, "nslookup", "websvc", network=net)
    assert proc.returncode == 0 and ip in proc.stdout, proc.stdout + proc.stderr


def test_mac_and_link_local_addresses(api_client: docker.APIClient, tracker: ResourceTracker,
                                      busybox_image: str) -> None:
    net = tracker.network(unique("net"))
    api_client.create_network(net)
    ctr = api_client.create_container(
        busybox_image, "sleep 300", name=tracker.container(unique("mac")),
        host_config=api_client.create_host_config(network_mode="bridge"),
        networking_config=api_client.create_networking_config(
            {"bridge": api_client.create_endpoint_config(link_local_ips=["169.254.8.8"])}),
    )
    # the configuration is kept (which address a later start uses differs between Engine versions)
    api_client.connect_container_to_network(ctr, net, mac_address="02:42:ac:11:00:42")
    assert api_client.inspect_container(ctr)["NetworkSettings"]["Networks"][net]["MacAddress"] == "02:42:ac:11:00:42"
    api_client.start(ctr)
    networks = api_client.inspect_container(ctr)["NetworkSettings"]["Networks"]
    assert networks["bridge"]["IPAMConfig"]["LinkLocalIPs"] == ["169.254.8.8"]
    exec_id = api_client.exec_create(ctr, ["ip", "addr", "show", "eth0"])
    out = api_client.exec_start(exec_id).decode()
    assert "169.254.8.8/16" in out, out


def test_container_wide_mac_address(api_client: docker.APIClient, tracker: ResourceTracker,
                                    busybox_image: str) -> None:
    """docker-py sends ``Config.MacAddress`` (the CLI from 28 refuses it below API 1.44)."""
    ctr = api_client.create_container(busybox_image, ["sleep", "60"], mac_address="02:42:ac:11:00:0a",
                                      name=tracker.container(unique("mac")))
    api_client.start(ctr)
    assert api_client.inspect_container(ctr)["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:0a"
    exec_id = api_client.exec_create(ctr, ["cat", "/sys/class/net/eth0/address"])
    assert api_client.exec_start(exec_id).decode().strip() == "02:42:ac:11:00:0a"


@pytest.mark.parametrize("version", ["1.41", "1.44", "1.45"])
def test_inspect_aliases_list_the_short_id_below_api_1_45(
        docker_host: str, advertised: Advertised, tracker: ResourceTracker, busybox_image: str,
        version: str) -> None:
    """moby adds the short ID and hostname to a user-defined network's ``Aliases`` in inspect
    below API 1.45 (docker-py 7.1.0's ``test_run_with_networking_config`` checks it at 1.44)."""
    if APIVersion.parse(version) > advertised.max:
        pytest.skip(f"the engine serves API {advertised.api_version} at most")
    api = docker.APIClient(base_url=docker_host, version=version, timeout=60)
    try:
        net = tracker.network(unique("net"))
        api.create_network(net)
        ctr = api.create_container(
            busybox_image, ["sleep", "60"], name=tracker.container(unique("alias")),
            host_config=api.create_host_config(network_mode=net),
            networking_config=api.create_networking_config(
                {net: api.create_endpoint_config(aliases=["hello"])}))["Id"]
        api.start(ctr)
        aliases = api.inspect_container(ctr)["NetworkSettings"]["Networks"][net]["Aliases"]
    finally:
        api.close()
    if version == "1.45":
        assert aliases == ["hello"]
    else:
        assert aliases == ["hello", ctr[:12]]
