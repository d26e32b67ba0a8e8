"""The init binary for ``--init`` (dockerd's docker-init): where it is and what it reports.

dockerd runs ``docker-init`` (tini) as PID 1 with the user's command as its child when
``HostConfig.Init`` (or the daemon's ``--init`` default) asks for it: the binary is
bind-mounted read-only at ``/sbin/docker-init`` and the process becomes
``/sbin/docker-init -- <cmd>``. ``--init-path`` / daemon.json ``init-path`` name another
binary. Without a ``docker-init`` on the host, pydockerd uses Debian's ``tini`` package
(its static build first: it must run inside any image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

DEFAULT_INIT_BINARY = "docker-init"
IN_CONTAINER_PATH = "/sbin/docker-init"
# dockerd's lookupBinPath: libexec directories first, then PATH
_LIBEXEC_DIRS = ("/usr/local/libexec/docker", "/usr/libexec/docker",
                 "/usr/local/lib/docker", "/usr/lib/docker")
# Debian's tini package, when no docker-init is installed
_TINI_FALLBACKS = ("/usr/bin/tini-static", "/usr/bin/tini")


@dataclass(frozen=True, slots=True)
class InitBinary:
    """``name``: what ``docker info`` shows as InitBinary; ``path``: the absolute path to
    mount (None when not found); ``commit``: its git commit (InitCommit.ID), "" if none."""

    name: str
    path: str | None
    commit: str = ""


def lookup(configured: str = "") -> str | None:
    """The absolute path of the init binary (dockerd's ``LookupInitPath``), or None."""
    name = configured or DEFAULT_INIT_BINARY
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    if "/" not in name:
        for directory in _LIBEXEC_DIRS:
            candidate = os.path.join(directory, name)
            if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
                return candidate
    found = shutil.which(name)
    if found is not None:
        return os.path.abspath(found)
    if not configured:
        for candidate in _TINI_FALLBACKS:
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def parse_version(output: str) -> tuple[str, str]:
    """(version, commit) from ``tini --version`` ("tini version 0.19.0 - git.de40ad0");
    Debian's build prints no commit. Both empty when the output is not tini's."""
    parts = output.split(" - ")
    commit = ""
    if len(parts) >= 2:
        git = parts[1].strip().split(".")
        if len(git) == 2 and git[0] == "git":
            commit = git[1]
    head = parts[0].strip()
    version = head.removeprefix("tini version ") if head.startswith("tini version ") else ""
    return version, commit


def resolve(configured: str = "") -> InitBinary:
    """Look the binary up and read its commit, as ``docker info`` reports them."""
    path = lookup(configured)
    commit = ""
    if path is not None:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=5, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        commit = parse_version(out)[1]
    return InitBinary(configured or DEFAULT_INIT_BINARY, path, commit)


__all__ = ["DEFAULT_INIT_BINARY", "IN_CONTAINER_PATH", "InitBinary", "lookup",
           "parse_version", "resolve"]
