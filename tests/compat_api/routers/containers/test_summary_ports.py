"""``Ports`` of ``GET /containers/json`` from ``NetworkSettings.Ports``."""

from __future__ import annotations

from compat_api.convert.containers import summary_ports


def test_published_exposed_and_dual_stack_bindings() -> None:
    ports = {
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
        "7000/tcp": None,
        "9000/udp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
    }
    assert summary_ports(ports) == [
        {"PrivatePort": 7000, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 18080, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 9000, "PublicPort": 32768, "Type": "udp"},
        {"IP": "::", "PrivatePort": 9000, "PublicPort": 32768, "Type": "udp"},
    ]


def test_no_ports() -> None:
    assert summary_ports(None) == [] and summary_ports({}) == []
