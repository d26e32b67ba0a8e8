"""Networks through docker-py 7.1: networks.create/get/list/remove/prune, Network.connect and
disconnect, containers with ``network=`` and ``ports=``; and (pydockerd only) a daemon killed
with SIGKILL leaves nothing behind once restarted."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from conformance.conftest import Engine
from conformance.containerkit import unique
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

WWW = "mkdir -p /www && echo hello-sdk > /www/index.html && exec httpd -f -p 8000 -h /www"


def test_networks_create_get_list_remove(client: docker.DockerClient, tracker: ResourceTracker) -> None:
    name = tracker.network(unique("sdknet"))
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.213.160.0/24",
                                                                         gateway="10.213.160.1")])
    net = client.networks.create(name, driver="bridge", ipam=ipam, labels={"sdk": "yes"})
    assert net.name == name and len(net.id) == 64
    got = client.networks.get(name)
    assert got.id == net.id
    assert got.attrs["IPAM"]["Config"] == [{"Subnet": "10.213.160.0/24", "Gateway": "10.213.160.1"}]
    assert got.attrs["Labels"] == {"sdk": "yes"}
    assert [n.id for n in client.networks.list(names=[name])] == [net.id]
    assert net.id in [n.id for n in client.networks.list(filters={"label": "sdk=yes"})]
    with pytest.raises(docker.errors.APIError) as dup:
        # dockerd >= 25 always refuses a duplicate name; older ones only when asked to check
        client.networks.create(name, check_duplicate=True)
    assert dup.value.status_code == 409
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)


def test_networks_prune(client: docker.DockerClient, tracker: ResourceTracker) -> None:
    name = tracker.network(unique("sdknet"))
    client.networks.create(name, labels={"sdk-prune": "1"})
    report = client.networks.prune(filters={"label": "sdk-prune=1"})
    assert report["NetworksDeleted"] == [name]


def test_connect_disconnect_and_run_with_network(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    net = client.networks.create(tracker.network(unique("sdknet")))
    server = client.containers.run(busybox_image, ["sleep", "60"], detach=True,
                                   name=tracker.container(unique("sdk")), network=net.name)
    out = client.containers.run(busybox_image, ["ping", "-c", "1", "-W", "3", server.name],
                                remove=True, network=net.name)
    assert b"1 packets received" in out
    other = client.containers.run(busybox_image, ["sleep", "60"], detach=True,
                                  name=tracker.container(unique("sdk")))
    net.connect(other, aliases=["sidecar"])
    other.reload()
    assert net.name in other.attrs["NetworkSettings"]["Networks"]
    net.reload()
    assert {c.name for c in net.containers} == {server.name, other.name}
    out = client.containers.run(busybox_image, ["ping", "-c", "1", "-W", "3", "sidecar"],
                                remove=True, network=net.name)
    assert b"1 packets received" in out
    net.disconnect(other)
    other.reload()
    assert net.name not in other.attrs["NetworkSettings"]["Networks"]
    with pytest.raises(docker.errors.APIError) as busy:
        net.remove()
    assert "has active endpoints" in str(busy.value)


def test_run_with_ports(client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = client.containers.run(busybox_image, ["sh", "-c", WWW], detach=True,
                              name=tracker.container(unique("sdk")), ports={"8000/tcp": ("127.0.0.1", port)})
    c.reload()
    assert c.ports == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    deadline = time.monotonic() + 20
    data = b""
    while time.monotonic() < deadline and b"hello-sdk" not in data:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
        except OSError:
            time.sleep(0.2)
    assert data.endswith(b"hello-sdk\n")


# -- raw HTTP -----------------------------------------------------------------------------


def test_raw_list_alias_shapes_and_errors(raw: RawHTTP, tracker: ResourceTracker) -> None:
    from conformance.spec import load_spec

    listed = raw.get("/networks")
    assert listed.status == 200
    def by_id(nets: list[dict[str, object]]) -> list[str]:
        return sorted(str(n["Id"]) for n in nets)  # dockerd lists in map order

    assert by_id(raw.get("/networks/").json()) == by_id(listed.json())  # moby's unlisted alias
    spec = set(load_spec()["definitions"]["Network"]["properties"])
    bridge = next(n for n in listed.json() if n["Name"] == "bridge")
    assert spec - set(bridge) <= {"Peers", "EnableIPv4"}  # EnableIPv4 arrived with dockerd 28
    name = tracker.network(unique("rawnet"))
    created = raw.post("/networks/create", json_body={"Name": name, "CheckDuplicate": True})
    assert created.status == 201 and set(created.json()) == {"Id", "Warning"}
    dup = raw.post("/networks/create", json_body={"Name": name, "CheckDuplicate": True})
    assert dup.status == 409 and dup.error_message() == f"network with name {name} already exists"
    assert raw.get(f"/networks/{name}").json()["Id"] == created.json()["Id"]
    missing = raw.get("/networks/no-such-net-here")
    assert missing.status == 404 and missing.error_message() == "network no-such-net-here not found"
    bad = raw.get('/networks?filters={"bogus":["x"]}')
    assert bad.status == 400 and "bogus" in bad.error_message()
    rm_pre = raw.delete("/networks/none")
    assert rm_pre.status == 403 and rm_pre.error_message() == "none is a pre-defined network and cannot be removed"
    assert raw.delete(f"/networks/{name}").status == 204


# -- crash recovery (pydockerd only: needs its own daemon) ----------------------------------


def _bridge_ports(bridge: str) -> set[str]:
    try:
        return {p.name for p in Path(f"/sys/class/net/{bridge}/brif").iterdir()}
    except FileNotFoundError:
        return set()


def _rules_mentioning(word: str) -> list[str]:
    out = "".join(subprocess.run(["iptables", "-w", "-t", t, "-S"], capture_output=True, text=True).stdout
                  for t in ("filter", "nat"))
    return [line for line in out.splitlines() if word in line]


def _kill_processes_under(path: Path) -> None:
    """SIGKILL the processes whose command line names ``path`` (the supervisor our daemon
    spawned for its exec root), by pid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            try:
                os.kill(int(entry.name), 9)
            except ProcessLookupError:
                pass


def test_sigkill_and_restart_leaves_nothing_stale(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to kill")
    from conformance.daemon import DaemonSettings, PydockerdProcess

    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = "pydtk" + os.urandom(2).hex(), "10.213.170.1/24"
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest", changes=['CMD ["sh"]'])
        net = api.create_network("crashnet")["Id"]
        bridge = f"br-{net[:12]}"
        host_config = api.create_host_config(network_mode="crashnet")
        survivor = api.create_container("busybox:latest", ["sleep", "300"], host_config=host_config)["Id"]
        victim = api.create_container("busybox:latest", ["sleep", "300"], host_config=host_config)["Id"]
        api.start(survivor)
        api.start(victim)
        victim_ip = api.inspect_container(victim)["NetworkSettings"]["Networks"]["crashnet"]["IPAddress"]
        victim_pid = api.inspect_container(victim)["State"]["Pid"]
        assert len(_bridge_ports(bridge)) == 2
        assert _rules_mentioning(bridge)
        assert daemon.proc is not None
        daemon.proc.kill()  # SIGKILL: the daemon cleans up nothing
        daemon.proc.wait()
        os.kill(victim_pid, 9)  # a container that dies while no daemon watches
        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto")
        deadline = time.monotonic() + 10
        while len(_bridge_ports(bridge)) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_bridge_ports(bridge)) == 1  # the victim's veth is gone, the survivor's stays
        members = api.inspect_network(net)["Containers"]
        assert list(members) == [survivor]
        # the victim's address was freed: the next container gets it (first free address)
        fresh = api.create_container("busybox:latest", ["sleep", "300"], host_config=host_config)["Id"]
        api.start(fresh)
        assert api.inspect_container(fresh)["NetworkSettings"]["Networks"]["crashnet"]["IPAddress"] == victim_ip
        for cid in (survivor, victim, fresh):
            api.remove_container(cid, force=True)
        api.remove_network(net)
        assert not Path(f"/sys/class/net/{bridge}").exists()
        # the re-adopted survivor's cgroups went with it, as the others' did
        from conformance.leaks import _cgroup_leftovers
        assert _cgroup_leftovers({survivor, victim, fresh}) == []
    finally:
        daemon.stop()
        _kill_processes_under(daemon.exec_root)
        daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)
    # a clean stop removes every rule the daemon added, the default bridge's included
    assert _rules_mentioning(settings.bridge) == [] and _rules_mentioning("crashnet") == []
