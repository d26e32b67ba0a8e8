"""go-connections ``nat`` as Docker reads port specs: the one parser that EXPOSE, port
bindings, links and the published-port keys share."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.network.contract import PortBindingSpec
from runtime.ports import (
    expose_specs, parse_port, parse_port_range, port_key, split_proto_port, validate_port_bindings,
)


@pytest.mark.parametrize(("text", "port"), [("", 0), ("0", 0), ("80", 80), ("65535", 65535), ("0080", 80)])
def test_parse_port(text: str, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize("text", ["65536", "70000", "-1", "+80", " 80", "8o", "80-81", "0x50"])
def test_not_ports(text: str) -> None:
    with pytest.raises(ValueError):
        parse_port(text)


@pytest.mark.parametrize(("text", "span"), [("80", (80, 80)), ("8000-8001", (8000, 8001)), ("5-5", (5, 5))])
def test_parse_port_range(text: str, span: tuple[int, int]) -> None:
    assert parse_port_range(text) == span


@pytest.mark.parametrize("text", ["", "9-8", "1-70000", "-5", "5-", "a-b", "99999"])
def test_not_port_ranges(text: str) -> None:
    with pytest.raises(ValueError):
        parse_port_range(text)


@pytest.mark.parametrize(("raw", "split"), [
    ("80/tcp", ("tcp", "80")), ("80", ("tcp", "80")), ("80/", ("tcp", "80")), ("53/UDP", ("UDP", "53")),
    ("", ("", "")), ("/tcp", ("", "")),
])
def test_split_proto_port(raw: str, split: tuple[str, str]) -> None:
    assert split_proto_port(raw) == split


@pytest.mark.parametrize(("raw", "key"), [("80/tcp", (80, "tcp")), ("80", (80, "tcp")), ("53/UDP", (53, "udp"))])
def test_port_key(raw: str, key: tuple[int, str]) -> None:
    assert port_key(raw) == key


@pytest.mark.parametrize("raw", ["", "/tcp", "70000/tcp", "8000-8001/tcp", "x/udp"])
def test_not_port_keys(raw: str) -> None:
    with pytest.raises(ValueError):
        port_key(raw)


@pytest.mark.parametrize(("ports", "keys"), [
    (["80"], ["80/tcp"]),
    (["80/udp", "53/UDP"], ["80/udp", "53/udp"]),
    (["8000-8002/tcp"], ["8000/tcp", "8001/tcp", "8002/tcp"]),
    (["90-91/udp"], ["90/udp", "91/udp"]),
    (["7/sctp"], ["7/sctp"]),
])
def test_expose_specs(ports: list[str], keys: list[str]) -> None:
    assert expose_specs(ports) == keys


@pytest.mark.parametrize(("port", "message"), [
    ("80/bogus", "Invalid proto: bogus"),
    ("70000", "Invalid containerPort: 70000"),
    ("abc", "Invalid containerPort: abc"),
    ("9-8/tcp", "Invalid containerPort: 9-8"),
])
def test_expose_errors(port: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        expose_specs([port])
    assert str(caught.value) == message


@pytest.mark.parametrize("bindings", [
    {}, {"80/tcp": None}, {"80/tcp": [PortBindingSpec()]}, {"80/bogus": [PortBindingSpec(host_port="8080")]},
    {"80": [PortBindingSpec(host_port="8000-8001")]}, {"80/tcp": [PortBindingSpec(host_port="8080/tcp")]},
])
def test_valid_port_bindings(bindings: dict[str, list[PortBindingSpec] | None]) -> None:
    validate_port_bindings(bindings)


@pytest.mark.parametrize(("bindings", "message"), [
    ({"8o/tcp": [PortBindingSpec(host_port="80")]}, 'invalid port specification: "8o"'),
    ({"70000/tcp": None}, 'invalid port specification: "70000"'),
    ({"8000-8001/tcp": None}, 'invalid port specification: "8000-8001"'),
    ({"80/tcp": [PortBindingSpec(host_port="99999")]}, 'invalid port specification: "99999"'),
    ({"80/tcp": [PortBindingSpec(host_port="9-8")]}, 'invalid port specification: "9-8"'),
])
def test_invalid_port_bindings(bindings: dict[str, list[PortBindingSpec] | None], message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        validate_port_bindings(bindings)
    assert str(caught.value) == message
