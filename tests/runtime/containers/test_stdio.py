import fcntl
import os
import pty
import struct
import subprocess
import termios

from runtime.containers import stdio
from runtime.containers.stdio import StdioFanout
from runtime.logs.driver import LogMessage
from runtime.process.contract import StartedProcess


class RecordingDriver:
    name = "recording"

    def __init__(self) -> None:
        self.messages: list[LogMessage] = []
        self.closed = False

    def log(self, message: LogMessage) -> None:
        self.messages.append(message)

    def log_lines(self, stream: str, lines: list[bytes], time_ns: int) -> None:
        self.messages.extend(LogMessage(stream, line, time_ns) for line in lines)

    def close(self) -> None:
        self.closed = True


def spawn(cmd: str, stdin: bool = False) -> tuple[subprocess.Popen[bytes], StartedProcess]:
    """A child writing to pipes whose daemon-side ends we hand over like the supervisor does."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if stdin else (None, None)
    proc = subprocess.Popen(["/bin/busybox", "sh", "-c", cmd], stdout=out_w, stderr=err_w,
                            stdin=in_r if in_r is not None else subprocess.DEVNULL)
    for fd in (out_w, err_w, in_r):
        if fd is not None:
            os.close(fd)
    return proc, StartedProcess(proc.pid, in_w, out_r, err_r, False)


async def test_lines_go_to_driver_and_chunks_to_subscribers() -> None:
    proc, started = spawn("echo out1; echo err1 >&2; printf 'no-newline'")
    driver = RecordingDriver()
    fan = StdioFanout(started, driver)
    both = fan.subscribe()
    only_err = fan.subscribe(stdout=False)
    lines = fan.subscribe_lines()
    got = b"".join([d async for _, d in both])
    err = b"".join([d async for _, d in only_err])
    assert got.count(b"out1\n") == 1 and got.count(b"err1\n") == 1 and got.count(b"no-newline") == 1
    assert err == b"err1\n"
    line_items = [m async for m in lines]
    await fan.drain(1)
    proc.wait()
    by_stream = {(m.stream, m.line) for m in driver.messages}
    assert by_stream == {("stdout", b"out1\n"), ("stderr", b"err1\n"), ("stdout", b"no-newline")}
    assert {(m.stream, m.line) for m in line_items} <= by_stream
    assert driver.closed and fan.closed


async def test_long_lines_are_split_like_dockerd() -> None:
    proc, started = spawn(f"head -c {stdio.MAX_LINE * 2 + 10} /dev/zero | tr '\\0' x; echo")
    driver = RecordingDriver()
    fan = StdioFanout(started, driver)
    await fan.drain(5)
    proc.wait()
    sizes = [len(m.line) for m in driver.messages]
    assert sizes == [stdio.MAX_LINE, stdio.MAX_LINE, 11]
    assert driver.messages[-1].line.endswith(b"\n")


async def test_stdin_round_trip_and_close() -> None:
    proc, started = spawn("tr a-z A-Z", stdin=True)
    fan = StdioFanout(started, None)
    sub = fan.subscribe()
    await fan.write_stdin(b"hello\n" * 20000)  # > pipe buffer: must wait, not block the loop
    fan.close_stdin()
    data = b"".join([d async for _, d in sub])
    assert data == b"HELLO\n" * 20000
    await fan.drain(1)
    assert proc.wait() == 0


async def test_slow_subscriber_is_dropped_not_blocking(monkeypatch: object) -> None:
    stdio.MAX_BACKLOG, saved = 1000, stdio.MAX_BACKLOG
    try:
        proc, started = spawn("head -c 100000 /dev/zero")
        driver = RecordingDriver()
        fan = StdioFanout(started, driver)
        slow = fan.subscribe()
        await fan.drain(5)
        proc.wait()
        assert sum(len(m.line) for m in driver.messages) == 100000
        # the slow subscriber's feed ended early: what it still holds is short of the output
        held = slow.ready(100000)
        assert sum(stdio._size(m) for m in held) <= 1000 and await slow.get() is None
    finally:
        stdio.MAX_BACKLOG = saved


async def test_subscribe_after_eof_ends_immediately() -> None:
    proc, started = spawn("true")
    fan = StdioFanout(started, None)
    await fan.drain(1)
    proc.wait()
    assert [c async for c in fan.subscribe()] == []


async def test_pty_resize_and_output() -> None:
    master, slave = pty.openpty()
    # the child reports its window size itself (busybox stty prefers $LINES/$COLUMNS)
    probe = ("import time, fcntl, termios, struct; time.sleep(0.2); "
             "print(struct.unpack('HHHH', fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8)))[:2])")
    proc = subprocess.Popen(["python3", "-c", probe],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    fan = StdioFanout(StartedProcess(proc.pid, master, master, None, True), None)
    fan.resize(33, 101)
    h, w, _, _ = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8))
    assert (h, w) == (33, 101)
    sub = fan.subscribe()
    out = b"".join([d async for _, d in sub])
    assert b"(33, 101)" in out
    await fan.drain(1)
    proc.wait()


async def test_read_pending_takes_in_output_the_loop_has_not_read_yet() -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    driver = RecordingDriver()
    fan = StdioFanout(StartedProcess(os.getpid(), None, out_r, err_r, False), driver)
    os.write(out_w, b"written before anyone looked\n")
    os.write(err_w, b"e1\ne2\n")
    assert driver.messages == []  # the event loop has not run: nothing read yet
    fan.read_pending()
    assert [(m.stream, m.line) for m in driver.messages] == [
        ("stdout", b"written before anyone looked\n"), ("stderr", b"e1\n"), ("stderr", b"e2\n")]
    fan.read_pending()  # nothing more: no blocking, no duplicates
    assert len(driver.messages) == 3
    os.close(out_w)
    os.close(err_w)
    await fan.drain(1)
