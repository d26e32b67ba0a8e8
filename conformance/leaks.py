"""What a pydockerd run leaves on the host, attributed to that daemon.

:class:`RunWitness` follows the daemon's event stream for the whole run and notes every
container and network it created. After the daemon has stopped, :func:`leftovers` lists
what is still there and belongs to the run: cgroup directories of its containers (every
hierarchy, systemd scopes included), processes in them or under its exec root (the
supervisor), mounts below its directories, its networks' bridges and the veths on them or
on its default bridge, firewall rules naming its chains or bridges, and files in its
temporary directories. Anything other engines or developers do on the host meanwhile is
not named by these, so the list is empty for a clean run whatever else happens.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from runtime.network.firewall import daemon_tag

CGROUP_ROOT = Path("/sys/fs/cgroup")
_ID = re.compile(r"^(?:docker-)?([0-9a-f]{64})(?:\.scope)?$")


@dataclass
class RunWitness:
    """Reads ``GET /events`` from the daemon's socket in a thread until the daemon stops."""

    socket_path: Path
    containers: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(self.socket_path))
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
        self._thread = threading.Thread(target=self._read, args=(sock,), name="leak-witness", daemon=True)
        self._thread.start()

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        with sock:
            while chunk := sock.recv(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._note(line.strip())

    def _note(self, line: bytes) -> None:
        if not line.startswith(b"{"):
            return  # headers and chunk sizes
        try:
            event = json.loads(line)
        except ValueError:
            return
        actor = str((event.get("Actor") or {}).get("ID") or "")
        if event.get("Type") == "container" and event.get("Action") == "create":
            self.containers.add(actor)
        elif event.get("Type") == "network" and event.get("Action") == "create":
            self.networks.add(actor)

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def _cgroup_leftovers(containers: set[str]) -> list[str]:
    found = []
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        for name in dirnames:
            match = _ID.match(name)
            if match and match.group(1) in containers:
                found.append(f"cgroup {dirpath}/{name}")
    return sorted(found)


def _process_leftovers(containers: set[str], exec_root: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cgroups = (proc / "cgroup").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(exec_root) in cmdline or any(cid in cgroups for cid in containers):
            found.append(f"process {proc.name}: {cmdline.strip()[:120]}")
    return found


def _mount_leftovers(workdir: Path) -> list[str]:
    prefix = str(workdir) + "/"
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return [f"mount {line.split()[4]}" for line in mounts if line.split()[4].startswith(prefix)]


def _link_leftovers(bridges: set[str]) -> list[str]:
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                                      check=True).stdout)
    found = []
    for link in links:
        name, master = link["ifname"], link.get("master", "")
        if name in bridges:
            found.append(f"bridge {name}")
        elif master in bridges:
            found.append(f"interface {name} on bridge {master}")
    return found


def _firewall_leftovers(tag: str) -> list[str]:
    """Rules in, or jumping to, the daemon's own chains (``PYDOCKER-*-<tag>``): another
    engine's rules may name the same bridge (a second session that drew the same test
    bridge), and DOCKER-USER is the administrator's, kept on purpose."""
    found = []
    for tool in ("iptables-save", "ip6tables-save"):
        try:
            text = subprocess.run([tool], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in text.splitlines():
            words = re.split(r"[\s:]+", line)
            if any(w.startswith("PYDOCKER") and w.endswith(tag) for w in words):
                found.append(f"{tool}: {line}")
    return found


def _tmp_leftovers(data_root: Path) -> list[str]:
    found = []
    for tmp in (data_root / "tmp", data_root / "image" / "tmp", data_root / "overlay2" / "tmp"):
        if tmp.is_dir():
            found.extend(f"temporary file {p}" for p in tmp.iterdir())
    return found


def leftovers(witness: RunWitness, workdir: Path, data_root: Path, exec_root: Path,
              default_bridge: str) -> list[str]:
    """What the stopped daemon left behind (empty for a clean run)."""
    witness.join()
    bridges = {default_bridge, *(f"br-{net[:12]}" for net in witness.networks)}
    # the default bridge outlives the daemon on purpose (as docker0); what hangs on it does not
    return [
        *_cgroup_leftovers(witness.containers),
        *_process_leftovers(witness.containers, exec_root),
        *_mount_leftovers(workdir),
        *[item for item in _link_leftovers(bridges) if item != f"bridge {default_bridge}"],
        *_firewall_leftovers(daemon_tag(data_root)),
        *_tmp_leftovers(data_root),
    ]


__all__ = ["RunWitness", "leftovers"]
