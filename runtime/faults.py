"""Test-only fault injection: the daemon dies (SIGKILL, nothing cleaned up) at a named step.

``PYDOCKERD_FAULT_AT=<step>`` in the daemon's environment, read once at start, makes
:func:`fault_point` with that name kill the process there. Unset (as in any real
deployment) every fault point is a comparison with an empty string. The names are listed
in :data:`STEPS`, so the tests that crash the daemon at each one cannot miss a step.
"""

from __future__ import annotations

import os
import signal

STEPS = (
    "create.before-record",  # name reserved, layer prepared, record not yet written
    "create.after-record",
    "start.after-cgroup",  # cgroup made and configured, no process yet
    "start.after-process",  # the init runs (held before the command), not recorded running
    "start.before-record",  # networking attached, process resumed, not recorded running
    "remove.before-layer",  # the container stopped, its layer and record still there
    "remove.after-layer",  # layer gone, record still there
    "pull.after-blob",  # a layer blob is in the content store, the image is not recorded
    "commit.after-layer",  # the container's layer is registered, the image is not recorded
    "build.after-step",  # a build step's image is committed, the build has more steps
)

_ARMED = os.environ.get("PYDOCKERD_FAULT_AT", "")


def fault_point(step: str) -> None:
    """Die here, as ``kill -9`` would, if the test switch names ``step``."""
    if _ARMED and _ARMED == step:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["STEPS", "fault_point"]
