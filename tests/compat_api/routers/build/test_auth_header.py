"""``X-Registry-Config`` of ``POST /build``: the credentials for the build's pulls."""

from __future__ import annotations

import base64
import json

from builder.engine import resolve_auth
from compat_api.routers.build.handlers import decode_auth_configs


def test_registry_credentials_from_x_registry_config() -> None:
    header = base64.urlsafe_b64encode(json.dumps({
        "https://index.docker.io/v1/": {"username": "hub", "password": "p1"},
        "127.0.0.1:5000": {"username": "local", "password": "p2"},
    }).encode()).decode().rstrip("=")
    configs = decode_auth_configs(header)
    assert resolve_auth(configs, "docker.io").credentials() == ("hub", "p1")
    assert resolve_auth(configs, "127.0.0.1:5000").credentials() == ("local", "p2")
    assert resolve_auth(configs, "example.com").is_empty
    assert decode_auth_configs("e30=") == {} and decode_auth_configs("%%%") == {}
