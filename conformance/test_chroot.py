"""pydockerd started inside a chroot (pydockerd-only: the test starts daemons of its own).

The chroot is a directory with the host's system, Python and this checkout bind-mounted in,
built in a private mount namespace (``unshare --mount``) so nothing leaks to the host. With
the chroot directory made a mount point first (``mount --bind DIR DIR``) containers run and
``exec`` enters the container's own root, not the namespace's; without it the daemon
refuses to start and says why.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from conformance.conftest import Engine
from conformance.daemon import DaemonSettings, DaemonStartError, PydockerdProcess, free_test_bridge

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_dirs(workdir: Path) -> list[tuple[str, bool]]:
    """(host directory, writable) bind-mounted at the same path inside the chroot."""
    python_home = os.path.realpath(sys.base_prefix)
    dirs = [("/usr", False), ("/etc", False), (python_home, False), (str(REPO_ROOT), False),
            ("/proc", True), ("/sys", True), ("/dev", True),
            # /run: iptables' lock is shared with every other engine on this host
            ("/run", True), (str(workdir), True)]
    if os.path.realpath(sys.prefix) != python_home:
        dirs.append((os.path.realpath(sys.prefix), False))
    return dirs


def _launcher(root: Path, workdir: Path, make_mount_point: bool) -> list[str]:
    """``unshare`` + shell that builds the chroot and execs pydockerd in it ("$@": flags)."""
    lines = ["set -e", f"R={shlex.quote(str(root))}", 'mkdir -p "$R"']
    if make_mount_point:
        lines.append('mount --bind "$R" "$R"')
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            lines.append(f'ln -sfn {shlex.quote(os.readlink(host))} "$R/{name}"')
        elif host.is_dir():
            lines.append(f'mkdir -p "$R/{name}"; mount --rbind /{name} "$R/{name}"')
    for directory, writable in _shared_dirs(workdir):
        q = shlex.quote(directory)
        lines.append(f'mkdir -p "$R"{q}; mount --rbind {q} "$R"{q}')
        if not writable:
            lines.append(f'mount -o remount,bind,ro "$R"{q}')
    lines.append('mkdir -p "$R/tmp" "$R/var/lib"')
    lines.append(f'exec chroot "$R" /usr/bin/env PYTHONPATH={shlex.quote(str(REPO_ROOT))} '
                 f'{shlex.quote(sys.executable)} -m compat_api "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), "sh"]


@pytest.fixture
def chroot_daemon_settings(engine: Engine) -> Iterator[DaemonSettings]:
    if not engine.is_pydockerd:
        pytest.skip("starts pydockerd daemons of its own")
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    yield settings


def test_daemon_in_a_chroot_runs_containers_and_exec_sees_their_root(
        chroot_daemon_settings: DaemonSettings, busybox_tar: Path) -> None:
    settings = chroot_daemon_settings
    daemon = PydockerdProcess(settings, cwd=REPO_ROOT)
    settings.command = _launcher(daemon.workdir / "chroot", daemon.workdir, make_mount_point=True)
    daemon.start()
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest")
        cid = api.create_container(
            "busybox:latest", ["sh", "-c", "echo inside > /marker; sleep 300"],
            host_config=api.create_host_config(network_mode="none"))["Id"]
        api.start(cid)
        def exec_out(*cmd: str) -> bytes:
            return bytes(api.exec_start(api.exec_create(cid, list(cmd))["Id"]))

        assert exec_out("cat", "/marker") == b"inside\n"
        # neither the host's tree nor the chroot's (both hold this checkout)
        where = exec_out("sh", "-c", f"test -e {shlex.quote(str(REPO_ROOT))} && echo host || echo own")
        assert where == b"own\n"
        assert exec_out("cat", "/proc/1/cmdline") == b"sleep\x00300\x00"
        api.kill(cid)
        assert api.inspect_container(cid)["State"]["ExitCode"] == 137
        api.remove_container(cid)
    finally:
        daemon.stop()
        daemon.remove_dirs()


def test_daemon_in_a_chroot_that_is_no_mount_point_refuses_to_start(
        chroot_daemon_settings: DaemonSettings) -> None:
    settings = chroot_daemon_settings
    settings.start_timeout = 20
    daemon = PydockerdProcess(settings, cwd=REPO_ROOT)
    settings.command = _launcher(daemon.workdir / "chroot", daemon.workdir, make_mount_point=False)
    try:
        with pytest.raises(DaemonStartError) as refused:
            daemon.start()
        text = str(refused.value)
        assert "exited with code 1" in text
        assert "root directory is not a mount point" in text and "mount --bind" in text
    finally:
        daemon.stop()
        daemon.remove_dirs()
