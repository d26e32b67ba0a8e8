"""The log driver seam: what a container's output is written to and read back from.

A driver receives every line the container writes (``LogMessage``), synchronously from
the container's stdio fan-out, and must not block for long: the json-file driver does one
buffered ``write`` per line. Reading back is a separate object (``LogReader``) so a
``docker logs`` on a stopped container needs no live driver. Live lines for ``follow`` come
from the fan-out, not from the driver; see ``runtime.containers.stdio``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from runtime.errors import InvalidParameter, NotImplementedFeature, SystemError_

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
    """What dockerd checks at create: the driver is registered and knows every option key.
    Option values are checked when the driver starts (``json_file_options``), as dockerd's
    logger ``New`` does at container start."""
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


class LogDriverInitFailed(SystemError_):
    """The driver's options are invalid: the container cannot start (500, as dockerd)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"failed to initialize logging driver: {reason}")


@dataclass(frozen=True, slots=True)
class JsonFileOptions:
    """json-file settings: ``max_size`` -1 = unlimited; ``max_file`` files kept in all."""

    max_size: int = -1
    max_file: int = 1
    compress: bool = False


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def json_file_options(options: Mapping[str, str]) -> JsonFileOptions:
    """The json-file options parsed and checked with dockerd's rules and texts (its
    ``jsonfilelog.New``); raises ``LogDriverInitFailed``."""
    max_size = -1
    if "max-size" in options:
        max_size = from_human_size(options["max-size"])
        if max_size <= 0:
            raise LogDriverInitFailed("max-size must be a positive number")
    max_file = 1
    if "max-file" in options:
        text = options["max-file"]
        if not re.fullmatch(r"[+-]?\d+", text):
            raise LogDriverInitFailed(f'strconv.Atoi: parsing "{text}": invalid syntax')
        max_file = int(text)
        if max_file < 1:
            raise LogDriverInitFailed("max-file cannot be less than 1")
    compress = False
    if "compress" in options:
        text = options["compress"]
        if text not in _GO_BOOLS:
            raise LogDriverInitFailed(f'strconv.ParseBool: parsing "{text}": invalid syntax')
        compress = _GO_BOOLS[text]
        if compress and (max_file == 1 or max_size == -1):
            raise LogDriverInitFailed(
                "compress cannot be true when max-file is less than 2 or max-size is not set")
    return JsonFileOptions(max_size, max_file, compress)


_HUMAN_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def from_human_size(value: str) -> int:
    """go-units ``FromHumanSize`` (decimal: "10m" = 10,000,000 bytes), as dockerd's json-file
    reads ``max-size``; raises ``LogDriverInitFailed`` with its text."""
    match = _HUMAN_SIZE_RE.match(value)
    try:
        if match is None:
            raise ValueError(value)
        amount = float(match.group(1))
    except ValueError:
        raise LogDriverInitFailed(f"invalid size: '{value}'") from None
    return int(amount * _DECIMAL[(match.group(2) or "").lower()])


def open_reader(driver: str, log_path: Path) -> LogReader:
    """The reader for a container's configured driver (raises if it cannot be read)."""
    if driver == "json-file":
        from runtime.logs.jsonfile import JsonFileReader
        return JsonFileReader(log_path)
    raise ReadingNotSupported()


__all__ = ["LogMessage", "LogBatch", "ReadOptions", "LogDriver", "LogReader", "NoneDriver",
           "ReadingNotSupported", "SUPPORTED_DRIVERS", "validate_log_config",
           "LogDriverInitFailed", "JsonFileOptions", "json_file_options", "from_human_size",
           "open_reader"]
