"""Mount option parsing, cgroup mount discovery, and the one layer mount through the seam."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime.linux import syscalls as S
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.linux.mounts import (
    mount_layer, mount_layer_in_thread, parse_mountinfo_cgroups, parse_options, parse_proc_cgroup, rel,
)
from runtime.spec.model import LayerMount

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


OVERLAY = LayerMount("overlay", "overlay", ("lowerdir=/s/l/A:/s/l/B", "upperdir=/s/mounts/c/diff",
                                           "workdir=/s/mounts/c/work", "index=off"))
DEEP = LayerMount("overlay", "overlay", ("lowerdir=l/A:l/B", "upperdir=/s/mounts/c/diff",
                                        "workdir=/s/mounts/c/work", "index=off"), chdir="/s")
BIND = LayerMount("bind", "/s/mounts/c/diff", ("rbind",))
DATA = "upperdir=/s/mounts/c/diff,workdir=/s/mounts/c/work,index=off"


@pytest.mark.parametrize(("mount", "calls"), [
    (OVERLAY, [("mount", ("overlay", "/t", "overlay", 0, "lowerdir=/s/l/A:/s/l/B," + DATA))]),
    (DEEP, [("chdir", ("/s",)), ("mount", ("overlay", "/t", "overlay", 0, "lowerdir=l/A:l/B," + DATA)),
            ("chdir", ("/",))]),
    (BIND, [("mount", ("/s/mounts/c/diff", "/t", None, S.MS_BIND | S.MS_REC, None))]),
])
def test_a_layer_mount_is_one_mount_call_from_init_and_daemon_alike(
        mount: LayerMount, calls: list[tuple[str, tuple[object, ...]]]) -> None:
    init, daemon = RecordingSyscalls(), RecordingSyscalls()
    mount_layer(init, mount, "/t")
    mount_layer_in_thread(daemon, mount, "/t")
    assert init.calls == calls
    # the daemon's thread gets a cwd of its own first, when it needs to change it at all
    assert daemon.calls == ([("unshare", (S.CLONE_FS,))] if mount.chdir else []) + calls


def test_the_cwd_is_reset_and_the_error_reaches_the_caller_when_the_mount_fails() -> None:
    for perform in (mount_layer, mount_layer_in_thread):
        sc = RecordingSyscalls(fail={"mount": [errno.EINVAL]})
        with pytest.raises(OSError) as exc:
            perform(sc, DEEP, "/t")
        assert exc.value.errno == errno.EINVAL
        assert sc.calls[-1] == ("chdir", ("/",)) and sc.cwd == "/"


def test_the_daemons_own_cwd_never_moves(tmp_path: Path) -> None:
    seen: list[str] = []

    class Cwd(RecordingSyscalls):
        def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
                  data: str | None) -> None:
            super().mount(source, target, fstype, flags, data)
            seen.append(os.getcwd())

    class Real(Cwd):
        def unshare(self, flags: int) -> None:
            super().unshare(flags)
            S.LinuxSyscalls().unshare(flags)

        def chdir(self, path: str) -> None:
            super().chdir(path)
            os.chdir(path)

    before = os.getcwd()
    mount_layer_in_thread(Real(), LayerMount("overlay", "overlay", ("lowerdir=l/A",), str(tmp_path)), "/t")
    assert seen == [str(tmp_path)] and os.getcwd() == before


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
