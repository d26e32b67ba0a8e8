"""The pydockerd process itself: socket, lock, pidfile, signals, refused listeners."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _start(tmp: Path, *extra: str, sock: Path | None = None) -> subprocess.Popen[bytes]:
    sock = sock or tmp / "d.sock"
    args = [sys.executable, "-m", "compat_api", "-H", f"unix://{sock}",
            "--data-root", str(tmp / "data"), "--exec-root", str(tmp / "exec"),
            "--config-file", str(tmp / "daemon.json"),
            # never the host's docker0: a real dockerd may own it
            "--bridge", "pydtu0", "--bip", "10.213.250.1/24", *extra]
    (tmp / "daemon.json").write_text("{}")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"daemon exited early: {out}")
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(path))
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(4096).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError("daemon did not come up")


@pytest.fixture(autouse=True, scope="module")
def _test_bridge_removed() -> Iterator[None]:
    """The daemons here create the default bridge pydtu0 and, as dockerd leaves docker0,
    keep it when they stop: remove it after the module unless it was there before."""
    existed = Path("/sys/class/net/pydtu0").exists()
    yield
    if not existed:
        subprocess.run(["ip", "link", "del", "pydtu0"], capture_output=True, check=False)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer
    import tempfile
    import shutil

    d = Path(tempfile.mkdtemp(prefix="pyd", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_socket_mode_pidfile_and_clean_sigterm(short_tmp: Path) -> None:
    pidfile = short_tmp / "d.pid"
    proc = _start(short_tmp, "--pidfile", str(pidfile))
    sock = short_tmp / "d.sock"
    try:
        _wait_for_socket(sock, proc)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        assert pidfile.read_text().strip() == str(proc.pid)
        assert stat.S_IMODE((short_tmp / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((short_tmp / "exec").stat().st_mode) == 0o700
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert not sock.exists()
    assert not pidfile.exists()


def test_second_daemon_on_same_data_root_is_refused(short_tmp: Path) -> None:
    first = _start(short_tmp)
    try:
        _wait_for_socket(short_tmp / "d.sock", first)
        second = _start(short_tmp, sock=short_tmp / "other.sock")
        out, _ = second.communicate(timeout=15)
        assert second.returncode == 1
        assert b"already using data root" in out
        assert (short_tmp / "d.sock").exists()
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=15) == 0


def test_plain_tcp_on_public_address_is_refused(short_tmp: Path) -> None:
    proc = _start(short_tmp, "-H", "tcp://0.0.0.0:23750")
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert b"refusing to listen on tcp://0.0.0.0:23750 without --tlsverify" in out


def test_plain_tcp_on_loopback_serves(short_tmp: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _start(short_tmp, "-H", f"tcp://127.0.0.1:{port}")
    try:
        _wait_for_socket(short_tmp / "d.sock", proc)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"OK")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon needs root")
def test_daemon_json_conflict_exits_with_message(short_tmp: Path) -> None:
    (short_tmp / "conf.json").write_text('{"bridge": "br-x"}')
    proc = subprocess.run(
        [sys.executable, "-m", "compat_api", "--config-file", str(short_tmp / "conf.json"),
         "--bridge", "br-y", "-H", f"unix://{short_tmp}/x.sock"],
        capture_output=True, timeout=15,
    )
    assert proc.returncode == 1
    assert b"specified both as a flag and in the configuration file: bridge" in proc.stderr
