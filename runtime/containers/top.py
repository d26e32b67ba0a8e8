"""``docker top``: the host's ``ps`` over the container's processes, parsed like dockerd.

``ps`` runs on the host (an absolute path, never a binary from the container) with the
client's ``ps_args`` (default ``-ef``) plus ``-q <pids>`` when ``ps`` accepts it; lines whose
PID column is not one of the container's cgroup pids are dropped. Thread lines (``-`` in
the PID column, e.g. ``ps -eLf``'s continuation lines under ``m``) follow their process.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass

from runtime.containers.freeze import cgroup_handle
from runtime.containers.context import ContainerContext
from runtime.errors import Conflict, InvalidParameter, SystemError_

PS_CANDIDATES = ("/usr/bin/ps", "/bin/ps")
_PID_ASSIGN = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


@dataclass(frozen=True, slots=True)
class TopResult:
    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


def validate_ps_args(ps_args: str) -> None:
    """dockerd refuses renaming the PID column (``-o user=PID``), which would fool the parser."""
    for key, value in _PID_ASSIGN.findall(ps_args):
        if key != "pid":
            raise InvalidParameter(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    # ASCII whitespace only, as dockerd's fieldsASCII
    return [f for f in re.split(r"[ \t\n\v\f\r]+", line) if f]


def parse_ps_output(output: str, pids: set[int]) -> TopResult:
    lines = output.split("\n")
    titles = _fields(lines[0]) if lines else []
    if "PID" not in titles:
        raise SystemError_("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    processes: list[tuple[str, ...]] = []
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if pid_index >= len(fields):
            continue
        if fields[pid_index] == "-":
            if processes:
                processes.append(tuple(fields))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise SystemError_(f"Unexpected pid '{fields[pid_index]}': strconv.Atoi: parsing "
                               f'"{fields[pid_index]}": invalid syntax') from None
        if pid in pids:
            head = fields[: len(titles) - 1]
            processes.append((*head, " ".join(fields[len(titles) - 1 :])))
    return TopResult(tuple(titles), tuple(processes))


def ps_binary() -> str:
    for candidate in PS_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise SystemError_("ps: executable file not found on the host")


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out, err


async def top(ctx: ContainerContext, ref: str, ps_args: str = "") -> TopResult:
    container = ctx.get(ref)
    state = container.state
    if not state.running:
        raise Conflict(f"Container {container.id} is not running")
    if state.restarting:
        raise Conflict(f"Container {container.id} is restarting, wait until the container "
                       "is running")
    ps_args = ps_args or "-ef"
    validate_ps_args(ps_args)
    if ctx.cgroups is None:
        pids = {state.pid}
    else:
        pids = set(await asyncio.to_thread(ctx.cgroups.pids,  # type: ignore[attr-defined]
                                           cgroup_handle(ctx, container)))
    args = ps_args.split(" ")
    binary = ps_binary()
    code, out, err = await _run([binary, *args, "-q", ",".join(str(p) for p in sorted(pids))])
    if code != 0:
        # some options (f, for one) do not combine with -q: retry without it
        code, out, err = await _run([binary, *args])
        if code != 0:
            first = err.decode("utf-8", "replace").split("\n", 1)[0]
            raise SystemError_(first or f"ps: exit status {code}")
    result = parse_ps_output(out.decode("utf-8", "replace"), pids)
    ctx.event(container, "top")
    return result


__all__ = ["TopResult", "top", "parse_ps_output", "validate_ps_args"]
