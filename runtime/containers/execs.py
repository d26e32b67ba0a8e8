"""``docker exec``: exec records, start (with an attach session), inspect, resize."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from runtime.containers.attach import DEFAULT_DETACH_KEYS, Attachment, parse_detach_keys
from runtime.containers.model import Container, new_id
from runtime.containers.service import ContainerService
from runtime.containers.spec import capabilities, container_env, replace_or_append_env
from runtime.containers.stdio import Chunk, StdioFanout, Subscription
from runtime.errors import Conflict, InvalidParameter, NotFound, SystemError_
from runtime.process.contract import ExitReport, StartedProcess, StartFailed
from runtime.spec.model import ExecSpec, ProcessSpec, UserSpec


@dataclass(frozen=True, slots=True)
class ExecConfig:
    cmd: tuple[str, ...]
    user: str = ""
    privileged: bool = False
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    detach_keys: str = ""
    env: tuple[str, ...] = ()
    working_dir: str = ""
    console_size: tuple[int, int] | None = None


RESIZE_WAIT = 10.0  # dockerd's ContainerExecResize


class NotRunning(Conflict):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"Container {container_id} is not running")


class ExecNotFound(NotFound):
    def __init__(self, exec_id: str) -> None:
        super().__init__(f"No such exec instance: {exec_id}")


@dataclass(slots=True)
class ExecRecord:
    id: str
    container: Container
    config: ExecConfig
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    fanout: StdioFanout | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    pending_exit: ExitReport | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # start finished, either way

    @property
    def can_remove(self) -> bool:
        return False


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.execs: dict[str, ExecRecord] = {}
        containers.set_exec_exit_handler(self._on_exit)

    def get(self, exec_id: str) -> ExecRecord:
        record = self.execs.get(exec_id)
        if record is None:
            raise ExecNotFound(exec_id)
        return record

    def create(self, ref: str, config: ExecConfig) -> str:
        container = self.containers.get(ref)
        if not container.state.running:
            raise NotRunning(container.id)
        if container.state.paused:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if container.state.restarting:
            raise Conflict(f"Container {container.id} is restarting, wait until the container "
                           "is running")
        if not config.cmd:
            raise InvalidParameter("No exec command specified")
        if config.detach_keys:
            try:
                parse_detach_keys(config.detach_keys)
            except InvalidParameter as exc:
                raise SystemError_(str(exc)) from None  # dockerd's exec create: a plain 500
        exec_id = new_id()
        self.execs[exec_id] = ExecRecord(exec_id, container, config)
        container.exec_ids.append(exec_id)
        self.containers.event(container, f"exec_create: {_command(config)}", execID=exec_id)
        return exec_id

    async def start(self, exec_id: str, detach: bool = False, tty: bool | None = None,
                    console_size: tuple[int, int] | None = None) -> Attachment | None:
        """Start the process; returns an attach session unless ``detach``."""
        record = self.get(exec_id)
        if record.started:
            raise Conflict(f"Error: Exec command {exec_id} is already running"
                           if record.running else f"Error: Exec command {exec_id} has already run")
        container = record.container
        if not container.state.running:
            raise NotRunning(container.id)
        if container.state.restarting:
            raise Conflict(f"Container {container.id} is restarting, wait until the container "
                           "is running")
        if container.state.paused:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        config = record.config
        record.started = True
        spec = ExecSpec(container.id, exec_id, self._process(container, config, console_size),
                        privileged=config.privileged)
        self.containers.event(container, f"exec_start: {_command(config)}", execID=exec_id)
        try:
            process = await self.containers.runtime.exec(spec)
        except BaseException as exc:
            record.ready.set()
            if isinstance(exc, StartFailed):
                record.exit_code = 126
                record.done.set()
                self._remove_later(record)
            raise
        record.running = True
        record.pid = process.pid
        record.fanout = StdioFanout(process, None)
        record.ready.set()
        attachment = None
        if not detach:
            attachment = self._attach(record, process, config)
        if record.pending_exit is not None:  # exited before we registered
            self._finish(record, record.pending_exit)
        return attachment

    def _attach(self, record: ExecRecord, process: StartedProcess,
                config: ExecConfig) -> Attachment:
        assert record.fanout is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[StdioFanout, Subscription[Chunk]] | None] = loop.create_future()
        if config.attach_stdout or config.attach_stderr:
            future.set_result((record.fanout, record.fanout.subscribe(config.attach_stdout,
                                                                      config.attach_stderr)))
        else:
            future.set_result(None)
        keys = parse_detach_keys(config.detach_keys) if config.detach_keys else DEFAULT_DETACH_KEYS
        return Attachment(tty=config.tty, subscription=future, stdin=config.attach_stdin,
                          close_stdin_on_eof=True, detach_keys=keys)

    def _process(self, container: Container, config: ExecConfig,
                 console_size: tuple[int, int] | None) -> ProcessSpec:
        host = container.host_config
        env = replace_or_append_env(container_env(container.config), config.env)
        if config.tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        size = console_size or config.console_size
        if config.privileged:
            from dataclasses import replace
            caps = capabilities(replace(host, privileged=True), self.containers.settings.all_caps)
        else:
            caps = capabilities(host, self.containers.settings.all_caps)
        from runtime.containers.spec import no_new_privileges
        return ProcessSpec(
            args=config.cmd, env=tuple(env),
            cwd=config.working_dir or container.config.working_dir or "/",
            user=UserSpec(config.user or container.config.user, tuple(host.group_add or ())),
            tty=config.tty, open_stdin=config.attach_stdin, capabilities=caps,
            no_new_privileges=no_new_privileges(host.security_opt),
            console_size=size if config.tty and size and all(size) else None,
        )

    def runtime_lost(self, finished_at_ns: int) -> None:
        """The supervisor that ran the execs died (their processes die with their
        containers): each running exec ends with 255."""
        for record in list(self.execs.values()):
            if record.running and record.pid:
                self._on_exit(ExitReport(record.container.id, record.id, record.pid, 255, finished_at_ns))

    def _on_exit(self, report: ExitReport) -> None:
        record = self.execs.get(report.exec_id or "")
        if record is None:
            return
        if record.fanout is None:
            if record.exit_code is None:  # not registered yet: start() finishes it
                record.pending_exit = report
            return
        self._finish(record, report)

    def _finish(self, record: ExecRecord, report: ExitReport) -> None:
        record.pending_exit = None

        async def finish() -> None:
            if record.fanout is not None:
                await record.fanout.drain()
            record.running = False
            record.exit_code = report.exit_code
            # kept for inspect only from now on (for minutes, at thousands of execs a
            # minute): its streams, buffers and subscriber sets go now
            record.fanout = None
            record.done.set()
            self.containers.event(record.container, "exec_die", execID=record.id,
                                   exitCode=str(report.exit_code))
            self._remove_later(record)

        asyncio.get_running_loop().create_task(finish())

    def _remove_later(self, record: ExecRecord, delay: float = 300.0) -> None:
        """Keep a finished exec inspectable for a while (the CLI reads ExitCode after)."""
        def drop() -> None:
            self.execs.pop(record.id, None)
            if record.id in record.container.exec_ids:
                record.container.exec_ids.remove(record.id)
        asyncio.get_running_loop().call_later(delay, drop)

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        """As dockerd: wait (up to RESIZE_WAIT) for the exec to have started; the CLI sends
        the first resize while its start request is still on the way."""
        record = self.get(exec_id)
        try:
            async with asyncio.timeout(RESIZE_WAIT):
                await record.ready.wait()
        except TimeoutError:
            raise SystemError_("timeout waiting for exec session ready") from None
        if record.pid == 0:
            raise InvalidParameter("exec process is not started")
        if not record.running or record.fanout is None:
            raise Conflict(f"Exec {exec_id} is not running")
        record.fanout.resize(height, width)


def _command(config: ExecConfig) -> str:
    return config.cmd[0] + " " + " ".join(config.cmd[1:])


__all__ = ["ExecConfig", "ExecRecord", "ExecService", "ExecNotFound", "NotRunning"]
