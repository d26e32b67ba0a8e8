"""The device-cgroup allow rules of a container, as dockerd composes them.

Docker's default allow-list, plus one ``<c|b> <major>:<minor> <perms>`` rule per
``--device`` (its cgroup permissions, ``rwm`` when unset) and each ``--device-cgroup-rule``;
``--privileged`` allows every device. The same lines feed v1's ``devices.allow`` and the
v2 eBPF program (:mod:`runtime.linux.devices`).
"""

from __future__ import annotations

import os
import stat

from runtime.containers.model import HostConfig
from runtime.errors import SystemError_
from runtime.linux.cgroups import DEFAULT_DEVICE_RULES, PRIVILEGED_DEVICE_RULES
from runtime.linux.devices import InvalidDeviceRule, parse_rule


def device_cgroup_rules(host: HostConfig) -> tuple[str, ...]:
    """The allow lines for ``host``. A malformed ``--device-cgroup-rule`` fails the start
    (dockerd accepts it at create and answers 500 at start, with this text); a --device
    that is missing or not a device node is reported by the device list
    (``spec.device_nodes``), so it is skipped here."""
    if host.privileged:
        return PRIVILEGED_DEVICE_RULES
    rules = list(DEFAULT_DEVICE_RULES)
    for mapping in host.devices or ():
        try:
            st = os.stat(mapping.path_on_host)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
            perms = mapping.cgroup_permissions or "rwm"
            rules.append(f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {perms}")
    for line in host.device_cgroup_rules or ():
        try:
            rules.append(parse_rule(line).line)
        except InvalidDeviceRule as exc:
            raise SystemError_(str(exc)) from exc
    return tuple(rules)


__all__ = ["device_cgroup_rules"]
