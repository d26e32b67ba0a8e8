"""Mount option parsing and cgroup mount discovery (pure functions)."""

from __future__ import annotations

from runtime.linux import syscalls as S
from runtime.linux.mounts import (
    overlay_data, parse_mountinfo_cgroups, parse_options, parse_proc_cgroup, rel,
)

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/cgroup rw,relatime - cgroup cgroup rw,pids
"""


def test_flags_data_and_propagation_are_split() -> None:
    o = parse_options(("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"))
    assert o.flags == S.MS_NOSUID | S.MS_NOEXEC
    assert o.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert o.propagation == 0
    o = parse_options(("rbind", "ro", "rprivate"))
    assert o.flags == S.MS_BIND | S.MS_REC | S.MS_RDONLY
    assert o.propagation == S.MS_PRIVATE | S.MS_REC


def test_later_option_wins() -> None:
    assert parse_options(("ro", "rw")).flags == 0
    assert parse_options(("nodev", "dev", "nodev")).flags == S.MS_NODEV


def test_rel_never_escapes() -> None:
    assert rel("/") == "."
    assert rel("/dev/pts") == "dev/pts"
    assert rel("/../../etc") == "etc"


def test_overlay_data_switches_to_relative_paths_when_long() -> None:
    data, cwd = overlay_data(("/l/2", "/l/1"), "/u", "/w")
    assert (data, cwd) == ("lowerdir=/l/2:/l/1,upperdir=/u,workdir=/w", "")
    layers = tuple(f"/var/lib/pd/overlay/{'x' * 64}{i}/diff" for i in range(70))
    data, cwd = overlay_data(layers, "/var/lib/pd/overlay/up/diff", "/var/lib/pd/overlay/up/work")
    assert cwd == "/var/lib/pd/overlay"
    assert "upperdir=up/diff" in data and "/var/lib" not in data


def test_overlay_data_with_a_given_chdir_keeps_the_paths() -> None:
    layers = tuple(f"l/{'A' * 26}{i}" for i in range(150))
    data, cwd = overlay_data(layers, "/s/mounts/c/diff", "/s/mounts/c/work", "/s")
    assert cwd == "/s"
    assert data == f"lowerdir={':'.join(layers)},upperdir=/s/mounts/c/diff,workdir=/s/mounts/c/work"


def test_cgroup_hierarchies_from_mountinfo() -> None:
    assert parse_mountinfo_cgroups(MOUNTINFO) == [
        ("/sys/fs/cgroup/cpu", "cgroup", "cpu"),
        ("/sys/fs/cgroup/memory", "cgroup", "memory"),
        ("/sys/fs/cgroup/systemd", "cgroup", "name=systemd"),
        ("/sys/fs/cgroup/unified", "cgroup2", ""),
    ]


def test_proc_cgroup_keys_match_hierarchy_keys() -> None:
    paths = parse_proc_cgroup("4:memory:/process_api/x\n9:name=systemd:/\n0::/\n")
    assert paths == {"memory": "/process_api/x", "name=systemd": "/", "": "/"}


MOUNTINFO_HOST = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:5 / /proc rw,nosuid shared:2 - proc proc rw
"""
# in a chroot into a plain directory only the mounts below it are listed
MOUNTINFO_CHROOT = """\
23 22 0:5 / /proc rw,nosuid shared:2 - proc proc rw
"""


def test_root_is_mount_point() -> None:
    from runtime.linux.mounts import root_is_mount_point

    assert root_is_mount_point(MOUNTINFO_HOST)
    assert not root_is_mount_point(MOUNTINFO_CHROOT)
