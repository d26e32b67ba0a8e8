"""A whole classic build: context, Dockerfile, stages, tags.

:func:`prepare` (the context, read whole first) then :func:`build` are what ``POST /build``
runs once the request is validated. Output goes to a :class:`~builder.backend.BuildOutput` exactly as dockerd writes it (``Step 1/3 : FROM x``,
`` ---> <id>``, ``aux {"ID"}`` after each stage, ``Successfully built``,
``Successfully tagged``); errors are raised, for the caller to report (in-band once output
has started).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder import instructions as ins
from builder.backend import BuildOutput, BuildRuntime, HostOptions
from builder.context import DEFAULT_DOCKERFILE, BuildContext, open_context, read_dockerfile
from builder.dispatch import BuildSettings, Dispatcher
from builder.errors import BuildStepError, DockerfileParseError
from builder.parser import ParseResult, parse
from builder.state import BuildArgs, DispatchState
from runtime.archive.compression import Readable
from runtime.errors import InvalidParameter, NotFound
from runtime.images.reference import parse_normalized_named

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """The options of one build (``POST /build`` query, as dockerd reads them)."""

    dockerfile: str = DEFAULT_DOCKERFILE
    tags: tuple[str, ...] = ()
    no_cache: bool = False
    remove: bool = True
    force_remove: bool = False
    pull: bool = False
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    platform: str = ""
    host: HostOptions = field(default_factory=HostOptions)
    cache_from: tuple[str, ...] = ()


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Unique, fully named ``name:tag`` references in familiar form (dockerd's
    ``sanitizeRepoAndTags``): digests are refused, the default tag is added."""
    seen: list[str] = []
    for raw in tags:
        if not raw:
            continue
        ref = parse_normalized_named(raw)
        if ref.digest is not None:
            raise InvalidParameter("build tag cannot contain a digest")
        familiar = ref.with_default_tag().familiar
        if familiar not in seen:
            seen.append(familiar)
    return seen


async def prepare(runtime: BuildRuntime, request: BuildRequest, source: Readable) -> tuple[BuildContext, ParseResult]:
    """Unpack the context and parse the Dockerfile (errors here come before any output)."""
    context = await asyncio.to_thread(open_context, source, runtime.scratch_dir())
    try:
        name, data = await asyncio.to_thread(read_dockerfile, context, request.dockerfile or DEFAULT_DOCKERFILE)
        try:
            parsed = parse(data)
        except DockerfileParseError as exc:
            raise DockerfileParseError(f"failed to parse {request.dockerfile or DEFAULT_DOCKERFILE}: {exc}") from None
    except BaseException:
        await asyncio.to_thread(context.close)
        raise
    return context, parsed


async def build(runtime: BuildRuntime, request: BuildRequest, context: BuildContext, parsed: ParseResult,
                output: BuildOutput) -> str:
    """Run the build; returns the image ID (``sha256:...``) after tagging it."""
    tags = normalize_tags(request.tags)
    stages, meta_args = ins.parse(parsed.nodes)
    if request.target:
        index = ins.find_stage(stages, request.target)
        if index is None:
            raise InvalidParameter(f'target stage "{request.target}" could not be found')
        del stages[index + 1:]
    for key in sorted(request.labels) if stages else ():
        stages[-1].commands.append(ins.new_label_command(key, request.labels[key]))
    platform_os = request.platform.split("/")[0].lower() if request.platform else "linux"
    if platform_os != "linux":
        raise InvalidParameter(f'"{platform_os}" is not a supported operating system')
    if parsed.warnings:
        await output.stderr("\n".join(parsed.warnings) + "\n")
    settings = BuildSettings(host=request.host, no_cache=request.no_cache, remove=request.remove,
                             force_remove=request.force_remove, pull=request.pull, platform_os=platform_os,
                             cache_sources=cache_sources(runtime, request.cache_from))
    dispatcher = Dispatcher(runtime, output, settings, context, parsed.escape)
    try:
        state = await _run_stages(dispatcher, stages, meta_args, BuildArgs(request.build_args))
    finally:
        if dispatcher.tmp_containers and settings.force_remove:
            await dispatcher.remove_all()
    if not state.image_id:
        raise BuildStepError("No image was generated. Is your Dockerfile empty?")
    await output.stdout(f"Successfully built {state.image_id.partition(':')[2][:12]}\n")
    for tag in tags:
        await runtime.tag(state.image_id, tag)
        await output.stdout(f"Successfully tagged {tag}\n")
    return state.image_id


def cache_sources(runtime: BuildRuntime, refs: Sequence[str]) -> frozenset[str] | None:
    """``--cache-from``: as dockerd's classic builder, a cached step is reused only if it is
    one of the given images or their parents; names it does not have are skipped. None
    (no ``--cache-from``) = any local image may be reused."""
    if not refs:
        return None
    allowed: set[str] = set()
    for ref in refs:
        try:
            allowed.update(runtime.image_lineage(ref))
        except NotFound:
            log.warning("Could not look up %s for cache resolution, skipping", ref)
    return frozenset(allowed)


async def _step(output: BuildOutput, index: int, total: int, text: Any) -> int:
    await output.stdout(f"Step {index}/{total} : {text}")
    await output.stdout("\n")
    return index + 1


async def _run_stages(d: Dispatcher, stages: list[ins.Stage], meta_args: list[ins.ArgCommand],
                      build_args: BuildArgs) -> DispatchState:
    output = d.output
    total = len(meta_args) + len(stages) + sum(len(s.commands) for s in stages)
    index = 1
    for meta in meta_args:
        index = await _step(output, index, total, meta)
        env = build_args.all_allowed()
        expanded = meta.expand(lambda word, env=env: d.lex.process_word(word, env))  # type: ignore[misc]
        for arg in expanded.args:
            build_args.add_arg(arg.key, arg.value)
            build_args.add_meta_arg(arg.key, arg.value)
    state = DispatchState.new(build_args)
    for stage in stages:
        try:
            d.stages.check_name_available(stage.name)
        except ValueError as exc:
            raise BuildStepError(str(exc)) from None
        state = DispatchState.new(build_args)
        index = await _step(output, index, total, stage)
        await d.initialize_stage(state, stage)
        state.update_run_config()
        await output.stdout(f" ---> {_short(state.image_id)}\n")
        for command in stage.commands:
            index = await _step(output, index, total, command)
            await d.dispatch(state, command)
            state.update_run_config()
            await output.stdout(f" ---> {_short(state.image_id)}\n")
        if state.image_id:
            await output.aux({"ID": state.image_id})
        build_args.merge_referenced(state.build_args)
        d.stages.commit(state.stage_name, state.run_config)
    unused = build_args.unused()
    if unused:
        await output.stdout(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
    return state


def _short(image_id: str) -> str:
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


__all__ = ["BuildRequest", "build", "prepare", "normalize_tags"]
