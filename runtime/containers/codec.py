"""Generic conversion between frozen domain dataclasses and JSON-able values.

Used twice: to persist container records (snake_case keys, our own on-disk format) and by
``compat_api.convert`` to read and render Docker's PascalCase wire shapes (with a name
mapping). Decoding is driven by the dataclass type hints and is lenient like dockerd's
JSON decoding: unknown keys are ignored and a JSON ``null`` means "use the default"; and
strict where Go's is: a value of the wrong JSON type, or a number that its Go integer type
cannot hold (a fraction, an exponent, out of range), is refused with Go's own text, so
nothing is stored that the CLI could not read back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar, Union

from runtime.errors import InvalidParameter

T = TypeVar("T")

NameMap = Callable[[type, str], str]
"""(dataclass type, field name) -> key used in JSON."""


def identity_name(cls: type, name: str) -> str:
    return name


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_SCALARS = frozenset({str, int, bool, float, type(None)})
# (dataclass, name map) -> its (attribute, key) pairs: ``name`` must be a pure function
_PLANS: dict[tuple[type, NameMap], tuple[tuple[str, str], ...]] = {}


def to_jsonable(value: Any, name: NameMap = identity_name) -> Any:
    """Dataclasses become dicts (keys via ``name``), tuples lists, mappings dicts.

    Hot (every inspect renders a container's config this way): each dataclass's keys are
    worked out once per name map."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    plan = _PLANS.get((cls, name))
    if plan is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        plan = tuple((f.name, name(cls, f.name)) for f in dataclasses.fields(value))
        _PLANS[(cls, name)] = plan
    if plan is not None:
        return {key: to_jsonable(getattr(value, attr), name) for attr, key in plan}
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, name) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class GoSchema:
    """How Go's encoding/json names what a wire body decodes into, so that a type error
    reads as dockerd's: ``json: cannot unmarshal <what> into Go struct field
    <Struct>.<path> of type <type>``.

    ``structs``: a dataclass's Go type (``container.HostConfig``); its short name (after
    the dot) is what Go prints as the struct that holds a field. ``fields``: Go types of
    fields whose Python type does not say it (``uint16``, ``nat.PortSet``), by
    (dataclass, field name). Integers are ``int64`` unless told otherwise."""

    structs: Mapping[type, str] = dataclasses.field(default_factory=dict)
    fields: Mapping[tuple[type, str], str] = dataclasses.field(default_factory=dict)

    def struct(self, cls: type) -> str:
        return self.structs.get(cls, cls.__name__)


_INT_RANGES = {
    "int64": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 63), (1 << 63) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1), "uint16": (0, 65535), "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1), "uint": (0, (1 << 64) - 1),
}


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a value sits, as Go's decoder reports it."""

    struct: str  # the Go struct holding the field ("" at the top: "Go value")
    path: str  # field names from the root, dotted
    go_type: str = ""  # an override from the schema


def from_jsonable(cls: type[T], data: Any, name: NameMap = identity_name, path: str = "", *,
                  go: GoSchema | None = None, struct: str = "") -> T:
    """Build ``cls`` (a dataclass) from ``data``; raises InvalidParameter with Go's
    ``json: cannot unmarshal`` text on a type error or an integer out of its Go range.

    ``path``/``struct``: where ``data`` itself sits in the request body (``HostConfig`` in
    ``CreateRequest``); empty when it is the body."""
    return typing.cast(T, _decode(cls, data, name, _Where(struct, path), go or GoSchema()))


def _field_path(where: _Where, key: str) -> str:
    return f"{where.path}.{key}" if where.path else key


def _decode(tp: Any, data: Any, name: NameMap, where: _Where, go: GoSchema) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        last: InvalidParameter | None = None
        for arg in args:
            try:
                return _decode(arg, data, name, where, go)
            except InvalidParameter as exc:
                last = exc
        assert last is not None
        raise last
    if tp is Any:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise _type_error(where, data, tp, go)
        hints = _hints(tp)
        inner = go.struct(tp).rsplit(".", 1)[-1]
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            key = name(tp, f.name)
            if key in data and data[key] is not None:
                at = _Where(inner, _field_path(where, key), go.fields.get((tp, f.name), ""))
                kwargs[f.name] = _decode(hints[f.name], data[key], name, at, go)
            elif key in data and _is_optional(hints[f.name]):
                kwargs[f.name] = None
        return tp(**kwargs)
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(data, list):
            raise _type_error(where, data, tp, go)
        inner_where = replace(where, go_type="")
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_decode(items[0], v, name, inner_where, go) for v in data)
        if len(items) != len(data):
            raise _type_error(where, data, tp, go)
        return tuple(_decode(a, v, name, inner_where, go) for a, v in zip(items, data))
    if origin in (Mapping, dict, typing.Mapping) or tp is dict:
        pair = typing.get_args(tp)
        if not isinstance(data, Mapping):
            raise _type_error(where, data, tp, go)
        vt = pair[1] if pair else Any
        inner_where = replace(where, go_type="")
        return {str(k): _decode(vt, v, name, inner_where, go) for k, v in data.items()}
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise _type_error(where, data, tp, go)
    if tp is int:
        go_type = where.go_type or "int64"
        low, high = _INT_RANGES.get(go_type, _INT_RANGES["int64"])
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise _type_error(where, data, tp, go)
        # Go parses the literal: a fraction or an exponent never fits an integer
        if isinstance(data, float) or not low <= data <= high:
            raise _type_error(where, data, tp, go, literal=True)
        return int(data)
    if tp is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise _type_error(where, data, tp, go)
    if tp is str:
        if isinstance(data, str):
            return data
        raise _type_error(where, data, tp, go)
    raise TypeError(f"unsupported type {tp!r} at {where.path}")


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def go_type_name(tp: Any, go: GoSchema) -> str:
    """The Go type a Python annotation stands for (``tuple[str, ...]`` -> ``[]string``)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return go_type_name(args[0], go) if len(args) == 1 else "interface {}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return go.struct(tp)
    if origin is tuple:
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return "[]" + go_type_name(items[0], go)
        return f"[{len(items)}]" + go_type_name(items[0], go)
    if origin in (Mapping, dict, typing.Mapping) or tp is dict:
        pair = typing.get_args(tp)
        return "map[string]" + (go_type_name(pair[1], go) if pair else "interface {}")
    return {bool: "bool", int: "int64", float: "float64", str: "string"}.get(tp, "interface {}")


def json_kind(data: Any) -> str:
    """What Go's decoder calls a JSON value: string, number, bool, array, object."""
    if isinstance(data, bool):
        return "bool"
    if isinstance(data, (int, float)):
        return "number"
    if isinstance(data, str):
        return "string"
    return "array" if isinstance(data, (list, tuple)) else "object"


def number_literal(data: int | float) -> str:
    """The number as the client wrote it, when the body was read keeping literals."""
    literal = getattr(data, "literal", None)
    if isinstance(literal, str):
        return literal
    return repr(data) if isinstance(data, float) else str(data)


def _type_error(where: _Where, data: Any, tp: Any, go: GoSchema, literal: bool = False) -> InvalidParameter:
    what = json_kind(data)
    if literal:
        what += " " + number_literal(data)
    go_type = where.go_type or go_type_name(tp, go)
    if where.struct and where.path:
        return InvalidParameter(f"json: cannot unmarshal {what} into Go struct field "
                                f"{where.struct}.{where.path} of type {go_type}")
    return InvalidParameter(f"json: cannot unmarshal {what} into Go value of type {go_type}")


__all__ = ["NameMap", "identity_name", "GoSchema", "to_jsonable", "from_jsonable", "go_type_name",
           "json_kind", "number_literal"]
