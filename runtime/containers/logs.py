"""``docker logs`` (``GET /containers/{id}/logs``): the logged past, then (``--follow``) the
lines as they come, every line exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from runtime.containers.context import ContainerContext
from runtime.containers.stdio import Subscription
from runtime.errors import InvalidParameter
from runtime.logs.driver import LogBatch, LogMessage, ReadOptions, open_reader


@dataclass(frozen=True, slots=True)
class LogsOptions:
    stdout: bool = False
    stderr: bool = False
    follow: bool = False
    since_ns: int = 0
    until_ns: int = 0
    timestamps: bool = False
    tail: int | None = None
    details: bool = False


@dataclass(frozen=True, slots=True)
class LogsStream:
    """Validated logs request: ``tty`` picks raw vs multiplexed framing. Messages come in
    batches (whole blocks of the log file, single lines when following) so they can be
    written in bulk."""

    tty: bool
    batches: AsyncIterator[LogBatch]

    async def messages(self) -> AsyncIterator[LogMessage]:
        async for batch in self.batches:
            for message in (batch if isinstance(batch, list) else batch.messages()):
                yield message


def logs(ctx: ContainerContext, ref: str, options: LogsOptions) -> LogsStream:
    container = ctx.get(ref)
    if not (options.stdout or options.stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    if options.since_ns and options.until_ns and options.until_ns < options.since_ns:
        raise InvalidParameter("invalid since and until values: since must be before until")
    reader = open_reader(container.log_driver, container.log_path)
    live = ctx.live.get(container.id)
    if live is not None and live.fanout is not None and not live.fanout.closed:
        live.fanout.read_pending()
    follow_sub = None
    if options.follow and live is not None and live.fanout is not None and not live.fanout.closed:
        # subscribe and snapshot in one synchronous step: every line exactly once
        follow_sub = live.fanout.subscribe_lines(options.stdout, options.stderr)
    past = reader.read_batches(ReadOptions(tail=options.tail, since_ns=options.since_ns,
                                           until_ns=options.until_ns,
                                           stamps=options.timestamps))
    return LogsStream(container.config.tty, _logs_iter(past, follow_sub, options))


async def _logs_iter(past: AsyncIterator[LogBatch],
                     follow: Subscription[LogMessage] | None,
                     options: LogsOptions) -> AsyncIterator[LogBatch]:
    streams = {s for s, on in (("stdout", options.stdout), ("stderr", options.stderr)) if on}
    try:
        async for batch in past:
            if len(streams) < 2:
                batch = (batch.only(*streams) if not isinstance(batch, list)
                         else [m for m in batch if m.stream in streams])
            if len(batch):
                yield batch
        if follow is None:
            return
        async for first in follow:
            batch = [first, *follow.ready()]
            if options.since_ns:
                batch = [m for m in batch if m.time_ns >= options.since_ns]
            late = next((i for i, m in enumerate(batch) if options.until_ns
                         and m.time_ns > options.until_ns), None)
            if late is not None:
                if late:
                    yield batch[:late]
                return
            if batch:
                yield batch
    finally:
        if follow is not None:
            follow.close()


__all__ = ["LogsOptions", "LogsStream", "logs"]
