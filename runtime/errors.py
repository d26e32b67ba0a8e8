"""Error categories raised by the engine (moby's errdefs, as Python classes).

Every error the engine raises belongs to exactly one category; the API layer maps the
category to an HTTP status in one place (``compat_api.errors.status_for``). Messages carry
Docker's exact wording, because the CLI and docker-py match on them (for instance
docker-py turns a 404 whose message starts with "No such image" into ``ImageNotFound``).
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every categorised engine error. ``str(err)`` is the client-facing message."""


class NotFound(EngineError, LookupError):
    """The object named by the request does not exist (404)."""


class InvalidParameter(EngineError, ValueError):
    """The request is malformed or names an invalid value (400)."""


class Conflict(EngineError):
    """The request conflicts with the current state, e.g. a name in use (409)."""


class NotModified(EngineError):
    """Nothing to do: the object is already in the requested state (304)."""


class Forbidden(EngineError):
    """The operation is not allowed on this object (403)."""


class Unauthorized(EngineError):
    """Credentials are missing or were refused (401)."""


class Unavailable(EngineError):
    """The feature or service is not available on this node (503)."""


class NotImplementedFeature(EngineError, NotImplementedError):
    """The engine does not implement this operation (501)."""


class SystemError_(EngineError):
    """An internal failure with a message worth showing to the client (500)."""


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")


class ContainerNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")


class NoSwarm(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            'This node is not a swarm manager. Use "docker swarm init" or '
            '"docker swarm join" to connect this node to swarm and try again.'
        )


__all__ = [
    "EngineError",
    "NotFound",
    "InvalidParameter",
    "Conflict",
    "NotModified",
    "Forbidden",
    "Unauthorized",
    "Unavailable",
    "NotImplementedFeature",
    "SystemError_",
    "ImageNotFound",
    "ContainerNotFound",
    "NoSwarm",
]
