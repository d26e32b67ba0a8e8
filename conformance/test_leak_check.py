"""The leak check that runs around the suite (conformance/leaks.py) sees a leak: a daemon
killed with SIGKILL while a container runs leaves its cgroups, its container process, the
supervisor, the veth and its firewall rules, and the check names each of them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import docker
import pytest

from conformance.conftest import Engine
from conformance.daemon import own_pydockerd
from conformance.leaks import RunWitness, leftovers

pytestmark = pytest.mark.timeout(120)


def test_a_killed_daemon_leaves_what_the_check_names(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to kill")
    with own_pydockerd("pydtl", 186) as daemon:
        settings = daemon.settings
        witness = RunWitness(daemon.socket_path)
        witness.start()
        try:
            api = docker.APIClient(base_url=daemon.host, version="auto")
            with open(busybox_tar, "rb") as f:
                api.import_image_from_data(f.read(), repository="busybox", tag="latest", changes=['CMD ["sh"]'])
            container = api.create_container("busybox:latest", ["sleep", "300"],
                                             host_config=api.create_host_config(port_bindings={80: None}))["Id"]
            api.start(container)
            deadline = time.monotonic() + 5
            while container not in witness.containers and time.monotonic() < deadline:
                time.sleep(0.05)
            assert daemon.proc is not None
            daemon.proc.kill()  # nothing is cleaned up
            daemon.proc.wait()
            found = leftovers(witness, daemon.workdir, daemon.data_root, daemon.exec_root, settings.bridge)
            text = "\n".join(found)
            assert f"/{container}" in text or f"docker-{container}.scope" in text  # its cgroup
            assert "process" in text and "sleep 300" in text
            assert str(daemon.exec_root) in text  # the supervisor
            assert f"on bridge {settings.bridge}" in text  # the veth
            assert "iptables-save" in text  # its chains and the DNAT of the published port
        finally:
            daemon.stop()
            daemon.remove_dirs()  # kills the supervisor's children
            # what remains once the container is gone: cgroups and rules of a killed daemon are
            # the next start's to reconcile; this test cleans them itself
            for item in leftovers(witness, daemon.workdir, daemon.data_root, daemon.exec_root, settings.bridge):
                if item.startswith("cgroup "):
                    subprocess.run(["rmdir", item.split(" ", 1)[1]], capture_output=True)
            _drop_chains(daemon.data_root)


def _drop_chains(data_root: Path) -> None:
    from runtime.network.firewall import daemon_tag

    tag = daemon_tag(data_root)
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
        for rule in rules.splitlines():
            if rule.startswith("-A ") and tag in rule and not rule.split()[1].startswith("PYDOCKER"):
                subprocess.run(["iptables", "-t", table, "-D", *rule.split()[1:]], capture_output=True)
        for chain in {w for w in rules.split() if w.startswith("PYDOCKER") and tag in w}:
            subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)
