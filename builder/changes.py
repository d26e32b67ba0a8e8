"""Dockerfile-style ``changes`` of ``docker commit --change`` and ``docker import --change``.

moby's ``BuildFromConfig``: the changes are parsed as a Dockerfile (escapes, line
continuations, JSON and shell forms), only the instructions in :data:`VALID_CHANGES` are
allowed, and each is dispatched by the builder with committing disabled: the same code
as a build (:func:`builder.configure.configure`), so ``EXPOSE 8000-8001``, a relative
``WORKDIR``, ``$VAR`` expansion and ``STOPSIGNAL`` checks read as in a Dockerfile. Every
error is a 400 (``errdefs.InvalidParameter``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from builder import instructions as ins
from builder.configure import configure, environment, expanded
from builder.parser import parse as parse_dockerfile
from builder.shell import ShellLex
from builder.state import BuildArgs, DispatchState, RunConfig
from runtime.errors import EngineError, InvalidParameter

VALID_CHANGES = frozenset({
    "cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild", "stopsignal",
    "user", "volume", "workdir",
})
"""moby's ``validCommitCommands`` (``stopsignal`` since Docker 23.0)."""


def build_from_config(config: Mapping[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """``config`` (a ``container.Config`` document, Docker key names) with ``changes``
    applied; ``config`` itself is not changed. Raises InvalidParameter with dockerd's
    texts (``run is not a valid change command``, ``Invalid containerPort: 70000``, ...)."""
    if not changes:
        return dict(config)
    try:
        parsed = parse_dockerfile("\n".join(changes))
    except EngineError as exc:
        raise InvalidParameter(str(exc)) from None
    commands: list[ins.Command] = []
    for node in parsed.nodes:
        if node.value not in VALID_CHANGES:
            raise InvalidParameter(f"{node.value} is not a valid change command")
        try:
            commands.append(ins.parse_command(node))
        except EngineError as exc:
            raise InvalidParameter(str(exc)) from None
    state = DispatchState.new(BuildArgs())
    state.run_config = RunConfig.from_doc(config)
    state.image_id = str(config.get("Image") or "")
    lex = ShellLex(parsed.escape)
    for command in commands:
        env = environment(state)
        try:
            configure(state, expanded(command, lex, env), lex, env)
        except EngineError as exc:
            raise InvalidParameter(str(exc)) from None
        state.update_run_config()
    return state.run_config.to_doc()


__all__ = ["VALID_CHANGES", "build_from_config"]
