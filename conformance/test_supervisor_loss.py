"""A supervisor killed under a running daemon is replaced at once. What it ran is nobody's
child any more, so those containers are killed and recorded as exited (255) instead of
showing ``Up`` for good; restart policies resume; starts, runs and execs work again; and no
container process is left running where no API call can see it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import docker
import pytest

from conformance.conftest import Engine
from conformance.daemon import own_pydockerd, process_alive

pytestmark = pytest.mark.timeout(120)


def test_killed_supervisor_is_replaced_and_its_containers_accounted(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own")
    with own_pydockerd("pydts", 184) as daemon:
        api = docker.APIClient(base_url=daemon.host, version="auto", timeout=30)
        api.import_image_from_data(busybox_tar.read_bytes(), repository="busybox", tag="latest",
                                   changes=['CMD ["sh"]'])
        no_net = {"network_mode": "none"}
        always = api.create_container("busybox:latest", ["sleep", "300"], host_config=api.create_host_config(
            restart_policy={"Name": "always"}, **no_net))["Id"]
        plain = api.create_container("busybox:latest", ["sleep", "300"],
                                     host_config=api.create_host_config(**no_net))["Id"]
        api.start(always)
        api.start(plain)
        old_always = api.inspect_container(always)["State"]["Pid"]
        old_plain = api.inspect_container(plain)["State"]["Pid"]
        supervisor = int((daemon.exec_root / "supervisor" / "supervisor.pid").read_text())
        os.kill(supervisor, signal.SIGKILL)

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = api.inspect_container(plain)["State"]
            again = api.inspect_container(always)["State"]
            if state["Status"] == "exited" and again["Status"] == "running" and again["Pid"] not in (0, old_always):
                break
            time.sleep(0.2)
        state = api.inspect_container(plain)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 255, state
        again = api.inspect_container(always)["State"]
        assert again["Status"] == "running" and again["Pid"] not in (0, old_always), again
        assert api.inspect_container(always)["RestartCount"] >= 1
        assert not process_alive(old_plain) and not process_alive(old_always), "a container process outlived its supervisor"
        new_supervisor = int((daemon.exec_root / "supervisor" / "supervisor.pid").read_text())
        assert new_supervisor != supervisor and process_alive(new_supervisor)

        # the engine works again: a run to completion, an exec, a stop
        cid = api.create_container("busybox:latest", ["echo", "ok"], host_config=api.create_host_config(**no_net))["Id"]
        api.start(cid)
        assert api.wait(cid, timeout=30)["StatusCode"] == 0
        assert api.logs(cid) == b"ok\n"
        exec_id = api.exec_create(always, ["echo", "inside"])["Id"]
        assert api.exec_start(exec_id) == b"inside\n"
        api.stop(always, timeout=1)
        for c in (always, plain, cid):
            api.remove_container(c, force=True)
