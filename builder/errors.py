"""Error categories of the builder, with the texts dockerd's classic builder uses.

Every class derives from a ``runtime.errors`` category, so the API layer maps it to the
same HTTP status dockerd would answer with when the error happens before any output.
"""

from __future__ import annotations

from runtime.errors import EngineError, InvalidParameter, SystemError_


class DockerfileParseError(InvalidParameter):
    """The Dockerfile cannot be turned into instructions (400)."""


class ExpansionError(InvalidParameter):
    """A ``$VAR`` / ``${VAR...}`` expression is malformed or a required variable is unset."""


class BuildStepError(SystemError_):
    """A step failed while building; the text is the one dockerd prints for it."""


class CommandFailed(EngineError):
    """``RUN`` exited non-zero. ``code`` goes into ``errorDetail.code`` as dockerd sends it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


__all__ = ["DockerfileParseError", "ExpansionError", "BuildStepError", "CommandFailed"]
