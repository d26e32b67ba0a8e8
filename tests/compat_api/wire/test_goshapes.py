from __future__ import annotations

import json

import pytest

from compat_api.params import _LiteralFloat, _LiteralInt
from compat_api.wire.goshapes import NETWORK_CONNECT, NETWORK_CREATE, NETWORKING_CONFIG, check_body
from runtime.errors import InvalidParameter


def _body(text: str) -> object:
    return json.loads(text, parse_int=_LiteralInt.parse, parse_float=_LiteralFloat.parse)


@pytest.mark.parametrize(("shape", "text", "message"), [
    (NETWORK_CREATE, '{"Internal": "yes"}',
     "json: cannot unmarshal string into Go struct field CreateRequest.Internal of type bool"),
    (NETWORK_CREATE, '{"IPAM": {"Config": [{"Subnet": 5}]}}',
     "json: cannot unmarshal number into Go struct field IPAMConfig.IPAM.Config.Subnet of type string"),
    (NETWORK_CONNECT, '{"EndpointConfig": {"GwPriority": 1e30}}',
     "json: cannot unmarshal number 1e30 into Go struct field EndpointSettings.EndpointConfig.GwPriority of type int"),
    (NETWORK_CONNECT, '[1]', "json: cannot unmarshal array into Go value of type network.ConnectOptions"),
])
def test_wrong_shapes_get_go_text(shape: object, text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        check_body(_body(text), shape)  # type: ignore[arg-type]
    assert str(info.value) == "invalid JSON: " + message


def test_nulls_unknown_keys_and_any_key_case_are_fine() -> None:
    check_body(_body('{"internal": true, "IPAM": null, "Bogus": [1], "labels": {"a": "b"}}'), NETWORK_CREATE)
    check_body(_body('{"EndpointsConfig": {"n": {"aliases": ["a"], "GwPriority": -5}}}'), NETWORKING_CONFIG)
