"""systemd's readiness protocol (sd_notify): a datagram to $NOTIFY_SOCKET.

``pydockerd.service`` is ``Type=notify``, as docker.service: systemd considers the daemon
started when it sends ``READY=1`` (after its listeners are serving) and stopping when it
sends ``STOPPING=1``. Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send ``state`` (``"READY=1"``, ``"STOPPING=1"``, ...); True when it was sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in ("/", "@"):
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), target)
    except OSError as exc:
        log.warning("sd_notify %s to %s: %s", state, address, exc)
        return False
    return True


__all__ = ["notify"]
