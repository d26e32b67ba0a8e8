"""systemd's D-Bus manager API, the part the systemd cgroup driver needs.

Containers become transient ``docker-<id>.scope`` units (dockerd's naming), created with
``StartTransientUnit`` on the system bus through ``jeepney`` (a maintained, pure-Python
D-Bus library; no protocol code here). A scope adopts existing processes, so the caller
passes the PID of a placeholder process and the container's init joins the scope's cgroup
afterwards (``Delegate=yes`` makes that subtree ours to write).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# a D-Bus variant as jeepney takes it: (signature, value)
Variant = tuple[str, object]
Property = tuple[str, Variant]


class UnitManager(Protocol):
    """systemd's unit operations (``SystemdBus`` talks to PID 1; tests use a fake)."""

    def start_transient_unit(self, name: str, properties: Sequence[Property]) -> None: ...
    def set_unit_properties(self, name: str, properties: Sequence[Property]) -> None: ...
    def stop_unit(self, name: str) -> None: ...
    def scope_result(self, name: str) -> str: ...
    def reset_failed_unit(self, name: str) -> None: ...


class SystemdError(OSError):
    """systemd answered with a D-Bus error (``name`` is e.g.
    ``org.freedesktop.systemd1.NoSuchUnit``)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


@dataclass
class SystemdBus:
    """The system bus connection to ``org.freedesktop.systemd1``, opened on first use."""

    timeout: float = 30.0
    _conn: object | None = field(default=None, repr=False)

    def _call(self, method: str, signature: str, body: tuple[object, ...],
              path: str = "/org/freedesktop/systemd1",
              interface: str = "org.freedesktop.systemd1.Manager") -> tuple[object, ...]:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        if self._conn is None:
            self._conn = open_dbus_connection(bus="SYSTEM")
        address = DBusAddress(path, bus_name="org.freedesktop.systemd1", interface=interface)
        reply = self._conn.send_and_get_reply(  # type: ignore[attr-defined]
            new_method_call(address, method, signature, body), timeout=self.timeout)
        try:
            return tuple(unwrap_msg(reply))
        except DBusErrorResponse as exc:
            raise SystemdError(str(exc.name), " ".join(str(d) for d in exc.data)) from None

    def start_transient_unit(self, name: str, properties: Sequence[Property]) -> None:
        self._call("StartTransientUnit", "ssa(sv)a(sa(sv))", (name, "fail", list(properties), []))

    def set_unit_properties(self, name: str, properties: Sequence[Property]) -> None:
        """Changes a running unit's properties until it stops (``runtime=true``, as runc's
        ``Set`` under the systemd driver)."""
        self._call("SetUnitProperties", "sba(sv)", (name, True, list(properties)))

    def stop_unit(self, name: str) -> None:
        self._call("StopUnit", "ss", (name, "replace"))

    def scope_result(self, name: str) -> str:
        """The scope's ``Result`` (``success``, ``oom-kill``, ...; a failed unit stays
        loaded until reset), "" when systemd no longer knows it."""
        try:
            (unit_path,) = self._call("GetUnit", "s", (name,))
            (variant,) = self._call("Get", "ss", ("org.freedesktop.systemd1.Scope", "Result"),
                                    path=str(unit_path),
                                    interface="org.freedesktop.DBus.Properties")
        except SystemdError:
            return ""
        return str(variant[1]) if isinstance(variant, tuple) else str(variant)

    def reset_failed_unit(self, name: str) -> None:
        self._call("ResetFailedUnit", "s", (name,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # type: ignore[attr-defined]
            self._conn = None


def systemd_is_running() -> bool:
    """True when systemd is PID 1 (sd_booted)."""
    return os.path.isdir("/run/systemd/system")


def slice_path(name: str) -> str:
    """The cgroup path of a slice: ``a-b.slice`` -> ``a.slice/a-b.slice`` (systemd nests
    slices by their dash-separated prefixes); ``-.slice`` is the root."""
    if name == "-.slice":
        return ""
    parts = name.removesuffix(".slice").split("-")
    return "/".join("-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


def valid_slice(name: str) -> bool:
    """A slice name dockerd accepts as ``--cgroup-parent`` under the systemd driver."""
    stem = name.removesuffix(".slice")
    return (name.endswith(".slice") and bool(stem) and "/" not in name
            and not stem.startswith("-") and not stem.endswith("-") and "--" not in stem)


__all__ = ["UnitManager", "SystemdBus", "SystemdError", "Property", "systemd_is_running",
           "slice_path", "valid_slice"]
