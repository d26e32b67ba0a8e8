"""JSON endpoints under /api/: each parses, makes one (or two) Engine API calls, renders.

Engine errors keep the engine's status and text (``errors_middleware``). Streams that the
browser reads as they come (image pull, build) are passed on as newline-delimited JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from dashboard.appkeys import ENGINE, SECURE, SESSIONS
from dashboard.engine import EngineClient, EngineError, JSONValue
from dashboard.forms import FormError, RunForm, name_param
from dashboard.security import COOKIE, api_error, set_session_cookie

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTAINER_ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause")
routes = web.RouteTableDef()


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as exc:
        return api_error(exc.status, exc.message)
    except FormError as exc:
        return api_error(400, str(exc))
    except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
        return api_error(502, f"cannot reach the engine: {exc}")


def _engine(request: web.Request) -> EngineClient:
    return request.app[ENGINE]


async def _body(request: web.Request) -> JSONValue:
    try:
        return await request.json()
    except ValueError:
        raise FormError("expected a JSON body") from None


def _json(data: JSONValue, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


# ---- session ------------------------------------------------------------------------------

@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    try:
        data = await request.json()
    except ValueError:
        data = {}
    offered = data.get("token", "") if isinstance(data, dict) else ""
    issued = request.app[SESSIONS].login(offered if isinstance(offered, str) else "")
    if issued is None:
        return api_error(401, "wrong access token")
    sid, csrf = issued
    response = _json({"csrf": csrf})
    set_session_cookie(response, sid, request.app[SECURE])
    return response


@routes.get("/api/session")
async def session(request: web.Request) -> web.Response:
    """The CSRF token of this (cookie) session and which engine the dashboard fronts."""
    return _json({"csrf": request.app[SESSIONS].csrf_for(request.get("session")), "engine": _engine(request).host})


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS].logout(request.get("session"))
    response = _json({})
    response.del_cookie(COOKIE, path="/")
    return response


# ---- containers ---------------------------------------------------------------------------

@routes.get("/api/containers")
async def containers(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", "/containers/json", {"all": "1", "size": "0"}))


@routes.post("/api/containers")
async def run_container(request: web.Request) -> web.Response:
    """Create from the run form, then start (``docker run -d``); a missing image is pulled
    first, as ``docker run`` does."""
    form = RunForm.parse(await _body(request))
    engine = _engine(request)
    params = {"name": form.name} if form.name else {}
    try:
        created = await engine.json("POST", "/containers/create", params, form.body())
    except EngineError as exc:
        if exc.status != 404 or "No such image" not in exc.message:
            raise
        await _pull(engine, form.image)
        created = await engine.json("POST", "/containers/create", params, form.body())
    cid = created["Id"] if isinstance(created, dict) else ""
    await engine.json("POST", f"/containers/{cid}/start")
    return _json({"Id": cid}, status=201)


@routes.get("/api/containers/{id}")
async def inspect_container(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/containers/{request.match_info['id']}/json"))


@routes.post("/api/containers/{id}/{action}")
async def container_action(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in CONTAINER_ACTIONS:
        return api_error(404, f"unknown action {action!r}")
    await _engine(request).json("POST", f"/containers/{request.match_info['id']}/{action}")
    return _json({})


@routes.delete("/api/containers/{id}")
async def remove_container(request: web.Request) -> web.Response:
    params = {"force": "1" if request.query.get("force") else "0", "v": "1" if request.query.get("v") else "0"}
    await _engine(request).json("DELETE", f"/containers/{request.match_info['id']}", params)
    return _json({})


@routes.get("/api/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/containers/{request.match_info['id']}/top"))


@routes.get("/api/containers/{id}/changes")
async def changes(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/containers/{request.match_info['id']}/changes") or [])


@routes.get("/api/containers/{id}/usage")
async def usage(request: web.Request) -> web.Response:
    """CPU % and memory of a running container, from one stats sample of the engine."""
    stats = await _engine(request).json("GET", f"/containers/{request.match_info['id']}/stats", {"stream": "0"})
    return _json(summarize_stats(stats))


def summarize_stats(stats: JSONValue) -> dict[str, float]:
    """CPU % (as ``docker stats`` computes it), memory, network and block I/O totals."""
    if not isinstance(stats, dict):
        return {}
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = (cpu_delta / sys_delta) * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = stats.get("memory_stats") or {}
    mem_stats = mem.get("stats") or {}
    cache = mem_stats.get("inactive_file", mem_stats.get("total_inactive_file", 0)) or 0
    used = max(0, (mem.get("usage") or 0) - cache)
    rx = tx = 0
    for net in (stats.get("networks") or {}).values():
        rx += net.get("rx_bytes", 0)
        tx += net.get("tx_bytes", 0)
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return {"cpu": round(cpu_pct, 2), "mem": used, "mem_limit": mem.get("limit") or 0,
            "rx": rx, "tx": tx, "blk_read": read, "blk_write": write}


@routes.get("/api/containers/{id}/archive")
async def archive(request: web.Request) -> web.StreamResponse:
    """Download a file or folder of the container as a tar (``docker cp CONTAINER:PATH -``)."""
    path = request.query.get("path", "/")
    async with _engine(request).stream("GET", f"/containers/{request.match_info['id']}/archive", {"path": path}) as resp:
        name = (path.rstrip("/").rsplit("/", 1)[-1] or "root") + ".tar"
        out = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                          "Content-Disposition": f'attachment; filename="{name}"'})
        await out.prepare(request)
        async for chunk in resp.content.iter_chunked(65536):
            await out.write(chunk)
        await out.write_eof()
        return out


# ---- images -------------------------------------------------------------------------------

@routes.get("/api/images")
async def images(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", "/images/json"))


@routes.get("/api/images/{id}/history")
async def image_history(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/images/{request.match_info['id']}/history"))


@routes.get("/api/images/{id}")
async def inspect_image(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/images/{request.match_info['id']}/json"))


@routes.post("/api/images/{id}/tag")
async def tag_image(request: web.Request) -> web.Response:
    data = await _body(request)
    target = name_param(data, "target")
    repo, _, tag = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
    await _engine(request).json("POST", f"/images/{request.match_info['id']}/tag", {"repo": repo, "tag": tag})
    return _json({})


@routes.delete("/api/images/{id}")
async def remove_image(request: web.Request) -> web.Response:
    params = {"force": "1" if request.query.get("force") else "0"}
    return _json(await _engine(request).json("DELETE", f"/images/{request.match_info['id']}", params))


@routes.post("/api/images/prune")
async def prune_images(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("POST", "/images/prune"))


async def _pass_stream(request: web.Request, resp: aiohttp.ClientResponse) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await out.prepare(request)
    async for line in resp.content:
        if line.strip():
            await out.write(line if line.endswith(b"\n") else line + b"\n")
    await out.write_eof()
    return out


def _pull_params(ref: str) -> dict[str, str]:
    """POST /images/create parameters for a reference (``docker pull`` adds ``latest``)."""
    if "@" in ref:
        return {"fromImage": ref}
    name, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:
        name, _, tag = ref.rpartition(":")
    return {"fromImage": name, "tag": tag}


async def _pull(engine: EngineClient, ref: str) -> None:
    """Pull to the end; EngineError with the engine's message if the pull failed."""
    async with engine.stream("POST", "/images/create", _pull_params(ref)) as resp:
        async for line in resp.content:
            if line.strip():
                message = json.loads(line)
                if isinstance(message, dict) and message.get("error"):
                    raise EngineError(404 if "not found" in str(message["error"]) else 500, str(message["error"]))


@routes.post("/api/images/pull")
async def pull_image(request: web.Request) -> web.StreamResponse:
    """``docker pull``: the engine's JSON progress messages, one a line, as they come."""
    ref = name_param(await _body(request), "image")
    async with _engine(request).stream("POST", "/images/create", _pull_params(ref)) as resp:
        return await _pass_stream(request, resp)


@routes.post("/api/images/build")
async def build_image(request: web.Request) -> web.StreamResponse:
    """``docker build``: the body is a Dockerfile or a tar of the context (query ``kind``);
    a context is passed on to the engine as it arrives."""
    data: bytes | aiohttp.StreamReader = request.content
    if request.query.get("kind") == "dockerfile":
        data = _single_file_tar("Dockerfile", await request.read())
    params = {"t": request.query["t"]} if request.query.get("t") else {}
    async with _engine(request).stream("POST", "/build", params, data=data,
                                       headers={"Content-Type": "application/x-tar"}) as resp:
        return await _pass_stream(request, resp)


def _single_file_tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@routes.post("/api/images/load")
async def load_images(request: web.Request) -> web.StreamResponse:
    """``docker load``: the body is an image archive (as ``docker save`` writes), passed on as
    it arrives."""
    async with _engine(request).stream("POST", "/images/load", {"quiet": "0"}, data=request.content,
                                       headers={"Content-Type": "application/x-tar"}) as resp:
        return await _pass_stream(request, resp)


@routes.get("/api/images/{id}/export")
async def export_image(request: web.Request) -> web.StreamResponse:
    """``docker save``: the image as a tar download."""
    ident = request.match_info["id"]
    async with _engine(request).stream("GET", f"/images/{ident}/get") as resp:
        out = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                          "Content-Disposition": f'attachment; filename="{ident.replace(":", "_")}.tar"'})
        await out.prepare(request)
        async for chunk in resp.content.iter_chunked(65536):
            await out.write(chunk)
        await out.write_eof()
        return out


# ---- networks, volumes, system --------------------------------------------------------------

@routes.get("/api/networks")
async def networks(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", "/networks"))


@routes.post("/api/networks")
async def create_network(request: web.Request) -> web.Response:
    data = await _body(request)
    body: dict[str, object] = {"Name": name_param(data, "name"),
                               "Driver": name_param(data, "driver", required=False) or "bridge"}
    subnet = name_param(data, "subnet", required=False)
    if subnet:
        body["IPAM"] = {"Driver": "default", "Config": [{"Subnet": subnet}]}
    return _json(await _engine(request).json("POST", "/networks/create", body=body), status=201)


@routes.post("/api/networks/prune")
async def prune_networks(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("POST", "/networks/prune"))


@routes.get("/api/networks/{id}")
async def inspect_network(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/networks/{request.match_info['id']}"))


@routes.delete("/api/networks/{id}")
async def remove_network(request: web.Request) -> web.Response:
    await _engine(request).json("DELETE", f"/networks/{request.match_info['id']}")
    return _json({})


@routes.get("/api/volumes")
async def volumes(request: web.Request) -> web.Response:
    data = await _engine(request).json("GET", "/volumes")
    return _json((data.get("Volumes") if isinstance(data, dict) else None) or [])


@routes.post("/api/volumes")
async def create_volume(request: web.Request) -> web.Response:
    data = await _body(request)
    body = {"Name": name_param(data, "name", required=False),
            "Driver": name_param(data, "driver", required=False) or "local"}
    return _json(await _engine(request).json("POST", "/volumes/create", body=body), status=201)


@routes.post("/api/volumes/prune")
async def prune_volumes(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("POST", "/volumes/prune"))


@routes.get("/api/volumes/{name}")
async def inspect_volume(request: web.Request) -> web.Response:
    return _json(await _engine(request).json("GET", f"/volumes/{request.match_info['name']}"))


@routes.delete("/api/volumes/{name}")
async def remove_volume(request: web.Request) -> web.Response:
    params = {"force": "1" if request.query.get("force") else "0"}
    await _engine(request).json("DELETE", f"/volumes/{request.match_info['name']}", params)
    return _json({})


@routes.get("/api/system")
async def system(request: web.Request) -> web.Response:
    engine = _engine(request)
    return _json({"info": await engine.json("GET", "/info"), "version": await engine.json("GET", "/version"),
                  "df": await engine.json("GET", "/system/df")})

