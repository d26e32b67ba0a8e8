"""Parsing volume requests of containers (dockerd's linux parser rules and texts, as the
reference daemon answers them)."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.containers.mountspec import (
    VolumeSpec, is_volume_bind, parse_volume_bind, parse_volume_mount, parse_volumes_from,
    read_write, valid_mode,
)


def test_valid_modes() -> None:
    for mode in ("", "ro", "rw", "z", "ro,Z", "nocopy", "rw,nocopy,z", "cached", "rshared"):
        assert valid_mode(mode), mode
    for mode in ("foo", "ro,rw", "z,Z", "ro,,z", "private,shared"):
        assert not valid_mode(mode), mode
    assert read_write("") and read_write("z") and not read_write("ro,z")


def test_is_volume_bind() -> None:
    assert is_volume_bind("data:/d") and is_volume_bind("/anon") and is_volume_bind("/x:ro")
    assert is_volume_bind("a$b:/d")
    assert not is_volume_bind("/host:/d") and not is_volume_bind("/host:/d:ro")
    assert not is_volume_bind(":/d")


def test_parse_volume_bind_forms() -> None:
    assert parse_volume_bind("data:/d") == VolumeSpec("data", "/d", True, "")
    assert parse_volume_bind("data:/d/:ro,nocopy") == VolumeSpec(
        "data", "/d", False, "ro,nocopy", copy_data=False)
    assert parse_volume_bind("/anon") == VolumeSpec("", "/anon")
    assert parse_volume_bind("data:/d", "local").driver == "local"


@pytest.mark.parametrize(("raw", "message"), [
    ("vol:data", "invalid volume specification: 'vol:data': invalid mount config for type "
                 "\"volume\": invalid mount path: 'data' mount path must be absolute"),
    ("vol:/", "invalid volume specification: 'vol:/': invalid mount config for type "
              "\"volume\": invalid specification: destination can't be '/'"),
    ("/data:ro", "invalid volume specification: '/data:ro'"),
    ("vol:/x:rshared", "invalid volume specification: 'vol:/x:rshared': invalid mount config "
                       "for type \"volume\": field BindOptions must not be specified"),
    ("vol:/x:foo", "invalid mode: foo"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
])
def test_parse_volume_bind_errors(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_volume_bind(raw)
    assert str(err.value) == message


def test_parse_volume_mount() -> None:
    spec = parse_volume_mount("/m/", "data", True, {
        "NoCopy": True, "Labels": {"a": "b"},
        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}})
    assert spec == VolumeSpec("data", "/m", False, "", "local", False,
                              {"type": "tmpfs", "device": "tmpfs"}, {"a": "b"})
    assert parse_volume_mount("/anon", "", False, None) == VolumeSpec("", "/anon")
    with pytest.raises(InvalidParameter, match='field BindOptions must not be specified'):
        parse_volume_mount("/m", "x", False, None, ("BindOptions",))
    with pytest.raises(InvalidParameter, match="field Target must not be empty"):
        parse_volume_mount("", "x", False, None)


def test_parse_volumes_from() -> None:
    assert parse_volumes_from("web") == ("web", "rw")
    assert parse_volumes_from("web:ro") == ("web", "ro")
    for bad, message in (("", "volumes-from specification cannot be an empty string"),
                         ("web:rshared", "invalid mode: rshared"),
                         ("web:nocopy", "invalid mode: nocopy"), ("web:xx", "invalid mode: xx")):
        with pytest.raises(InvalidParameter) as err:
            parse_volumes_from(bad)
        assert str(err.value) == message
