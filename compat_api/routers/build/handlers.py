"""``POST /build`` (classic builder), ``POST /build/prune``, ``POST /build/cancel``.

This module parses the request, runs :func:`builder.builder.prepare` then ``build`` on the
engine's services (:class:`builder.engine.EngineBuildRuntime`) and renders its output.

The answer follows dockerd's ``postBuild``: the request is validated and the context
read and parsed before anything is written, so those errors get a plain HTTP status.
Once output has started, a failure is one in-band ``errorDetail``/``error`` line (with the
exit code as ``errorDetail.code`` for a failed ``RUN``). With ``q=1`` the step output is
held back: success sends only the image ID, failure sends what was held, then the error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from builder.backend import HostOptions
from builder.builder import BuildRequest, build, prepare
from builder.engine import EngineBuildRuntime
from builder.errors import CommandFailed
from compat_api.adjustments import adjust_request
from compat_api.appkeys import ENGINE
from compat_api.params import api_version, bool_value
from compat_api.render import json_response
from compat_api.convert.containers import config_from_wire
from compat_api.streams.jsonmessage import JSONMessage, JsonMessageWriter, ProgressDetail, render_progress
from compat_api.versions import APIVersion
from runtime.engine import Engine
from runtime.errors import EngineError, InvalidParameter, NotImplementedFeature
from runtime.images.auth import AuthConfig
from runtime.images.model import Progress
from runtime.images.streams import BlockingReader

log = logging.getLogger(__name__)

V1_30 = APIVersion(1, 30)
STDERR_START = "\x1b[91m"
STDERR_END = "\x1b[0m"
CLIENT_POLL = 0.5  # seconds between checks that the build's client is still connected


def _int64_or_zero(request: web.Request, key: str) -> int:
    try:
        return int(request.query.get(key, "") or 0)
    except ValueError:
        return 0  # moby's Int64ValueOrZero


def _json_param(request: web.Request, key: str, what: str, kind: type) -> Any:
    raw = request.query.get(key, "")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"error reading {what}: {exc}") from None
    if value is not None and not isinstance(value, kind):
        raise InvalidParameter(f"error reading {what}: json: cannot unmarshal {type(value).__name__} "
                               f"into Go value of type {'map[string]string' if kind is dict else '[]string'}")
    return value


def parse_build_request(request: web.Request) -> tuple[BuildRequest, bool]:
    """(the build's options, quiet) from the query, with dockerd's checks and texts."""
    query = request.query
    version = api_version(request)
    if "securityopt" in query:
        raise InvalidParameter("security options are not supported on linux")
    if bool_value(request, "squash"):
        raise InvalidParameter("squash is only supported with experimental mode")
    builder_version = query.get("version", "")
    if builder_version not in ("", "1", "2"):
        raise InvalidParameter(f'invalid version "{builder_version}"')
    if builder_version == "2":
        raise NotImplementedFeature(
            "BuildKit builds (version=2) are not supported by this daemon; use the classic builder (DOCKER_BUILDKIT=0)")
    isolation = query.get("isolation", "")
    if isolation not in ("", "default"):
        raise InvalidParameter(f'unsupported isolation: "{isolation}"')
    remote = query.get("remote", "")
    if remote == "client-session":
        raise InvalidParameter("experimental session with v1 builder is no longer supported, "
                               "use builder version v2 (BuildKit) instead")
    if remote:
        raise NotImplementedFeature(
            f"remote build contexts ({remote}) are not supported: this daemon has no network access")
    shm = query.get("shmsize", "")
    try:
        shm_size = int(shm) if shm else 0
    except ValueError:
        raise InvalidParameter(f'strconv.ParseInt: parsing "{shm}": invalid syntax') from None
    build_args_raw = _json_param(request, "buildargs", "build args", dict) or {}
    build_args = {str(k): (None if v is None else str(v)) for k, v in build_args_raw.items()}
    labels_raw = _json_param(request, "labels", "labels", dict) or {}
    cache_from = tuple(str(ref) for ref in _json_param(request, "cachefrom", "cache-from", list) or [])
    ulimits = _json_param(request, "ulimits", "ulimit settings", list) or []
    versioned = adjust_request("ImageBuild", version, {"platform": query.get("platform", ""),
                                                       "outputs": query.get("outputs", "")})
    if versioned.get("outputs"):
        _json_param(request, "outputs", "outputs", list)
    remove = True
    if bool_value(request, "forcerm"):
        remove = True
    elif query.get("rm", "") != "":
        remove = bool_value(request, "rm")
    host = HostOptions(
        network_mode=query.get("networkmode", ""),
        extra_hosts=tuple(query.getall("extrahosts", [])),
        shm_size=shm_size,
        memory=_int64_or_zero(request, "memory"),
        memory_swap=_int64_or_zero(request, "memswap"),
        cpu_shares=_int64_or_zero(request, "cpushares"),
        cpu_period=_int64_or_zero(request, "cpuperiod"),
        cpu_quota=_int64_or_zero(request, "cpuquota"),
        cpuset_cpus=query.get("cpusetcpus", ""),
        cpuset_mems=query.get("cpusetmems", ""),
        cgroup_parent=query.get("cgroupparent", ""),
        ulimits=tuple(u for u in ulimits if isinstance(u, Mapping)),
    )
    options = BuildRequest(
        dockerfile=query.get("dockerfile", ""),
        tags=tuple(query.getall("t", [])),
        no_cache=bool_value(request, "nocache"),
        remove=remove,
        force_remove=bool_value(request, "forcerm"),
        pull=bool_value(request, "pull"),
        build_args=build_args,
        labels={str(k): str(v) for k, v in labels_raw.items()},
        target=query.get("target", ""),
        platform=str(versioned.get("platform") or ""),
        host=host,
        cache_from=cache_from,
    )
    return options, bool_value(request, "q")


def decode_auth_configs(header: str) -> dict[str, AuthConfig]:
    """``X-Registry-Config``: base64url JSON of ``{registry: AuthConfig}``. As dockerd,
    a value that does not decode means "no credentials"."""
    if not header:
        return {}
    try:
        padded = header.strip() + "=" * (-len(header.strip()) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    if not isinstance(doc, Mapping):
        return {}
    return {str(key): AuthConfig.from_json(value) for key, value in doc.items()}


def build_runtime(request: web.Request) -> EngineBuildRuntime:
    """The engine's services for this build, with the request's credentials and platform."""
    engine: Engine = request.app[ENGINE]
    if engine.images is None or engine.containers is None:
        raise NotImplementedFeature("building images is not available in this engine")
    return EngineBuildRuntime(engine.images, engine.containers, engine.config.data_root, config_from_wire,
                              decode_auth_configs(request.headers.get("X-Registry-Config", "")),
                              request.query.get("platform", ""))


class StreamOutput:
    """``builder.backend.BuildOutput`` writing JSON message lines; the response starts
    with the first line (so earlier failures still get an HTTP status)."""

    def __init__(self, request: web.Request, quiet: bool, want_aux: bool) -> None:
        self.request = request
        self.quiet = quiet
        self.want_aux = want_aux
        self.writer: JsonMessageWriter | None = None
        self.held: list[JSONMessage] = []

    @property
    def started(self) -> bool:
        return self.writer is not None

    async def _write(self, message: JSONMessage) -> None:
        if self.quiet:
            self.held.append(message)
            return
        await self._send(message)

    async def _send(self, message: JSONMessage) -> None:
        if self.writer is None:
            self.writer = await JsonMessageWriter.start(self.request)
        await self.writer.write(message)

    async def stdout(self, text: str) -> None:
        await self._write({"stream": text})

    async def stderr(self, text: str) -> None:
        await self._write({"stream": STDERR_START + text + STDERR_END})

    async def aux(self, value: Mapping[str, Any]) -> None:
        if self.want_aux:
            await self._write({"aux": dict(value)})

    async def progress(self, record: Progress) -> None:
        """Pull progress, as dockerd's JSON progress output writes it into the build."""
        if record.stream is not None:
            await self._write({"stream": record.stream})
            return
        if record.aux is not None:
            return  # the pull's own result records are not part of a build's answer
        message: JSONMessage = {"status": record.status}
        if record.current is not None or record.total is not None:
            current, total = record.current or 0, record.total or 0
            detail: ProgressDetail = {}
            if current:
                detail["current"] = current
            if total:
                detail["total"] = total
            message["progressDetail"] = detail
            bar = render_progress(current, total)
            if bar:
                message["progress"] = bar
        if record.id:
            message["id"] = record.id
        await self._write(message)

    async def fail(self, exc: BaseException) -> None:
        """Report ``exc`` in-band; re-raise it when nothing was (or will be) written."""
        for message in self.held:
            await self._send(message)
        self.held = []
        if self.writer is None:
            raise exc
        text = str(exc) or type(exc).__name__
        code = exc.code if isinstance(exc, CommandFailed) else None
        await self.writer.error(text, code=code)

    async def succeed(self, image_id: str) -> None:
        if self.quiet:
            self.held = []
            await self._send({"stream": image_id + "\n"})

    def response_or_empty(self) -> web.StreamResponse:
        """What the handler returns when nobody is left to answer."""
        return self.writer.response if self.writer is not None else web.Response(status=499)

    async def finish(self) -> web.StreamResponse:
        if self.writer is None:
            self.writer = await JsonMessageWriter.start(self.request)
        return await self.writer.finish()


async def build_image(request: web.Request) -> web.StreamResponse:
    runtime = build_runtime(request)
    options, quiet = parse_build_request(request)
    output = StreamOutput(request, quiet, api_version(request) >= V1_30)
    reader = BlockingReader(request.content, asyncio.get_running_loop())
    try:
        # the whole context is read (and its errors answered with a status) before the
        # build starts; the body reader is done with then
        context, parsed = await prepare(runtime, options, reader)
    finally:
        reader.close()
    task = asyncio.ensure_future(build(runtime, options, context, parsed, output))
    watchdog = asyncio.ensure_future(_cancel_when_client_leaves(request, task))
    try:
        try:
            image_id = await task
        except (ConnectionError, asyncio.CancelledError):
            if not _client_gone(request):
                raise
            log.debug("build client disconnected: build cancelled")
            return output.response_or_empty()
        except Exception as exc:
            if not isinstance(exc, EngineError):
                log.exception("build failed unexpectedly")
            await output.fail(exc)
            return await output.finish()
        await output.succeed(image_id)
        return await output.finish()
    finally:
        watchdog.cancel()
        if not task.done():
            task.cancel()  # the handler itself was cancelled
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(context.close)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _cancel_when_client_leaves(request: web.Request, task: asyncio.Future[str]) -> None:
    """dockerd cancels a build when its client goes away (the running step's container is
    removed); without this, a silent step would only notice at its next output line."""
    while not task.done():
        if _client_gone(request):
            task.cancel()
            return
        await asyncio.sleep(CLIENT_POLL)


async def prune(request: web.Request) -> web.Response:
    """Without BuildKit there is no build cache to prune (intermediate images are pruned
    with ``docker image prune``); dockerd reports an empty result the same way."""
    for key in ("keep-storage", "reserved-space", "max-used-space", "min-free-space"):
        raw = request.query.get(key, "")
        if raw:
            try:
                int(raw)
            except ValueError:
                raise InvalidParameter(f'{key} is in bytes and expects an integer, got {raw}: '
                                       f'strconv.Atoi: parsing "{raw}": invalid syntax') from None
    engine = request.app[ENGINE]
    engine.events.publish("builder", "prune", "", {"reclaimed": "0"})
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


async def cancel(request: web.Request) -> web.Response:
    if not request.query.get("id", ""):
        raise InvalidParameter("build ID not provided")
    # only BuildKit builds have IDs to cancel; there is nothing running under one
    return web.Response(status=200, content_type="application/json")


__all__ = ["build_image", "prune", "cancel", "parse_build_request", "StreamOutput", "build_runtime",
           "decode_auth_configs"]
