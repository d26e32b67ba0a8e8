from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.network.etcfiles import (
    HEADER,
    ExtServer,
    ResolvConf,
    container_resolv_conf,
    hosts_content,
    own_host_names,
    parse_extra_hosts,
)

HOST = "nameserver 10.255.255.53\n"


def test_user_network_resolv_conf() -> None:
    text, ext = container_resolv_conf(HOST, "internal")
    assert text == (
        HEADER + "\n\n"
        "nameserver 127.0.0.11\n"
        "options ndots:0\n"
        "\n"
        "# Based on host file: '/etc/resolv.conf' (internal resolver)\n"
        "# ExtServers: [host(10.255.255.53)]\n"
        "# Overrides: []\n"
        "# Option ndots from: internal\n"
    )
    assert ext == [ExtServer("10.255.255.53", True)]


def test_default_bridge_drops_loopback_and_falls_back_to_google() -> None:
    text, ext = container_resolv_conf("nameserver 127.0.0.53\nnameserver ::1\nsearch lan\n", "legacy")
    assert text == (
        HEADER + "\n\n"
        "nameserver 8.8.8.8\n"
        "nameserver 8.8.4.4\n"
        "search lan\n"
        "\n"
        "# Based on host file: '/etc/resolv.conf' (legacy)\n"
        "# Used default nameservers.\n"
        "# Overrides: []\n"
    )
    assert ext == []


def test_default_bridge_keeps_routable_ipv4_only() -> None:
    text, _ = container_resolv_conf("nameserver 10.1.1.1\nnameserver fd00::53\n", "legacy")
    assert "nameserver 10.1.1.1\n\n" in text and "fd00" not in text


def test_overrides_on_user_network() -> None:
    text, ext = container_resolv_conf(HOST, "internal", dns=["1.1.1.1"], dns_search=["example.com", "."],
                                      dns_options=["ndots:2", "edns0"])
    assert "nameserver 127.0.0.11\nsearch example.com\noptions ndots:2 edns0\n" in text
    assert "# ExtServers: [1.1.1.1]\n# Overrides: [nameservers search options]\n# Option ndots from: override\n" in text
    assert ext == [ExtServer("1.1.1.1", False)]


def test_host_and_none_modes_keep_the_host_file() -> None:
    text, _ = container_resolv_conf("nameserver 127.0.0.53\noptions edns0 ndots:3\nsortlist 10.0.0.0\n", "host")
    assert text == (
        HEADER + "\n\n"
        "nameserver 127.0.0.53\n"
        "options edns0 ndots:3\n"
        "sortlist 10.0.0.0\n"
        "\n# Based on host file: '/etc/resolv.conf'\n# Overrides: []\n# Option ndots from: host\n"
    )


def test_invalid_nameserver_and_bad_ndots() -> None:
    rc = ResolvConf.parse("nameserver bogus\noptions ndots:-1\n")
    rc.transform_for_internal()
    out = rc.generate()
    assert "options ndots:0\n" in out and "ndots:-1" not in out
    assert "# Invalid nameservers: [bogus]\n" in out
    assert "# NO EXTERNAL NAMESERVERS DEFINED\n" in out


def test_hosts_content_with_ipv6_and_extras() -> None:
    text = hosts_content([("db", "10.0.0.9"), ("v6", "fd00::9")], ["172.17.0.2"], "abc123def456")
    assert text == (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::\tip6-localnet\n"
        "ff00::\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        "10.0.0.9\tdb\n"
        "fd00::9\tv6\n"
        "172.17.0.2\tabc123def456\n"
    )


def test_hosts_content_without_ipv6() -> None:
    text = hosts_content([("v6", "fd00::9")], ["172.17.0.2"], "web", "example.com", ipv6=False)
    assert text == "127.0.0.1\tlocalhost\n172.17.0.2\tweb.example.com web\n"


def test_own_host_names() -> None:
    assert own_host_names("web") == "web"
    assert own_host_names("web.example.com") == "web.example.com web"
    assert own_host_names("web", "corp") == "web.corp web"


def test_parse_extra_hosts() -> None:
    assert parse_extra_hosts(["a:1.2.3.4", "b:host-gateway", "c:::1", "d=[fd00::1]"], ["10.213.0.1"]) == [
        ("a", "1.2.3.4"), ("b", "10.213.0.1"), ("c", "::1"), ("d", "fd00::1"),
    ]
    with pytest.raises(InvalidParameter):
        parse_extra_hosts(["nocolon"], [])
    with pytest.raises(InvalidParameter):
        parse_extra_hosts(["a:notanip"], [])
    with pytest.raises(InvalidParameter, match="host-gateway"):
        parse_extra_hosts(["a:host-gateway"], [])
