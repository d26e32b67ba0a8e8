"""The log driver seam: what a container's output is written to and read back from.

A driver receives every line the container writes (``LogMessage``), synchronously from
the container's stdio fan-out, and must not block for long: the json-file driver does one
buffered ``write`` per line. Reading back is a separate object (``LogReader``) so a
``docker logs`` on a stopped container needs no live driver. Live lines for ``follow`` come
from the fan-out, not from the driver; see ``runtime.containers.stdio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from runtime.errors import InvalidParameter, NotImplementedFeature

if TYPE_CHECKING:
    from runtime.logs.columns import LogColumns


@dataclass(frozen=True, slots=True)
class LogMessage:
    """One line of output. ``line`` keeps its trailing newline (absent for a partial line)."""

    stream: str          # "stdout" or "stderr"
    line: bytes
    time_ns: int


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """``tail`` None = all lines; ``since_ns``/``until_ns`` 0 = unbounded; ``stamps``: the
    caller prints times (column batches then carry them)."""

    tail: int | None = None
    since_ns: int = 0
    until_ns: int = 0
    stamps: bool = False


#: What readers yield: a list of messages, or many messages column-wise (large files).
LogBatch: TypeAlias = "list[LogMessage] | LogColumns"


class LogDriver(Protocol):
    name: str

    def log(self, message: LogMessage) -> None:
        """Record one line. Called in the event loop; must not block for long."""
        ...

    def log_lines(self, stream: str, lines: list[bytes], time_ns: int) -> None:
        """Record several lines read at once (same stream and time), in bulk."""
        ...

    def close(self) -> None:
        ...


class LogReader(Protocol):
    def read(self, options: ReadOptions) -> AsyncIterator[LogMessage]:
        """Messages recorded up to this call, oldest first, filtered by ``options``.

        The snapshot is taken when ``read`` is called (not when iteration starts), so a
        caller that subscribes to live output in the same synchronous step gets every
        line exactly once.
        """
        ...

    def read_batches(self, options: ReadOptions) -> AsyncIterator[LogBatch]:
        """The same messages in batches, for callers that write in bulk."""
        ...


class NoneDriver:
    """``--log-driver none``: output is discarded and cannot be read back."""

    name = "none"

    def log(self, message: LogMessage) -> None:
        pass

    def log_lines(self, stream: str, lines: list[bytes], time_ns: int) -> None:
        pass

    def close(self) -> None:
        pass


class ReadingNotSupported(NotImplementedFeature):
    def __init__(self) -> None:
        super().__init__("configured logging driver does not support reading")


SUPPORTED_DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = frozenset({"max-size", "max-file", "compress", "labels", "labels-regex",
                            "env", "env-regex", "tag"})


def validate_log_config(driver: str, options: Mapping[str, str]) -> None:
    """Reject unknown drivers and options the way dockerd does at create."""
    if driver not in SUPPORTED_DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    if driver == "none":
        if options:
            key = sorted(options)[0]
            raise InvalidParameter(f"unknown log opt '{key}' for none log driver")
        return
    for key in sorted(options):
        if key not in JSON_FILE_OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    if "max-size" in options:
        parse_size(options["max-size"])
    if "max-file" in options:
        try:
            max_file = int(options["max-file"])
        except ValueError:
            raise InvalidParameter(
                f'strconv.Atoi: parsing "{options["max-file"]}": invalid syntax') from None
        if max_file < 1:
            raise InvalidParameter("max-file cannot be less than 1")
        if max_file > 1 and "max-size" not in options:
            raise InvalidParameter("max-file can only be set when max-size is set")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(value: str) -> int:
    """Docker's ``units.RAMInBytes``: "10m" -> 10 MiB (binary units)."""
    text = value.strip().lower()
    number = text.rstrip("bikmgt")
    unit = text[len(number):]
    try:
        amount = float(number)
    except ValueError:
        raise InvalidParameter(f"invalid size: '{value}'") from None
    if unit not in _UNITS or amount < 0:
        raise InvalidParameter(f"invalid size: '{value}'")
    return int(amount * _UNITS[unit])


def open_reader(driver: str, log_path: Path) -> LogReader:
    """The reader for a container's configured driver (raises if it cannot be read)."""
    if driver == "json-file":
        from runtime.logs.jsonfile import JsonFileReader
        return JsonFileReader(log_path)
    raise ReadingNotSupported()


__all__ = ["LogMessage", "LogBatch", "ReadOptions", "LogDriver", "LogReader", "NoneDriver",
           "ReadingNotSupported", "SUPPORTED_DRIVERS", "validate_log_config", "parse_size",
           "open_reader"]
