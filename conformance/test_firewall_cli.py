"""dockerd's firewall convention: an administrator's rule in ``DOCKER-USER`` is evaluated
before the engine's own rules (and, for pydockerd, survives a daemon restart).

The rules added here match only the test container's address and are removed afterwards;
traffic stays between containers on a network the engine made (container-to-container
traffic on a bridge crosses ``FORWARD`` when ``br_netfilter`` is loaded, as dockerd loads it).
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(180)

WWW = "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8000 -h /www"


def _bridge_nf() -> bool:
    try:
        return Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _needs_bridge_netfilter() -> None:
    if not _bridge_nf():
        pytest.skip("br_netfilter is not loaded: bridged traffic does not cross FORWARD")


@contextmanager
def user_rule(ip: str) -> Iterator[list[str]]:
    """An administrator's DOCKER-USER rule dropping TCP to ``ip`` port 8000."""
    spec = ["-d", f"{ip}/32", "-p", "tcp", "-m", "tcp", "--dport", "8000", "-j", "DROP"]
    subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", "1", *spec], check=True)
    try:
        yield spec
    finally:
        subprocess.run(["iptables", "-w", "-D", "DOCKER-USER", *spec], check=False)


def _forward_rules() -> list[str]:
    out = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("-A FORWARD")]


def _fetch(cli: DockerCLI, net: str, image: str, ip: str) -> subprocess.CompletedProcess[str]:
    # wget is not PID 1 (that would ignore timeout's SIGTERM); busybox wget -T crashes
    proc = cli("run", "--rm", "--network", net, image, "sh", "-c",
               f"timeout 5 wget -qO- http://{ip}:8000/ || exit 1", timeout=60)
    return proc  # type: ignore[return-value]


def test_docker_user_rule_takes_effect(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> None:
    box = Box(docker_cli, tracker, busybox_image)
    net = tracker.network(unique("net"))
    box.ok("network", "create", net)
    web = box.run_d("-p", "8000", busybox_image, "sh", "-c", WWW, network=net)
    ip = box.inspect(web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert _fetch(docker_cli, net, busybox_image, ip).stdout.strip() == "hello-from-web"
    assert "-A FORWARD -j DOCKER-USER" in _forward_rules()
    with user_rule(ip):
        assert _fetch(docker_cli, net, busybox_image, ip).returncode != 0
    assert _fetch(docker_cli, net, busybox_image, ip).stdout.strip() == "hello-from-web"


def _free_subnet() -> str:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    for n in random.sample(range(1, 250), 249):
        if f" 10.215.{n}." not in used:
            return f"10.215.{n}"
    pytest.skip("no free 10.215.x.0/24 subnet")


def test_docker_user_rule_survives_a_daemon_restart(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to restart")
    from conformance.daemon import DaemonSettings, PydockerdProcess, free_test_bridge

    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    daemon = PydockerdProcess(settings)
    daemon.start()
    prefix = _free_subnet()
    ip = f"{prefix}.10"
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest", changes=['CMD ["sh"]'])
        net = unique("net")
        api.create_network(net, ipam=docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet=f"{prefix}.0/24")]))
        web = api.create_container(
            "busybox:latest", ["sh", "-c", WWW], ports=[8000],
            host_config=api.create_host_config(network_mode=net, port_bindings={8000: ("127.0.0.1", None)}),
            networking_config=api.create_networking_config({net: api.create_endpoint_config(ipv4_address=ip)}),
        )["Id"]
        api.start(web)

        def fetch() -> int:
            cid = api.create_container("busybox:latest", ["sh", "-c", f"timeout 5 wget -qO- http://{ip}:8000/ || exit 1"],
                                       host_config=api.create_host_config(network_mode=net))["Id"]
            api.start(cid)
            code = int(api.wait(cid, timeout=60)["StatusCode"])
            api.remove_container(cid)
            return code

        assert fetch() == 0
        with user_rule(ip) as spec:
            assert fetch() != 0
            assert daemon.stop() == 0
            rules = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
            assert " ".join(spec) in rules
            daemon.start()
            api = docker.APIClient(base_url=daemon.host, version="auto")
            # DOCKER-USER before this daemon's own chain (its name derives from the data root)
            forward = _forward_rules()
            own = next(r for r in forward if r.startswith("-A FORWARD -j PYDOCKER-FWD-")
                       and r.endswith(hashlib.sha256(str(daemon.data_root).encode()).hexdigest()[:8]))
            assert forward.index("-A FORWARD -j DOCKER-USER") < forward.index(own)
            api.start(web)
            assert json.dumps(api.inspect_container(web)["NetworkSettings"]["Networks"][net]["IPAddress"]) == f'"{ip}"'
            assert fetch() != 0
        assert fetch() == 0
        api.remove_container(web, force=True)
        api.remove_network(net)
    finally:
        daemon.stop()
        daemon.remove_dirs()
