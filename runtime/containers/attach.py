"""Attach sessions: what one ``docker attach`` / ``docker run`` / ``exec start`` client sees.

An ``Attachment`` yields the process's output (optionally preceded by the logged history)
and accepts the client's stdin, watching for the detach key sequence. The API layer pumps
it over the hijacked connection; the session never blocks the container (see stdio).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from runtime.containers.context import ContainerContext
from runtime.containers.stdio import Chunk, StdioFanout, Subscription
from runtime.errors import Conflict, InvalidParameter
from runtime.logs.driver import LogMessage, ReadOptions, open_reader

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


def parse_detach_keys(spec: str) -> bytes:
    """Docker's ``term.ToBytes``: "ctrl-p,ctrl-q" -> b"\\x10\\x11"; single chars literal."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        lower = key.lower()
        if len(key) == 1:
            out.append(ord(key))
        elif lower.startswith("ctrl-") and len(key) == 6:
            ch = lower[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[ch])
            else:
                raise InvalidParameter(f"Invalid escape keys ({spec}) provided")
        else:
            raise InvalidParameter(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class AttachOptions:
    stream: bool = False
    logs: bool = False
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    detach_keys: str | None = None


class Attachment:
    """One client's view of a process: ``output()`` to read, ``send``/``send_eof`` to write.

    ``fanout`` resolves to the subscription once the process runs (attach is usually made
    before ``start``). ``history`` is logged output replayed first (``logs=1``).
    """

    def __init__(
        self,
        *,
        tty: bool,
        subscription: asyncio.Future[tuple[StdioFanout, Subscription[Chunk]] | None],
        stdin: bool,
        close_stdin_on_eof: bool,
        detach_keys: bytes,
        history: AsyncIterator[LogMessage] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.tty = tty
        self._subscription = subscription
        self._use_stdin = stdin
        self._close_stdin_on_eof = close_stdin_on_eof
        self._keys = detach_keys
        self._held = b""
        self._history = history
        self._on_close = on_close
        self.detached = asyncio.Event()
        self._closed = False

    async def _fanout(self) -> StdioFanout | None:
        result = await self._subscription
        return result[0] if result else None

    async def output(self) -> AsyncIterator[Chunk]:
        """History (if asked), then live output until EOF or detach."""
        if self._history is not None:
            async for message in self._history:
                yield message.stream, message.line
        result = await _first(self._subscription, self.detached)
        if result is None:
            return
        assert isinstance(result, tuple)
        sub: Subscription[Chunk] = result[1]
        if self.detached.is_set():
            return
        while True:
            item = await sub.get()  # ends with None at EOF, or when detach closes it
            if item is None:
                return
            yield item

    async def send(self, data: bytes) -> None:
        """Forward client input to stdin, intercepting the detach sequence."""
        if not self._use_stdin or self.detached.is_set():
            return
        if self._keys:
            data = self._held + data
            self._held = b""
            index = data.find(self._keys)
            if index >= 0:
                await self._write(data[:index])
                self._detach()
                return
            for n in range(min(len(self._keys) - 1, len(data)), 0, -1):
                if self._keys.startswith(data[-n:]):
                    self._held = data[-n:]
                    data = data[:-n]
                    break
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        fanout = await self._fanout()
        if fanout is None or not fanout.has_stdin:
            return
        try:
            await fanout.write_stdin(data)
        except OSError:
            pass

    async def send_eof(self) -> None:
        """The client closed its input: close the process's stdin if StdinOnce."""
        if self._held:
            held, self._held = self._held, b""
            await self._write(held)
        if not self._use_stdin or not self._close_stdin_on_eof or self.detached.is_set():
            return
        fanout = await self._fanout()
        if fanout is not None:
            fanout.close_stdin()

    def _detach(self) -> None:
        self.detached.set()
        if self._subscription.done() and not self._subscription.cancelled():
            result = self._subscription.result()
            if result is not None:
                result[1].close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._subscription.done() and not self._subscription.cancelled():
            result = self._subscription.result()
            if result is not None:
                result[1].close()
        else:
            self._subscription.cancel()
        if self._on_close is not None:
            self._on_close()


async def _first(value: Awaitable[object], stop: asyncio.Event) -> object:
    """``await value`` unless ``stop`` is set first (then None)."""
    if stop.is_set():
        return None
    task = asyncio.ensure_future(value)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    return None


# --- the operations: docker attach, and resizing its TTY ------------------------------------


def attach(ctx: ContainerContext, ref: str, options: AttachOptions) -> Attachment:
    """``POST /containers/{id}/attach``: validate and set up a session (the API layer
    hijacks afterwards). Before the start (``docker run``, ``start -a``) the session
    subscribes when the process is there."""
    container = ctx.get(ref)
    state = container.state
    if state.paused:
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if state.restarting:
        raise Conflict("You cannot attach to a restarting container, wait until it is running")
    try:
        keys = (parse_detach_keys(options.detach_keys) if options.detach_keys
                else DEFAULT_DETACH_KEYS)
    except InvalidParameter:
        raise InvalidParameter(f"Invalid detach keys ({options.detach_keys}) provided") from None
    if options.stdin and not container.config.open_stdin:
        options = replace(options, stdin=False)
    history = None
    live = ctx.live_of(container)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[StdioFanout, Subscription[Chunk]] | None] = loop.create_future()

    def subscribe(fanout: StdioFanout | None) -> None:
        if future.done():
            return
        if fanout is None:
            future.set_result(None)
        else:
            future.set_result((fanout, fanout.subscribe(options.stdout, options.stderr)))

    if options.logs and container.log_driver == "json-file":
        if live.fanout is not None and not live.fanout.closed:
            live.fanout.read_pending()
        history = _as_chunks(open_reader("json-file", container.log_path).read(ReadOptions()),
                             options.stdout, options.stderr)
    if not options.stream:
        future.set_result(None)
    elif live.fanout is not None and not live.fanout.closed:
        subscribe(live.fanout)
    else:
        live.pending.append(subscribe)  # e.g. docker run / start -a: attach, then start
    ctx.event(container, "attach")
    return Attachment(
        tty=container.config.tty, subscription=future, stdin=options.stdin,
        close_stdin_on_eof=container.config.stdin_once, detach_keys=keys, history=history,
    )


def resize(ctx: ContainerContext, ref: str, height: int, width: int) -> None:
    """``POST /containers/{id}/resize``."""
    container = ctx.get(ref)
    live = ctx.live.get(container.id)
    if not container.state.running or live is None or live.fanout is None:
        raise Conflict(f"Container {container.id} is not running")
    live.fanout.resize(height, width)
    ctx.event(container, "resize", height=str(height), width=str(width))


async def _as_chunks(messages: AsyncIterator[LogMessage], stdout: bool,
                     stderr: bool) -> AsyncIterator[LogMessage]:
    async for message in messages:
        if (message.stream == "stdout" and stdout) or (message.stream == "stderr" and stderr):
            yield message


__all__ = ["AttachOptions", "Attachment", "parse_detach_keys", "DEFAULT_DETACH_KEYS",
           "attach", "resize"]
