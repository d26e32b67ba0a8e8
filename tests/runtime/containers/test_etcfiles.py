"""The /etc files a container has before the network service writes its own: rendered by
runtime.network.etcfiles, the one /etc/hosts and resolv.conf renderer (the container
package's copy wrote 20.10's ``fe00::0`` and kept loopback IPv6 nameservers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.containers.etcfiles import hosts_content, resolv_conf_content, write_etc_files
from runtime.containers.model import Container, ContainerConfig, HostConfig
from runtime.network.etcfiles import HEADER

DEFAULTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\n"
            "ff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def container(root: Path = Path("/nonexistent"), **host: object) -> Container:
    return Container(id="ab" * 32, name="/c", created_ns=1, path="sh", args=(),
                     config=ContainerConfig(hostname="web", domainname="example.com", image="busybox"),
                     host_config=HostConfig(**host), image_id="sha256:" + "1" * 64,  # type: ignore[arg-type]
                     root=root)


@pytest.mark.parametrize(("host", "host_hosts", "expected"), [
    ({}, "10.0.0.1 myhost\n", DEFAULTS),
    ({"network_mode": "bridge", "extra_hosts": ("x:1.1.1.1",)}, None, DEFAULTS),  # written at start
    ({"network_mode": "none"}, "10.0.0.1 myhost\n", DEFAULTS),
    ({"network_mode": "host"}, "10.0.0.1 myhost", "10.0.0.1 myhost\n"),
    ({"network_mode": "host"}, None, DEFAULTS),
])
def test_hosts(host: dict[str, object], host_hosts: str | None, expected: str) -> None:
    assert hosts_content(container(**host), host_hosts) == expected


@pytest.mark.parametrize(("host", "host_resolv", "nameservers"), [
    ({}, "nameserver 127.0.0.53\nnameserver ::1\n", ["8.8.8.8", "8.8.4.4"]),
    ({}, "nameserver 10.1.1.1\nnameserver fd00::53\n", ["10.1.1.1"]),
    ({"dns": ("9.9.9.9",)}, "nameserver 10.1.1.1\n", ["9.9.9.9"]),
    ({"network_mode": "host"}, "nameserver 127.0.0.53\n", ["127.0.0.53"]),
    ({"network_mode": "none"}, "nameserver 127.0.0.53\n", ["127.0.0.53"]),
])
def test_resolv_conf(host: dict[str, object], host_resolv: str, nameservers: list[str]) -> None:
    text = resolv_conf_content(container(**host), host_resolv)
    assert text.startswith(HEADER)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")] == nameservers


def test_search_and_options_overrides() -> None:
    text = resolv_conf_content(container(dns_search=("a.lan",), dns_options=("ndots:2",)),
                               "nameserver 10.1.1.1\nsearch other\n")
    assert "search a.lan\n" in text and "options ndots:2\n" in text and "other" not in text.split("#")[0]


def test_write_etc_files(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 10.1.1.1\n")
    c = container(tmp_path / "c")
    c.root.mkdir()
    write_etc_files(c, tmp_path / "etc")
    assert c.hostname_path.read_text() == "web\n"
    assert c.hosts_path.read_text() == DEFAULTS
    assert "nameserver 10.1.1.1\n" in c.resolv_conf_path.read_text()
    assert oct(c.hosts_path.stat().st_mode & 0o777) == "0o644"
