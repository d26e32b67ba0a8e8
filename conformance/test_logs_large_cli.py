"""docker logs of a large json-file log (several MB, the engine's bulk path) through the CLI:
the exact text, split by stream, with --tail, -t, --since and --until."""

from __future__ import annotations

import re
import time

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(180)

LINES = 20000
# HTML characters, quotes, a backslash, a tab and non-ASCII: escaped or not by the writer
PROGRAM = (
    'BEGIN { for (i = 1; i <= %d; i++) { '
    'printf "%%d <a&b> \\"q\\" \\\\ \\t \u00e9\u4e2d end\\n", i; '
    'if (i %% 1000 == 0) printf "err %%d\\n", i > "/dev/stderr" } '
    'printf "partial" }' % LINES
)


def expected_stdout() -> str:
    return "".join(f'{i} <a&b> "q" \\ \t \u00e9\u4e2d end\n' for i in range(1, LINES + 1)) + "partial"


def expected_stderr() -> str:
    return "".join(f"err {i}\n" for i in range(1000, LINES + 1, 1000))


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def chatty(box: Box) -> str:
    name = box.run_d(box.image, "awk", PROGRAM)
    box.wait_exited(name)
    return name


def test_large_log_exact_text_by_stream(box: Box, chatty: str) -> None:
    logs = box.logs(chatty)
    assert logs.stdout == expected_stdout()
    assert logs.stderr == expected_stderr()


def test_large_log_tail_and_timestamps(box: Box, chatty: str) -> None:
    tail = box.logs(chatty, "--tail", "3")
    # the last three lines of the file; how the two pipes interleave there is up to the engine
    out, err = tail.stdout.splitlines(keepends=True), tail.stderr.splitlines(keepends=True)
    assert len(out) + len(err) == 3 and out
    assert tail.stdout == "".join(expected_stdout().splitlines(keepends=True)[-len(out):])
    assert expected_stderr().endswith(tail.stderr)
    stamped = box.logs(chatty, "-t").stdout.splitlines(keepends=True)
    assert len(stamped) == LINES + 1
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
    assert all(stamp.match(line) for line in stamped), [
        line for line in stamped if not stamp.match(line)][:3]
    assert "".join(line[31:] for line in stamped) == expected_stdout()
    stamps = [line[:30] for line in stamped]
    assert stamps == sorted(stamps)


def test_large_log_since_until(box: Box, chatty: str) -> None:
    future = str(int(time.time()) + 3600)
    assert box.logs(chatty, "--since", future).stdout == ""
    assert box.logs(chatty, "--since", "1000000000").stdout == expected_stdout()
    assert box.logs(chatty, "--until", "1000000000").stdout == ""
    # --since a written line's own stamp keeps that line and everything after it
    stamped = box.logs(chatty, "-t").stdout.splitlines(keepends=True)
    middle = stamped[LINES // 2][:30]
    first = next(i for i, line in enumerate(stamped) if line[:30] == middle)
    since = box.logs(chatty, "--since", middle).stdout
    assert since == "".join(line[31:] for line in stamped[first:])
