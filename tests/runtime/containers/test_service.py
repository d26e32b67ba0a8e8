import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.containers.attach import AttachOptions
from runtime.containers.execs import ExecConfig, ExecService
from runtime.containers.listing import ListOptions, select
from runtime.containers.model import ContainerConfig, HostConfig, LogConfig
from runtime.containers.service import (
    CommitOptions, ContainerService, CreateRequest, LogsOptions,
)
from runtime.containers.state import WaitCondition
from runtime.errors import (
    Conflict, ContainerNotFound, ImageNotFound, InvalidParameter, NotModified,
)
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.process.contract import StartFailed
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[ContainerService]:
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    await service.load()
    yield service
    await runtime.kill_all()


def cfg(*cmd: str, **kw: object) -> CreateRequest:
    host = kw.pop("host", HostConfig())
    name = kw.pop("name", "")
    return CreateRequest(ContainerConfig(image="busybox", cmd=cmd or None, **kw), host, name)  # type: ignore[arg-type]


def actions(svc: ContainerService) -> list[str]:
    return [e.action for e in svc.events.history()]


async def run(svc: ContainerService, *cmd: str, **kw: object) -> tuple[str, int]:
    result = await svc.create(cfg(*cmd, **kw))
    waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
    await svc.start(result.id)
    status = await asyncio.wait_for(waiter, 10)
    return result.id, status.exit_code


async def logs(svc: ContainerService, ref: str, **kw: object) -> list[tuple[str, bytes]]:
    stream = svc.logs(ref, LogsOptions(stdout=True, stderr=True, **kw))  # type: ignore[arg-type]
    return [(m.stream, m.line) async for m in stream.messages()]


async def test_create_merges_image_and_persists(svc: ContainerService) -> None:
    result = await svc.create(cfg(name="web", labels={"a": "b"}))
    c = svc.get("web")
    assert c.id == result.id and c.name == "/web"
    assert c.path == "sh" and c.args == () and c.config.hostname == c.id[:12]
    assert c.config.env and c.config.env[0].startswith("PATH=")
    assert c.host_config.log_config.type == "json-file" and c.host_config.network_mode == "default"
    assert (c.root / "config.v2.json").exists() and (c.root / "hostname").read_text() == c.id[:12] + "\n"
    assert "127.0.0.1\tlocalhost" in (c.root / "hosts").read_text()
    assert actions(svc) == ["create"]
    assert svc.images.checker is not None and svc.images.checker(c.image_id) == [c.id]  # type: ignore[attr-defined]


async def test_create_errors(svc: ContainerService) -> None:
    with pytest.raises(ImageNotFound, match="No such image: nosuch:latest"):
        await svc.create(CreateRequest(ContainerConfig(image="nosuch"), HostConfig()))
    await svc.create(cfg(name="dup"))
    with pytest.raises(Conflict, match='The container name "/dup" is already in use'):
        await svc.create(cfg(name="dup"))
    with pytest.raises(InvalidParameter, match="Invalid container name"):
        await svc.create(cfg(name="a b"))
    with pytest.raises(InvalidParameter, match="restart policy"):
        await svc.create(cfg(host=HostConfig(auto_remove=True, restart_policy=__import__(
            "runtime.containers.model", fromlist=["RestartPolicy"]).RestartPolicy("always"))))
    with pytest.raises(InvalidParameter, match="no log driver named 'bogus'"):
        await svc.create(cfg(host=HostConfig(log_config=LogConfig("bogus"))))


async def test_run_to_completion_with_logs(svc: ContainerService) -> None:
    cid, code = await run(svc, "sh", "-c", "echo hello; echo oops >&2; exit 3")
    assert code == 3
    c = svc.get(cid)
    assert c.state.status.value == "exited" and c.state.exit_code == 3 and c.state.finished_at_ns
    assert sorted(await logs(svc, cid)) == [("stderr", b"oops\n"), ("stdout", b"hello\n")]
    assert c.log_path.exists()
    assert actions(svc) == ["create", "start", "die"]
    die = svc.events.history()[-1]
    assert die.attributes["exitCode"] == "3"


async def test_fast_exit_is_not_lost(svc: ContainerService) -> None:
    for _ in range(5):
        _, code = await run(svc, "true")
        assert code == 0


async def test_start_twice_is_not_modified_and_start_failure(svc: ContainerService) -> None:
    result = await svc.create(cfg("sleep", "5"))
    await svc.start(result.id)
    with pytest.raises(NotModified):
        await svc.start(result.id)
    await svc.kill(result.id)
    bad = await svc.create(cfg("/no/such"))
    with pytest.raises(StartFailed) as exc:
        await svc.start(bad.id)
    assert "no such file or directory" in str(exc.value)
    c = svc.get(bad.id)
    assert c.state.status.value == "created" and c.state.exit_code == 127


async def test_stop_with_trap_then_kill_timeout(svc: ContainerService) -> None:
    result = await svc.create(cfg("sh", "-c", "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.05; done"))
    await svc.start(result.id)
    await asyncio.sleep(0.2)
    await svc.stop(result.id, timeout=5)
    c = svc.get(result.id)
    assert c.state.exit_code == 0
    assert ("stdout", b"got-term\n") in await logs(svc, result.id)
    with pytest.raises(NotModified):
        await svc.stop(result.id)
    # a process that ignores TERM is killed after the timeout
    stubborn = await svc.create(cfg("sh", "-c", "trap '' TERM; while true; do sleep 0.05; done"))
    await svc.start(stubborn.id)
    await asyncio.sleep(0.2)
    await svc.stop(stubborn.id, timeout=0)
    assert svc.get(stubborn.id).state.exit_code == 137
    kills = [e.attributes["signal"] for e in svc.events.history() if e.action == "kill"]
    assert kills[-2:] == ["15", "9"]
    assert actions(svc)[-1] == "stop"


async def test_kill_and_signal_errors(svc: ContainerService) -> None:
    result = await svc.create(cfg("sleep", "10"))
    with pytest.raises(Conflict, match="is not running"):
        await svc.kill(result.id)
    await svc.start(result.id)
    with pytest.raises(InvalidParameter, match="Invalid signal: BOGUS"):
        await svc.kill(result.id, "BOGUS")
    waiter = svc.wait(result.id, WaitCondition.NOT_RUNNING)
    await svc.kill(result.id, "KILL")
    assert (await waiter).exit_code == 137


async def test_remove_rules_and_waiters(svc: ContainerService) -> None:
    result = await svc.create(cfg("sleep", "10", name="rmme"))
    await svc.start(result.id)
    with pytest.raises(Conflict, match='cannot remove container "rmme": container is running'):
        await svc.remove("rmme")
    removed = svc.wait(result.id, WaitCondition.REMOVED)
    await svc.remove(result.id, force=True)
    assert (await removed).exit_code == 137
    with pytest.raises(ContainerNotFound):
        svc.get("rmme")
    assert actions(svc)[-1] == "destroy"
    assert result.id in svc.layers.removed  # type: ignore[attr-defined]


async def test_auto_remove(svc: ContainerService) -> None:
    result = await svc.create(cfg("echo", "bye", host=HostConfig(auto_remove=True)))
    removed = svc.wait(result.id, WaitCondition.REMOVED)
    await svc.start(result.id)
    assert (await asyncio.wait_for(removed, 10)).exit_code == 0
    with pytest.raises(ContainerNotFound):
        svc.get(result.id)


async def test_rename(svc: ContainerService) -> None:
    await svc.create(cfg(name="old"))
    await svc.create(cfg(name="other"))
    await svc.rename("old", "new")
    assert svc.get("new").name == "/new"
    with pytest.raises(ContainerNotFound):
        svc.get("old")
    with pytest.raises(Conflict):
        await svc.rename("new", "other")
    ev = svc.events.history()[-1]
    assert ev.action == "rename" and ev.attributes["oldName"] == "/old" and ev.attributes["name"] == "new"


async def test_attach_before_start_gets_all_output_and_stdin(svc: ContainerService) -> None:
    result = await svc.create(cfg("tr", "a-z", "A-Z", open_stdin=True, stdin_once=True,
                                  attach_stdin=True))
    att = svc.attach(result.id, AttachOptions(stream=True, stdin=True, stdout=True, stderr=True))
    await svc.start(result.id)
    await att.send(b"hello\n")
    await att.send_eof()
    out = b"".join([d async for _, d in att.output()])
    assert out == b"HELLO\n"
    assert "attach" in actions(svc)


async def test_detach_keys(svc: ContainerService) -> None:
    result = await svc.create(cfg("cat", open_stdin=True, tty=False))
    await svc.start(result.id)
    att = svc.attach(result.id, AttachOptions(stream=True, stdin=True, stdout=True))
    reader = asyncio.ensure_future(_collect(att))
    await att.send(b"abc\x10")
    await att.send(b"\x11")
    await asyncio.wait_for(reader, 5)
    assert att.detached.is_set()
    assert svc.get(result.id).state.running  # detaching leaves it running
    await svc.kill(result.id)


async def _collect(att: object) -> bytes:
    return b"".join([d async for _, d in att.output()])  # type: ignore[attr-defined]


async def test_logs_tail_follow(svc: ContainerService) -> None:
    result = await svc.create(cfg("sh", "-c", "for i in 1 2 3; do echo $i; done; sleep 0.3; echo 4"))
    await svc.start(result.id)
    await asyncio.sleep(0.15)
    stream = svc.logs(result.id, LogsOptions(stdout=True, follow=True, tail=2))
    got = [m.line async for m in stream.messages()]
    assert got == [b"2\n", b"3\n", b"4\n"]
    with pytest.raises(InvalidParameter, match="you must choose at least one stream"):
        svc.logs(result.id, LogsOptions())


async def test_logs_none_driver(svc: ContainerService) -> None:
    result = await svc.create(cfg("echo", "x", host=HostConfig(log_config=LogConfig("none"))))
    from runtime.errors import NotImplementedFeature
    with pytest.raises(NotImplementedFeature, match="does not support reading"):
        svc.logs(result.id, LogsOptions(stdout=True))


async def test_exec(svc: ContainerService) -> None:
    execs = ExecService(svc)
    result = await svc.create(cfg("sleep", "10"))
    with pytest.raises(Conflict, match="is not running"):
        execs.create(result.id, ExecConfig(cmd=("true",)))
    await svc.start(result.id)
    exec_id = execs.create(result.id, ExecConfig(cmd=("sh", "-c", "cat; echo done; exit 4"),
                                                 attach_stdin=True, attach_stdout=True,
                                                 attach_stderr=True))
    att = await execs.start(exec_id)
    assert att is not None
    await att.send(b"piped\n")
    await att.send_eof()
    out = b"".join([d async for _, d in att.output()])
    assert out == b"piped\ndone\n"
    record = execs.get(exec_id)
    await asyncio.wait_for(record.done.wait(), 5)
    assert record.exit_code == 4 and not record.running
    assert [a for a in actions(svc) if a.startswith("exec")] == [
        "exec_create: sh -c cat; echo done; exit 4", "exec_start: sh -c cat; echo done; exit 4",
        "exec_die"]
    with pytest.raises(Conflict):
        await execs.start(exec_id)
    await svc.kill(result.id)


async def test_list_filters(svc: ContainerService) -> None:
    a, _ = await run(svc, "sh", "-c", "exit 1", name="alpha", labels={"tier": "db"})
    b = (await svc.create(cfg("sleep", "5", name="beta"))).id
    await svc.start(b)
    c = (await svc.create(cfg(name="gamma"))).id

    def names(**kw: object) -> list[str]:
        opts = ListOptions(**kw)  # type: ignore[arg-type]
        return [x.name for x in select(svc.store, opts, svc.get, lambda r, c: r == c.config.image)]

    assert names() == ["/beta"]
    assert names(all=True) == ["/gamma", "/beta", "/alpha"]
    assert names(filters=Filters.of({"status": ["exited"]})) == ["/alpha"]
    assert names(filters=Filters.of({"exited": ["1"]})) == ["/alpha"]
    assert names(all=True, filters=Filters.of({"label": ["tier=db"]})) == ["/alpha"]
    assert names(all=True, filters=Filters.of({"name": ["^/b"]})) == ["/beta"]
    assert names(all=True, filters=Filters.of({"before": ["gamma"]})) == ["/beta", "/alpha"]
    assert names(all=True, filters=Filters.of({"since": ["alpha"]})) == ["/gamma", "/beta"]
    assert names(all=True, filters=Filters.of({"id": [c[:6]]})) == ["/gamma"]
    assert names(limit=1) == ["/gamma"]
    assert names(all=True, filters=Filters.of({"ancestor": ["busybox"]})) == ["/gamma", "/beta", "/alpha"]
    with pytest.raises(InvalidParameter):
        names(filters=Filters.of({"status": ["bogus"]}))
    with pytest.raises(InvalidParameter):
        names(filters=Filters.of({"bogus": ["x"]}))
    await svc.kill(b)


async def test_commit(svc: ContainerService) -> None:
    cid, _ = await run(svc, "sh", "-c", "true", name="tocommit")
    image_id = await svc.commit(cid, CommitOptions(repo="mine", tag="v1", comment="c", author="me",
                                             config=ContainerConfig(env=("A=1",), cmd=("echo", "hi"))))
    parent, diff, config, tag, comment, author = svc.images.committed[-1]  # type: ignore[attr-defined]
    assert tag == "mine:v1" and comment == "c" and author == "me"
    assert config["Cmd"] == ["echo", "hi"] and "A=1" in config["Env"]
    assert diff == svc.get(cid).rw_layer.upperdir  # type: ignore[union-attr]
    ev = svc.events.history()[-1]
    assert ev.action == "commit" and ev.attributes["imageID"] == image_id


async def test_reload_marks_lost_containers_stopped(tmp_path: Path) -> None:
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    result = await service.create(cfg("sleep", "10", name="survivor"))
    await service.start(result.id)
    again = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                             FakeLayers(tmp_path / "layers2"), HostRuntime())
    await again.load()
    c = again.get("survivor")
    assert not c.state.running and c.state.exit_code == 255
    await runtime.kill_all()


async def test_reload_uses_exit_reported_while_away(tmp_path: Path) -> None:
    """Exits the supervisor kept while the daemon was down are delivered when the new
    daemon registers on_exit, i.e. before its store is loaded: the real code wins."""
    import time as _time

    from runtime.process.contract import ExitReport
    runtime = HostRuntime()
    first = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                             FakeLayers(tmp_path / "layers"), runtime)
    result = await first.create(cfg("sleep", "10", name="away"))
    await first.start(result.id)
    pid = first.get(result.id).state.pid
    second_runtime = HostRuntime()
    second = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                              FakeLayers(tmp_path / "layers2"), second_runtime)
    for callback in second_runtime.callbacks:  # delivered right after registration
        callback(ExitReport(result.id, None, pid, 42, _time.time_ns()))
    await second.load()
    c = second.get("away")
    assert not c.state.running and c.state.exit_code == 42
    assert [e.action for e in second.events.history()] == ["die"]
    await runtime.kill_all()


async def test_boot_restarts_always_containers(tmp_path: Path) -> None:
    from runtime.containers.model import RestartPolicy
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    always = await service.create(cfg("sleep", "10", host=HostConfig(restart_policy=RestartPolicy("always"))))
    plain = await service.create(cfg("sleep", "10"))
    await service.start_restart_policy_containers()
    assert service.get(always.id).state.running and not service.get(plain.id).state.running
    await runtime.kill_all()


async def test_shutdown_stops_without_manual_flag(tmp_path: Path) -> None:
    from runtime.containers.model import RestartPolicy
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    result = await service.create(cfg("sleep", "10", host=HostConfig(
        restart_policy=RestartPolicy("unless-stopped"))))
    await service.start(result.id)
    await service.shutdown(timeout=1)
    c = service.get(result.id)
    assert not c.state.running and not c.has_been_manually_stopped
    await asyncio.sleep(0.3)
    assert not c.state.running  # no restart while shutting down
    again = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                             FakeLayers(tmp_path / "layers2"), runtime)
    await again.load()
    await again.start_restart_policy_containers()
    assert again.get(result.id).state.running
    await runtime.kill_all()
