import pytest

from runtime.containers.codec import from_jsonable, to_jsonable
from runtime.containers.model import (
    ContainerConfig, HostConfig, LogConfig, PortBinding, new_id, validate_name,
)
from runtime.containers.names import generate_name
from runtime.errors import InvalidParameter


def test_new_id_shape() -> None:
    ids = {new_id() for _ in range(50)}
    assert len(ids) == 50
    for i in ids:
        assert len(i) == 64 and int(i, 16) >= 0 and not i[:12].isdigit()


@pytest.mark.parametrize("name", ["a1", "/web", "my_app.v2-1", "X9"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == "/" + name.lstrip("/")


@pytest.mark.parametrize("name", ["a", "bad name", "_x", "-x", "//x", "x/y", ""])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        validate_name(name)
    assert str(exc.value) == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_generated_names_are_valid() -> None:
    for retry in (0, 0, 1, 2):
        name = generate_name(retry)
        adjective, _, rest = name.partition("_")
        assert adjective and rest
        validate_name(name)


def test_codec_round_trip_keeps_none_vs_empty() -> None:
    cfg = ContainerConfig(env=(), cmd=None, labels={"a": "b"}, exposed_ports=("80/tcp",))
    hc = HostConfig(log_config=LogConfig("json-file", {"max-size": "1m"}),
                    port_bindings={"80/tcp": (PortBinding("", "8080"),)}, console_size=(24, 80))
    assert from_jsonable(ContainerConfig, to_jsonable(cfg)) == cfg
    assert from_jsonable(HostConfig, to_jsonable(hc)) == hc
    assert to_jsonable(cfg)["env"] == [] and to_jsonable(cfg)["cmd"] is None


def test_codec_is_lenient_with_nulls_and_unknown_keys_but_checks_types() -> None:
    cfg = from_jsonable(ContainerConfig, {"tty": None, "Bogus": 1, "user": "nobody"})
    assert cfg.tty is False and cfg.user == "nobody"
    with pytest.raises(InvalidParameter, match="cannot unmarshal string"):
        from_jsonable(ContainerConfig, {"tty": "yes"})
    with pytest.raises(InvalidParameter):
        from_jsonable(HostConfig, {"memory": True})


def test_codec_refuses_what_go_cannot_hold_with_go_text() -> None:
    from runtime.containers.codec import GoSchema

    go = GoSchema(structs={HostConfig: "container.HostConfig"}, fields={(HostConfig, "blkio_weight"): "uint16"})

    def error(data: object) -> str:
        with pytest.raises(InvalidParameter) as info:
            from_jsonable(HostConfig, data, lambda cls, n: n, "HostConfig", go=go, struct="CreateRequest")
        return str(info.value)

    assert error({"memory": 1 << 63}) == ("json: cannot unmarshal number 9223372036854775808 into Go struct "
                                          "field HostConfig.HostConfig.memory of type int64")
    assert error({"memory": 2.0}).startswith("json: cannot unmarshal number 2.0 into")
    assert error({"blkio_weight": 65536}).endswith("HostConfig.HostConfig.blkio_weight of type uint16")
    assert error({"binds": "x"}).endswith("of type []string")
    assert error("x") == ("json: cannot unmarshal string into Go struct field CreateRequest.HostConfig "
                          "of type container.HostConfig")
    assert from_jsonable(HostConfig, {"memory": -(1 << 63), "blkio_weight": 65535}, go=go).blkio_weight == 65535


def test_codec_quotes_the_number_as_the_client_wrote_it() -> None:
    class Literal(float):
        literal = "1e30"

    with pytest.raises(InvalidParameter, match="cannot unmarshal number 1e30 into Go value"):
        from_jsonable(int, Literal(1e30))  # type: ignore[type-var]
