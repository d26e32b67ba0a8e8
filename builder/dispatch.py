"""Instruction dispatchers: each changes the stage's state and commits an image.

The order of operations and the texts follow dockerd's classic builder: a step first
probes the image cache with the config it would commit (``---> Using cache``), then
creates a container (``---> Running in <id>``), runs it for ``RUN`` only, and commits
it; metadata-only steps commit a container that never ran, so their images carry a
``container_config`` whose ``Cmd`` is the ``#(nop)`` comment dockerd records.
``COPY``/``ADD`` work on a mounted writable layer instead of a container.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from builder import instructions as ins
from builder.backend import BuildOutput, BuildRuntime, CommitRequest, HostOptions, ImageInfo
from builder.context import BuildContext, PathOutsideContext
from builder.copy import (
    CopyInfo, CopyOptions, Identity, SourceTree, copy_infos_for, normalize_dest, parse_chown,
    perform_copy, source_hash,
)
from builder.errors import BuildStepError, CommandFailed, ExpansionError
from builder.parser import parse as parse_dockerfile
from builder.shell import ShellLex
from builder.configure import CONFIG_COMMANDS, configure, environment, expanded, resolve_cmd_line, shell_of
from builder.state import DispatchState, RunConfig, StageResults, same_config
from runtime.faults import fault_point
from runtime.errors import EngineError, NotFound

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILDKIT_ONLY = ("Refer to https://docs.docker.com/go/buildkit/ to learn how to build images "
                 "with BuildKit enabled")

def _parent_healthcheck(runtime: BuildRuntime, image_id: str) -> Mapping[str, Any] | None:
    if not image_id:
        return None
    try:
        health = runtime.get_image(image_id).config.get("Healthcheck")
    except NotFound:
        return None
    return health if isinstance(health, Mapping) else None


def prepend_env(state: DispatchState, build_args: Sequence[str], cmd: Sequence[str]) -> tuple[str, ...]:
    """``|N K=V ... cmd``: the build args a RUN saw become part of its cache key and
    history (proxy variables only when the Dockerfile declared them)."""
    kept = sorted(e for e in build_args if state.build_args.is_referenced_or_not_builtin(e.partition("=")[0]))
    return (f"|{len(kept)}", *kept, *cmd)


@dataclass
class BuildSettings:
    """Per-build options the dispatchers use."""

    host: HostOptions = field(default_factory=HostOptions)
    no_cache: bool = False
    remove: bool = True
    force_remove: bool = False
    pull: bool = False
    platform_os: str = "linux"
    cache_sources: frozenset[str] | None = None  # None: any local image (no --cache-from)


class Dispatcher:
    """Runs instructions for one build (shared by its stages)."""

    def __init__(self, runtime: BuildRuntime, output: BuildOutput, settings: BuildSettings,
                 context: BuildContext | None, escape: str = "\\") -> None:
        self.runtime = runtime
        self.output = output
        self.settings = settings
        self.context = context
        self.lex = ShellLex(escape)
        self.stages = StageResults()
        self.cache_busted = False
        self.tmp_containers: list[str] = []

    # -- output -----------------------------------------------------------------------------

    async def say(self, text: str) -> None:
        await self.output.stdout(text)

    # -- stage start ------------------------------------------------------------------------

    def reset_cache(self) -> None:
        self.cache_busted = False

    async def image_or_stage(self, name: str) -> ImageInfo:
        stage = self.stages.by_name(name)
        if stage is not None:
            return self.runtime.get_image(stage.image)
        if name == "scratch":
            return ImageInfo(id="", config={}, os=self.settings.platform_os)
        return await self.image(name)

    async def image(self, name: str) -> ImageInfo:
        """A base image: the local one, else pulled (always pulled with ``--pull``)."""
        if not self.settings.pull:
            try:
                return self.runtime.get_image(name)
            except NotFound:
                pass
        return await self.runtime.pull_image(name, self.output)

    async def initialize_stage(self, state: DispatchState, stage: ins.Stage) -> None:
        self.reset_cache()
        if stage.platform:
            platform = self.expand_meta(state, stage.platform, "failed to process arguments for platform")
            os_name = platform.split("/")[0].lower()
            if os_name != "linux":
                raise BuildStepError(f'"{os_name}" is not a supported operating system')
        name = self.expand_meta(state, stage.base_name, "")
        if not name:
            raise BuildStepError(f"base name ({stage.base_name}) should not be blank")
        image = await self.image_or_stage(name)
        state.begin_stage(stage.name, image, DEFAULT_PATH)
        triggers = state.run_config.on_build
        if triggers:
            state.run_config = replace(state.run_config, on_build=None)
            await self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            await self.say("\n")
            for trigger in triggers:
                state.update_run_config()
                nodes = parse_dockerfile(trigger).nodes
                if len(nodes) != 1:
                    raise BuildStepError("onbuild trigger should be a single expression")
                command = ins.parse_command(nodes[0])
                await self.dispatch(state, command)

    def expand_meta(self, state: DispatchState, word: str, context: str) -> str:
        env = state.build_args.all_meta()
        try:
            return self.lex.process_word(word, env)
        except ExpansionError as exc:
            if context:
                raise BuildStepError(f"{context} {word}: {exc}") from None
            raise

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch(self, state: DispatchState, command: ins.Command) -> None:
        env = environment(state)
        command = expanded(command, self.lex, env)
        try:
            await self._dispatch(state, command, env)
        finally:
            if self.settings.force_remove:
                await self.remove_all()
        if self.settings.remove:
            await self.remove_all()

    async def _dispatch(self, state: DispatchState, c: ins.Command, env: Mapping[str, str]) -> None:
        if isinstance(c, ins.AddCommand):
            if c.chmod:
                raise BuildStepError("the --chmod option requires BuildKit. " + BUILDKIT_ONLY)
            await self.copy(state, "ADD", c.sources, c.dest, c.chown, None, decompress=True)
        elif isinstance(c, ins.CopyCommand):
            if c.chmod:
                raise BuildStepError("the --chmod option requires BuildKit. " + BUILDKIT_ONLY)
            await self.copy(state, "COPY", c.sources, c.dest, c.chown, c.from_ or None, decompress=False)
        elif isinstance(c, ins.RunCommand):
            await self.run(state, c)
        elif isinstance(c, CONFIG_COMMANDS):
            done = configure(state, c, self.lex, env)
            if done.note:
                await self.say(done.note)
            if isinstance(c, ins.WorkdirCommand):
                await self.workdir(state)
            else:
                await self.commit(state, done.message)
        else:  # pragma: no cover - the instruction parser produces no other types
            raise BuildStepError(f"unsupported command type: {type(c).__name__}")

    # -- steps ------------------------------------------------------------------------------

    async def probe_cache(self, state: DispatchState, config: RunConfig) -> bool:
        if self.settings.no_cache or self.cache_busted:
            return False
        best: tuple[int, str] | None = None
        for candidate in self.runtime.cache_candidates(state.image_id) if state.image_id else ():
            if candidate.os and candidate.os != state.os:
                continue
            if self.settings.cache_sources is not None and candidate.id not in self.settings.cache_sources:
                continue
            if not same_config(RunConfig.from_doc(candidate.container_config), config):
                continue
            if best is None or candidate.created_ns > best[0]:
                best = (candidate.created_ns, candidate.id)
        if best is None:
            self.cache_busted = True
            return False
        await self.say(" ---> Using cache\n")
        state.image_id = best[1]
        return True

    async def create(self, config: RunConfig) -> str:
        created = await self.runtime.create_container(config.to_doc(), self.settings.host)
        self.tmp_containers.append(created.id)
        for warning in created.warnings:
            await self.say(f" ---> [Warning] {warning}\n")
        await self.say(f" ---> Running in {created.id[:12]}\n")
        return created.id

    async def remove_all(self) -> None:
        while self.tmp_containers:
            container_id = self.tmp_containers[0]
            try:
                await self.runtime.remove_container(container_id)
            except NotFound:
                pass
            except EngineError as exc:
                await self.say(f"Removing intermediate container {container_id[:12]}: {exc}\n")
                self.tmp_containers.pop(0)
                continue
            self.tmp_containers.pop(0)
            await self.say(f"Removing intermediate container {container_id[:12]}\n")

    def _with_comment(self, state: DispatchState, comment: str, single: bool) -> RunConfig:
        rc = state.run_config
        cmd = (*shell_of(rc), "#(nop) " + comment) if single else (*shell_of(rc), "#(nop) ", comment)
        return replace(rc, cmd=cmd)

    async def commit(self, state: DispatchState, comment: str) -> None:
        if not state.has_from_image():
            raise BuildStepError("Please provide a source image with `from` prior to commit")
        config = self._with_comment(state, comment, single=False)
        if await self.probe_cache(state, config):
            return
        container_id = await self.create(config)
        config = self._inherit_healthcheck(state, config)
        await self.commit_container(state, container_id, replace(config, hostname=container_id[:12]))

    def _inherit_healthcheck(self, state: DispatchState, config: RunConfig) -> RunConfig:
        """dockerd's container create fills a HEALTHCHECK's unset (zero) options from the
        base image's healthcheck, and the builder's config shares that struct: so a new
        HEALTHCHECK keeps the previous one's interval, timeout... unless it sets them."""
        own = state.run_config.healthcheck
        if own is None or state.base_image is None:
            return config
        inherited = _parent_healthcheck(self.runtime, state.image_id)
        if not inherited:
            return config
        merged = dict(own)
        if not merged.get("Test"):
            merged["Test"] = list(inherited.get("Test") or [])
        for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
            if not merged.get(key) and inherited.get(key):
                merged[key] = inherited[key]
        if merged == dict(own):
            return config
        state.run_config = replace(state.run_config, healthcheck=merged)
        return replace(config, healthcheck=merged)

    async def commit_container(self, state: DispatchState, container_id: str, container_config: RunConfig) -> None:
        request = CommitRequest(config=state.run_config.to_doc(), container_config=container_config.to_doc(),
                                author=state.maintainer)
        state.image_id = await self.runtime.commit_container(container_id, request)
        fault_point("build.after-step")

    async def workdir(self, state: DispatchState) -> None:
        """After :func:`configure` set it: the directory is made in a container, then committed."""
        rc = state.run_config
        config = self._with_comment(state, "WORKDIR " + rc.working_dir, single=True)
        if await self.probe_cache(state, config):
            return
        container_id = await self.create(config)
        config = self._inherit_healthcheck(state, config)
        await self.runtime.make_workdir(container_id, rc.working_dir)
        await self.commit_container(state, container_id, replace(config, hostname=container_id[:12]))

    async def run(self, state: DispatchState, c: ins.RunCommand) -> None:
        if c.flags_used:
            raise BuildStepError(f"the --{c.flags_used[0]} option requires BuildKit. " + BUILDKIT_ONLY)
        rc = state.run_config
        cmd = resolve_cmd_line(c, rc) or ()
        build_args = state.build_args.filter_allowed(rc.env)
        save_cmd = prepend_env(state, build_args, cmd) if build_args else cmd
        probe = replace(rc, cmd=save_cmd, args_escaped=False, entrypoint=None if save_cmd else rc.entrypoint)
        if await self.probe_cache(state, probe):
            return
        run_config = replace(rc, cmd=cmd, args_escaped=False, env=(*(rc.env or ()), *build_args),
                             entrypoint=("",) if save_cmd else rc.entrypoint,
                             healthcheck={"Test": ["NONE"]})
        container_id = await self.create(run_config)
        code, error = await self.runtime.run_container(container_id, self._container_output())
        if code != 0:
            message = f"The command '{' '.join(cmd)}' returned a non-zero code: {code}"
            if error:
                message += ": " + error
            raise CommandFailed(message, code)
        await self.commit_container(state, container_id, probe)

    def _container_output(self) -> Any:
        decoders = {"stdout": codecs.getincrementaldecoder("utf-8")("replace"),
                    "stderr": codecs.getincrementaldecoder("utf-8")("replace")}

        async def forward(stream: str, data: bytes) -> None:
            text = decoders.get(stream, decoders["stdout"]).decode(data)
            if not text:
                return
            if stream == "stderr":
                await self.output.stderr(text)
            else:
                await self.output.stdout(text)

        return forward

    # -- COPY / ADD -------------------------------------------------------------------------

    async def copy(self, state: DispatchState, name: str, sources: Sequence[str], dest: str, chown: str,
                   from_: str | None, decompress: bool) -> None:
        source_layer = None
        tree: SourceTree
        try:
            if from_ is not None:
                ref = from_
                try:
                    stage = self.stages.get(from_)
                except ValueError as exc:
                    raise BuildStepError(f"invalid from flag value {from_}: {exc}") from None
                if stage is not None:
                    ref = stage.image
                else:
                    try:
                        ref = (await self.image(from_)).id
                    except EngineError as exc:
                        raise BuildStepError(f"invalid from flag value {from_}: {exc}") from None
                source_layer = await self.runtime.open_layer(ref)
                tree = SourceTree.of_directory(source_layer.root)
            else:
                if self.context is None:
                    raise BuildStepError("missing build context")
                tree = SourceTree.of_context(self.context)
            infos = await asyncio.to_thread(self._copy_infos, tree, name, sources, decompress)
            if len(infos) > 1 and not dest.endswith("/"):
                raise BuildStepError(
                    f"When using {name} with more than one source file, the destination must be a directory and end with a /")
            chown_comment = f"--chown={chown} " if chown else ""
            comment = f"{name} {chown_comment}{source_hash(infos)} in {dest} "
            config = self._with_comment(state, comment, single=True)
            if await self.probe_cache(state, config):
                return
            await self._copy_into_layer(state, infos, dest, chown, from_ is not None, decompress, config)
        finally:
            if source_layer is not None:
                await self.runtime.release_layer(source_layer)

    def _copy_infos(self, tree: SourceTree, name: str, sources: Sequence[str], decompress: bool) -> list[CopyInfo]:
        infos: list[CopyInfo] = []
        try:
            for orig in sources:
                if orig.startswith(("http://", "https://")):
                    if not decompress:
                        raise BuildStepError("source can't be a URL for COPY")
                    # dockerd downloads the URL; this daemon never opens network connections
                    raise BuildStepError(
                        f"cannot download {orig}: this daemon has no network access (remote ADD sources are "
                        "not supported)")
                infos += copy_infos_for(tree, orig)
            if not infos:
                raise BuildStepError("no source files were specified")
        except (BuildStepError, PathOutsideContext) as exc:
            raise BuildStepError(f"{name} failed: {exc}") from None
        except OSError as exc:
            raise BuildStepError(f"{name} failed: {exc.strerror or exc}") from None
        return infos

    async def _copy_into_layer(self, state: DispatchState, infos: list[CopyInfo], dest: str, chown: str,
                               preserve: bool, decompress: bool, container_config: RunConfig) -> None:
        layer = await self.runtime.open_layer(state.image_id)
        try:
            destination = normalize_dest(state.run_config.working_dir, dest)
            identity: Identity | None = Identity(0, 0)
            if chown:
                identity = await asyncio.to_thread(parse_chown, chown, layer.root)
            elif preserve:
                identity = None
            options = CopyOptions(identity=identity, decompress=decompress)

            def copy_all() -> None:
                for info in infos:
                    try:
                        perform_copy(layer.root, destination, info, options)
                    except BuildStepError as exc:
                        raise BuildStepError(f"failed to copy files: {exc}") from None
                    except OSError as exc:
                        raise BuildStepError(f"failed to copy files: {exc}") from None

            await asyncio.to_thread(copy_all)
            request = CommitRequest(config=state.run_config.to_doc(), container_config=container_config.to_doc(),
                                    author=state.maintainer)
            state.image_id = await self.runtime.commit_layer(layer, state.image_id, request)
        finally:
            await self.runtime.release_layer(layer)


__all__ = ["Dispatcher", "BuildSettings", "DEFAULT_PATH", "prepend_env"]
