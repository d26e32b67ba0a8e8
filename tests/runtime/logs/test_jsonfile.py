import json
from pathlib import Path

import pytest

from runtime.errors import InvalidParameter
from runtime.logs import jsonfile
from runtime.logs.driver import (
    JsonFileOptions, LogDriverInitFailed, LogMessage, ReadOptions, from_human_size, json_file_options,
    validate_log_config,
)
from runtime.logs.jsonfile import JsonFileDriver, JsonFileReader, encode_entry
from runtime.logs.jsonfile import _parse_time
from runtime.timefmt import rfc3339_nano


def msg(i: int, stream: str = "stdout", t: int | None = None) -> LogMessage:
    return LogMessage(stream, f"line {i}\n".encode(), t if t is not None else 1_700_000_000_000_000_000 + i)


async def collect(reader: JsonFileReader, **kw: object) -> list[LogMessage]:
    return [m async for m in reader.read(ReadOptions(**kw))]  # type: ignore[arg-type]


def test_entry_is_byte_identical_to_dockerd() -> None:
    m = LogMessage("stdout", b"hi\n", 1795831030103317529)
    assert encode_entry(m) == (
        b'{"log":"hi\\n","stream":"stdout","time":"2026-11-28T01:57:10.103317529Z"}\n'
    )
    # Go escapes HTML characters and keeps other non-ASCII raw
    m = LogMessage("stderr", "<a&b> \u00e9\t\x01\b\n".encode(), 1_000_000_000)
    assert encode_entry(m) == (
        '{"log":"\\u003ca\\u0026b\\u003e \u00e9\\t\\u0001\\u0008\\n","stream":"stderr",'
        '"time":"1970-01-01T00:00:01Z"}\n'
    ).encode()


@pytest.mark.parametrize("ns", [1_500_000_000_100_000_000, 1_795_831_030_103_317_529, 10**18])
def test_fast_time_parser_matches_writer(ns: int) -> None:
    assert _parse_time(rfc3339_nano(ns)) == ns
    assert _parse_time("2017-07-14T04:40:00.1+02:00") == 1_500_000_000_100_000_000


async def test_write_then_read_all_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    d = JsonFileDriver(path)
    for i in range(100):
        d.log(msg(i, "stderr" if i % 2 else "stdout"))
    d.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 100 and json.loads(lines[3])["stream"] == "stderr"
    r = JsonFileReader(path)
    everything = await collect(r)
    assert [m.line for m in everything] == [f"line {i}\n".encode() for i in range(100)]
    assert [m.line for m in await collect(r, tail=3)] == [b"line 97\n", b"line 98\n", b"line 99\n"]
    assert await collect(r, tail=0) == []
    assert len(await collect(r, tail=1000)) == 100
    assert [m.line for m in await collect(r, tail=1)] == [b"line 99\n"]


async def test_tail_does_not_read_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big-json.log"
    d = JsonFileDriver(path)
    for i in range(20000):
        d.log(msg(i))
    d.close()
    size = path.stat().st_size
    assert size > 1_000_000
    read_bytes = 0
    real_pread = jsonfile.os.pread

    def counting_pread(fd: int, n: int, off: int) -> bytes:
        nonlocal read_bytes
        data = real_pread(fd, n, off)
        read_bytes += len(data)
        return data

    monkeypatch.setattr(jsonfile.os, "pread", counting_pread)
    got = await collect(JsonFileReader(path), tail=5)
    assert [m.line for m in got] == [f"line {i}\n".encode() for i in range(19995, 20000)]
    assert read_bytes < 3 * jsonfile.BLOCK


async def test_since_until(tmp_path: Path) -> None:
    path = tmp_path / "t-json.log"
    d = JsonFileDriver(path)
    for i in range(10):
        d.log(msg(i, t=i * 1_000_000_000))
    d.close()
    r = JsonFileReader(path)
    got = await collect(r, since_ns=3_000_000_000, until_ns=5_000_000_000)
    assert [m.line for m in got] == [b"line 3\n", b"line 4\n", b"line 5\n"]
    got = await collect(r, tail=2, since_ns=9_000_000_000)
    assert [m.line for m in got] == [b"line 9\n"]


async def test_rotation_and_reading_across_files(tmp_path: Path) -> None:
    path = tmp_path / "r-json.log"
    d = JsonFileDriver.from_options(path, {"max-size": "1k", "max-file": "3"})
    for i in range(200):
        d.log(msg(i))
    d.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r-json.log", "r-json.log.1", "r-json.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1024 + 100
    r = JsonFileReader(path)
    everything = await collect(r)
    numbers = [int(m.line.split()[1]) for m in everything]
    assert numbers == list(range(numbers[0], 200)) and numbers[0] > 0
    tail = await collect(r, tail=len(numbers) - 2)
    assert [int(m.line.split()[1]) for m in tail] == numbers[2:]


def test_rotation_with_one_file_truncates(tmp_path: Path) -> None:
    path = tmp_path / "one-json.log"
    d = JsonFileDriver(path, max_size=500, max_file=1)
    for i in range(100):
        d.log(msg(i))
    d.close()
    assert [p.name for p in tmp_path.iterdir()] == ["one-json.log"]
    assert path.stat().st_size < 700


async def test_snapshot_is_taken_at_read_call(tmp_path: Path) -> None:
    path = tmp_path / "s-json.log"
    d = JsonFileDriver(path)
    d.log(msg(1))
    it = JsonFileReader(path).read(ReadOptions())
    d.log(msg(2))
    assert [m.line async for m in it] == [b"line 1\n"]
    d.close()


def test_validate_log_config_checks_driver_and_keys_only() -> None:
    validate_log_config("json-file", {"max-size": "10m", "max-file": "3"})
    # values are the driver's business at start (dockerd creates these containers)
    validate_log_config("json-file", {"max-file": "100"})
    validate_log_config("json-file", {"max-file": "abc", "compress": "maybe", "tag": "{{.Name}}"})
    validate_log_config("none", {})
    with pytest.raises(InvalidParameter, match="no log driver named 'syslogx' is registered"):
        validate_log_config("syslogx", {})
    with pytest.raises(InvalidParameter, match="unknown log opt 'foo' for json-file log driver"):
        validate_log_config("json-file", {"foo": "1"})
    with pytest.raises(InvalidParameter, match="unknown log opt 'max-size' for none log driver"):
        validate_log_config("none", {"max-size": "1m"})


def test_json_file_options_defaults_and_values() -> None:
    assert json_file_options({}) == JsonFileOptions(-1, 1, False)
    assert json_file_options({"max-file": "100"}) == JsonFileOptions(-1, 100, False)
    assert json_file_options({"max-size": "10m", "max-file": "3", "compress": "true"}) == \
        JsonFileOptions(10_000_000, 3, True)
    assert json_file_options({"compress": "false", "labels": "a", "env": "B", "tag": "x"}) == \
        JsonFileOptions(-1, 1, False)
    assert from_human_size("1k") == 1000 and from_human_size("1.5MB") == 1_500_000
    assert from_human_size("2 GiB") == 2_000_000_000 and from_human_size("100") == 100


@pytest.mark.parametrize(("options", "reason"), [
    ({"max-file": "abc"}, 'strconv.Atoi: parsing "abc": invalid syntax'),
    ({"max-file": "0"}, "max-file cannot be less than 1"),
    ({"max-size": "-1"}, "invalid size: '-1'"),
    ({"max-size": "1x"}, "invalid size: '1x'"),
    ({"max-size": "0"}, "max-size must be a positive number"),
    ({"compress": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ({"compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ({"compress": "1", "max-size": "1m"},
     "compress cannot be true when max-file is less than 2 or max-size is not set"),
])
def test_json_file_options_errors_are_dockerds(options: dict[str, str], reason: str) -> None:
    with pytest.raises(LogDriverInitFailed) as err:
        json_file_options(options)
    assert str(err.value) == f"failed to initialize logging driver: {reason}"


async def test_batched_lines_rotate_mid_batch(tmp_path: Path) -> None:
    path = tmp_path / "b-json.log"
    d = JsonFileDriver(path, max_size=1024, max_file=3)
    d.log_lines("stdout", [f"line {i}\n".encode() for i in range(200)], 1_000_000_000)
    d.close()
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1024 + 100
    numbers = [int(m.line.split()[1]) for m in await collect(JsonFileReader(path))]
    assert numbers == list(range(numbers[0], 200))
    one = LogMessage("stdout", b"line 7\n", 1_000_000_000)
    assert path.read_bytes().endswith(encode_entry(LogMessage("stdout", b"line 199\n", 1_000_000_000)))
    assert encode_entry(one).startswith(b'{"log":"line 7\\n","stream":"stdout"')
