"""The daemon's own resource limits."""

from __future__ import annotations

import resource


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as Go programs (dockerd) do at start:
    systemd starts services with a soft limit of 1024, too few for a daemon holding a socket,
    a pipe or a pidfd per container and exec. Returns the (soft, hard) limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return soft, hard  # the kernel refuses infinity for NOFILE; keep what we have
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft, hard


__all__ = ["raise_open_files_limit"]
