"""The one place where engine error categories become HTTP status codes (moby's httpstatus)."""

from __future__ import annotations

import logging

from runtime import errors

log = logging.getLogger(__name__)

_STATUS_BY_CATEGORY: tuple[tuple[type[BaseException], int], ...] = (
    (errors.NotFound, 404),
    (errors.InvalidParameter, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.Unavailable, 503),
    (errors.NotImplementedFeature, 501),
    (errors.SystemError_, 500),
)


def status_for(exc: BaseException, request_line: str = "") -> int:
    """HTTP status for an exception raised while serving a request (an uncategorised one
    is logged here, once, with its traceback and ``request_line``)."""
    for category, status in _STATUS_BY_CATEGORY:
        if isinstance(exc, category):
            return status
    where = f"{request_line}: " if request_line else ""
    log.error("%suncategorised error reached the API: %r", where, exc, exc_info=exc)
    return 500
