"""Generic conversion between frozen domain dataclasses and JSON-able values.

Used twice: to persist container records (snake_case keys, our own on-disk format) and by
``compat_api.convert`` to read and render Docker's PascalCase wire shapes (with a name
mapping). Decoding is driven by the dataclass type hints and is lenient like dockerd's
JSON decoding: unknown keys are ignored and a JSON ``null`` means "use the default".
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
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


def from_jsonable(cls: type[T], data: Any, name: NameMap = identity_name, path: str = "") -> T:
    """Build ``cls`` (a dataclass) from ``data``; raises InvalidParameter on a type error."""
    return typing.cast(T, _decode(cls, data, name, path or cls.__name__))


def _decode(tp: Any, data: Any, name: NameMap, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        last: InvalidParameter | None = None
        for arg in args:
            try:
                return _decode(arg, data, name, path)
            except InvalidParameter as exc:
                last = exc
        assert last is not None
        raise last
    if tp is Any:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise _type_error(path, data, "object")
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            key = name(tp, f.name)
            if key in data and data[key] is not None:
                kwargs[f.name] = _decode(hints[f.name], data[key], name, f"{path}.{key}")
            elif key in data and _is_optional(hints[f.name]):
                kwargs[f.name] = None
        return tp(**kwargs)
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(data, list):
            raise _type_error(path, data, "array")
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_decode(items[0], v, name, f"{path}[{i}]") for i, v in enumerate(data))
        if len(items) != len(data):
            raise _type_error(path, data, f"array of {len(items)}")
        return tuple(_decode(a, v, name, f"{path}[{i}]") for i, (a, v) in enumerate(zip(items, data)))
    if origin in (Mapping, dict, typing.Mapping) or tp is dict:
        pair = typing.get_args(tp)
        if not isinstance(data, Mapping):
            raise _type_error(path, data, "object")
        vt = pair[1] if pair else Any
        return {str(k): _decode(vt, v, name, f"{path}.{k}") for k, v in data.items()}
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise _type_error(path, data, "bool")
    if tp is int:
        if isinstance(data, bool):
            raise _type_error(path, data, "number")
        if isinstance(data, int):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        raise _type_error(path, data, "number")
    if tp is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise _type_error(path, data, "number")
    if tp is str:
        if isinstance(data, str):
            return data
        raise _type_error(path, data, "string")
    raise TypeError(f"unsupported type {tp!r} at {path}")


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _type_error(path: str, data: Any, expected: str) -> InvalidParameter:
    kind = {bool: "bool", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(data), type(data).__name__)
    return InvalidParameter(f"json: cannot unmarshal {kind} into Go value of type {expected} ({path})")


__all__ = ["NameMap", "identity_name", "to_jsonable", "from_jsonable"]
