"""Docker's default security profile and default mounts (moby daemon/pkg/oci defaults).

Values pinned to Docker Engine 28: the 14 default capabilities, masked and read-only
paths, the default mounts with dockerd's options and the default device nodes.
"""

from __future__ import annotations

import os

from runtime.spec.model import DeviceNode, Mount

# Index = capability number (linux/capability.h).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAPABILITY_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAPABILITY_NAMES)}

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

_STATIC_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def default_masked_paths(sysfs: str = "/sys") -> tuple[str, ...]:
    """dockerd's masked paths, plus each present CPU's thermal_throttle directory."""
    extra: list[str] = []
    cpu_root = os.path.join(sysfs, "devices/system/cpu")
    try:
        names = sorted(os.listdir(cpu_root))
    except OSError:
        names = []
    for name in names:
        if name.startswith("cpu") and name[3:].isdigit():
            if os.path.isdir(os.path.join(cpu_root, name, "thermal_throttle")):
                extra.append(f"/sys/devices/system/cpu/{name}/thermal_throttle")
    return _STATIC_MASKED_PATHS + tuple(extra)


def default_mounts(shm_size: int = DEFAULT_SHM_SIZE) -> tuple[Mount, ...]:
    """dockerd's default mounts, in mount order (``shm_size`` in bytes)."""
    return (
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount("/dev/pts", "devpts", "devpts",
              ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
        Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev")),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        Mount("/dev/shm", "tmpfs", "shm",
              ("nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k")),
    )


DEFAULT_DEVICES: tuple[DeviceNode, ...] = (
    DeviceNode("/dev/null", "c", 1, 3),
    DeviceNode("/dev/zero", "c", 1, 5),
    DeviceNode("/dev/full", "c", 1, 7),
    DeviceNode("/dev/random", "c", 1, 8),
    DeviceNode("/dev/urandom", "c", 1, 9),
    DeviceNode("/dev/tty", "c", 5, 0),
)


def host_capability_bits() -> int:
    """The bounding set of this process (what --privileged can grant)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


def all_host_capabilities() -> tuple[str, ...]:
    """Every capability the host grants us, by name, for ``--privileged``."""
    bits = host_capability_bits()
    return tuple(name for i, name in enumerate(CAPABILITY_NAMES) if bits >> i & 1)


def capability_mask(names: tuple[str, ...]) -> int:
    """Bit mask of ``names`` (unknown names raise KeyError)."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NUMBERS[name]
    return mask


__all__ = ["CAPABILITY_NAMES", "CAPABILITY_NUMBERS", "DEFAULT_CAPABILITIES",
           "DEFAULT_READONLY_PATHS", "DEFAULT_SHM_SIZE", "DEFAULT_PATH", "DEFAULT_DEVICES",
           "default_masked_paths", "default_mounts", "all_host_capabilities",
           "host_capability_bits", "capability_mask"]
