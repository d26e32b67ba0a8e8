"""The classic Dockerfile builder behind ``POST /build``. Depends on runtime only.

Pipeline (moby's classic builder, module by module): :mod:`builder.context` unpacks the
build context, :mod:`builder.parser` turns the Dockerfile into nodes, :mod:`builder.shell`
expands words, :mod:`builder.instructions` makes typed instructions and stages,
:mod:`builder.dispatch` runs them against a :class:`builder.backend.BuildRuntime`, and
:mod:`builder.builder` drives a whole build.
"""

from builder.backend import BuildOutput, BuildRuntime
from builder.builder import BuildRequest, build, prepare

__all__ = ["BuildOutput", "BuildRequest", "BuildRuntime", "build", "prepare"]
