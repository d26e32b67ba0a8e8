"""The init step sequence against a recording fake of the kernel (no root needed)."""

from __future__ import annotations

import dataclasses
import errno
import os

import pytest

from runtime.linux import syscalls as S
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.process import sync
from runtime.process.init import (
    InitError, InitState, Stdio, container_steps, exec_steps, run_steps,
)
from runtime.spec.defaults import (
    DEFAULT_CAPABILITIES, DEFAULT_DEVICES, DEFAULT_READONLY_PATHS, capability_mask,
    default_mounts,
)
from runtime.spec.model import ContainerSpec, ExecSpec, LayerMount, ProcessSpec, RootfsSpec, UserSpec

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n"
CHANNEL_FD = 7


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[object] = []
        self.resumed = 0

    def send(self, msg: sync.Created | sync.PtyMaster | sync.ExecFailed) -> None:
        self.sent.append(msg)

    def wait_resume(self) -> None:
        self.resumed += 1

    def fileno(self) -> int:
        return CHANNEL_FD


def make_spec(**process_changes: object) -> ContainerSpec:
    process = ProcessSpec(args=("echo", "hi"), env=("PATH=/usr/bin:/bin",), cwd="/",
                          user=UserSpec(""), tty=False, open_stdin=False,
                          capabilities=DEFAULT_CAPABILITIES)
    process = dataclasses.replace(process, **process_changes)  # type: ignore[arg-type]
    return ContainerSpec(
        container_id="c1", process=process,
        rootfs=RootfsSpec(LayerMount("overlay", "overlay", ("lowerdir=/layers/2:/layers/1", "upperdir=/c1/upper",
                                                           "workdir=/c1/work", "index=off"))),
        hostname="host1", domainname="", namespaces={k: None for k in
                                                     ("mnt", "uts", "ipc", "net", "pid")},
        mounts=default_mounts(), masked_paths=("/proc/keys", "/sys/firmware"),
        readonly_paths=DEFAULT_READONLY_PATHS, devices=DEFAULT_DEVICES, sysctls={},
        cgroup_dirs=("/sys/fs/cgroup/memory/pd/c1",))


def make_kernel(kind: type[RecordingSyscalls] = RecordingSyscalls) -> RecordingSyscalls:
    sc = kind(files={"/etc/passwd": PASSWD, "/etc/group": GROUP,
                                  "/bin/echo": b"", "/bin/sh": b"",
                                  "/proc/self/cgroup": b"4:memory:/pd/c1\n0::/\n",
                                  "/proc/self/mountinfo": b""})
    sc.stats["dev/null"] = RecordingSyscalls.char_device(1, 3)
    sc.stats["proc/keys"] = RecordingSyscalls.regular_file()
    sc.stats["dev/pts/ptmx"] = RecordingSyscalls.char_device(5, 2)
    return sc


def run_container(spec: ContainerSpec, sc: RecordingSyscalls | None = None,
                  ) -> tuple[RecordingSyscalls, FakeChannel, InitState]:
    sc = sc or make_kernel()
    channel = FakeChannel()
    state = InitState(sc=sc, channel=channel, process=spec.process, stdio=Stdio(10, 11, 12),
                      rootfs_mount="/run/pd/rootfs", last_cap=40, cgroup_dirs=spec.cgroup_dirs)
    run_steps(container_steps(spec), state)
    return sc, channel, state


def test_step_order_follows_runc() -> None:
    names = [name for name, _ in container_steps(make_spec())]
    order = ["prepare", "close inherited fds", "join cgroups", "namespaces", "rootfs",
             "mounts", "devices", "console", "pause", "pivot_root", "hostname",
             "readonly paths", "masked paths", "user", "bounding set", "switch user",
             "capabilities", "cwd", "lookup", "close fds", "exec"]
    assert [n for n in names if n in order] == order
    assert names[-1] == "exec"


def test_first_calls_make_process_undumpable_then_new_session() -> None:
    sc, _, _ = run_container(make_spec())
    assert sc.calls[0] == ("prctl", (S.PR_SET_DUMPABLE, 0, 0, 0, 0))
    assert sc.calls[1][0] == "setsid"


def test_inherited_fds_closed_before_entering_namespaces() -> None:
    sc, _, _ = run_container(make_spec())
    names = sc.names()
    first_close = names.index("close_fds_from")
    assert sc.calls[first_close][1] == (3, (CHANNEL_FD, 10, 11, 12))
    assert first_close < names.index("unshare")


def test_cgroup_joined_before_namespaces_and_pid_ns_left_to_parent() -> None:
    sc, _, _ = run_container(make_spec())
    names = sc.names()
    write = sc.calls.index(("write_file", ("/sys/fs/cgroup/memory/pd/c1/cgroup.procs", b"0")))
    assert write < names.index("unshare")
    (flags,) = sc.of("unshare")[0]
    assert flags == S.CLONE_NEWNS | S.CLONE_NEWUTS | S.CLONE_NEWIPC | S.CLONE_NEWNET
    assert sc.of("link_up") == [("lo",)]


def test_rootfs_is_overlay_mounted_after_making_mounts_private() -> None:
    sc, _, _ = run_container(make_spec())
    mounts = sc.of("mount")
    assert mounts[0] == (None, "/", None, S.MS_REC | S.MS_PRIVATE, None)
    assert mounts[1] == ("overlay", "/run/pd/rootfs", "overlay", 0,
                         "lowerdir=/layers/2:/layers/1,upperdir=/c1/upper,workdir=/c1/work,index=off")


class FailingOverlayMount(RecordingSyscalls):
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        super().mount(source, target, fstype, flags, data)
        if fstype == "overlay":
            raise OSError(errno.EINVAL, "mount: invalid argument")


def test_rootfs_chdir_relative_layers_mounted_from_the_store_and_cwd_reset() -> None:
    rootfs = RootfsSpec(LayerMount("overlay", "overlay", ("lowerdir=l/AAA:l/BBB", "upperdir=/store/mounts/c1/diff",
                                                          "workdir=/store/mounts/c1/work"), chdir="/store"))
    sc, _, _ = run_container(dataclasses.replace(make_spec(), rootfs=rootfs))
    overlay = sc.calls.index(("mount", ("overlay", "/run/pd/rootfs", "overlay", 0,
                                        "lowerdir=l/AAA:l/BBB,upperdir=/store/mounts/c1/diff,"
                                        "workdir=/store/mounts/c1/work")))
    assert sc.calls[overlay - 1] == ("chdir", ("/store",))
    assert sc.calls[overlay + 1] == ("chdir", ("/",))
    # nothing else ever runs with the store as cwd
    assert [c for c in sc.calls if c[0] == "chdir"].count(("chdir", ("/store",))) == 1


def test_rootfs_cwd_reset_even_when_the_overlay_mount_fails() -> None:
    rootfs = RootfsSpec(LayerMount("overlay", "overlay", ("lowerdir=l/AAA", "upperdir=/store/mounts/c1/diff",
                                                          "workdir=/store/mounts/c1/work"), chdir="/store"))
    sc = make_kernel(FailingOverlayMount)
    with pytest.raises(InitError) as exc:
        run_container(dataclasses.replace(make_spec(), rootfs=rootfs), sc)
    assert exc.value.step == "rootfs"
    assert sc.calls[-2][0] == "mount" and sc.calls[-1] == ("chdir", ("/",))
    assert sc.cwd == "/"


def test_default_mounts_use_dockerd_options_through_fd_targets() -> None:
    sc, _, _ = run_container(make_spec())
    by_type = {m[2]: m for m in sc.of("mount") if m[2] in ("proc", "devpts", "sysfs", "mqueue")}
    assert by_type["proc"][3] == S.MS_NOSUID | S.MS_NOEXEC | S.MS_NODEV
    assert by_type["proc"][1].startswith("/proc/self/fd/")
    assert by_type["devpts"][4] == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert by_type["sysfs"][3] & S.MS_RDONLY
    shm = [m for m in sc.of("mount") if m[0] == "shm"]
    assert shm and shm[0][4] == "mode=1777,size=65536k"
    # every path inside the rootfs is resolved in-root, never by a plain path
    assert all(a[4] & S.RESOLVE_IN_ROOT for a in sc.of("openat2"))


def test_devices_created_with_mknod_and_symlinks() -> None:
    sc, _, _ = run_container(make_spec())
    nodes = {a[1]: a[3] for a in sc.of("mknodat")}
    assert nodes["null"] == os.makedev(1, 3)
    assert nodes["urandom"] == os.makedev(1, 9)
    links = {a[2]: a[0] for a in sc.of("symlinkat")}
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
                     "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
                     "ptmx": "pts/ptmx"}


def test_pivot_root_dance_then_hostname() -> None:
    sc, _, _ = run_container(make_spec())
    names = sc.names()
    p = names.index("pivot_root")
    assert sc.calls[p] == ("pivot_root", (".", "."))
    assert sc.of("umount2") == [(".", S.MNT_DETACH)]
    assert names.index("sethostname") > p
    assert sc.of("sethostname") == [("host1",)]


def test_masked_and_readonly_paths_after_pivot() -> None:
    sc, _, _ = run_container(make_spec())
    pivot = sc.names().index("pivot_root")
    after = [c[1] for c in sc.calls[pivot:] if c[0] == "mount"]
    ro_remounts = [m for m in after if m[3] & S.MS_REMOUNT and m[3] & S.MS_RDONLY]
    assert len(ro_remounts) == len(DEFAULT_READONLY_PATHS)
    # /proc/keys is a file: /dev/null bound over it; /sys/firmware a dir: read-only tmpfs
    null_binds = [m for m in after if m[3] == S.MS_BIND and m[0] and m[0].startswith("/proc/self/fd/")]
    tmpfs = [m for m in after if m[2] == "tmpfs" and m[3] == S.MS_RDONLY]
    assert len(null_binds) == 1 and len(tmpfs) == 1


def test_masking_refuses_a_dev_null_that_is_not_the_null_device() -> None:
    sc = make_kernel()
    sc.stats["dev/null"] = RecordingSyscalls.char_device(1, 5)
    with pytest.raises(InitError) as info:
        run_container(make_spec(), sc)
    assert info.value.step == "masked paths"


def test_default_capabilities_and_empty_inheritable() -> None:
    sc, _, _ = run_container(make_spec())
    dropped = {a[1] for a in sc.of("prctl") if a[0] == S.PR_CAPBSET_DROP}
    kept = capability_mask(DEFAULT_CAPABILITIES)
    assert dropped == {c for c in range(41) if not kept >> c & 1}
    assert sc.of("capset") == [(0xA80425FB, 0xA80425FB, 0)]
    assert (S.PR_CAP_AMBIENT, S.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) in sc.of("prctl")
    names = sc.names()
    assert names.index("setresuid") < names.index("capset")


def test_root_user_gets_member_groups_and_home() -> None:
    sc, _, state = run_container(make_spec())
    assert sc.of("setgroups") == [((0, 10),)]
    assert sc.of("setresgid") == [(0,)] and sc.of("setresuid") == [(0,)]
    assert "HOME=/root" in sc.of("execve")[0][2]


def test_numeric_user_and_group() -> None:
    sc, _, _ = run_container(make_spec(user=UserSpec("65534:65534")))
    assert sc.of("setgroups") == [((65534,),)]
    assert sc.of("setresuid") == [(65534,)]


def test_unknown_user_fails_in_user_step_with_dockerd_text() -> None:
    with pytest.raises(InitError) as info:
        run_container(make_spec(user=UserSpec("bob")))
    assert info.value.step == "user"
    assert info.value.text == "unable to find user bob: no matching entries in passwd file"


def test_executable_found_in_container_path_and_fds_closed_last() -> None:
    sc, _, _ = run_container(make_spec())
    path, args, env = sc.of("execve")[0]
    assert path == "/bin/echo" and args == ("echo", "hi")
    assert sc.calls[-2] == ("close_fds_from", (3, (CHANNEL_FD,)))


def test_not_found_in_path() -> None:
    with pytest.raises(InitError) as info:
        run_container(make_spec(args=("nosuch",)))
    assert info.value.step == "lookup"
    assert info.value.text == 'exec: "nosuch": executable file not found in $PATH'
    with pytest.raises(InitError) as info:
        run_container(make_spec(args=("/no/such",)))
    assert info.value.text == 'exec: "/no/such": stat /no/such: no such file or directory'


def test_default_path_used_without_path_in_env() -> None:
    sc = make_kernel()
    sc.files["/usr/local/bin/tool"] = b""
    sc, _, _ = run_container(make_spec(args=("tool",), env=()), sc)
    assert sc.of("execve")[0][0] == "/usr/local/bin/tool"


def test_failure_names_the_step_and_keeps_errno_text() -> None:
    sc = make_kernel()
    sc.fail["pivot_root"] = [errno.EPERM]
    with pytest.raises(InitError) as info:
        run_container(make_spec(), sc)
    assert info.value.step == "pivot_root"
    assert "operation not permitted" in info.value.text
    assert "execve" not in sc.names()


def test_no_pivot_fallback_moves_the_rootfs_and_chroots() -> None:
    """pivot_root fails with EINVAL where the root is no mount of its own (initramfs, a
    chroot): the rootfs is moved onto / and chrooted into, as dockerd's DOCKER_RAMDISK."""
    sc = make_kernel()
    sc.fail["pivot_root"] = [errno.EINVAL]
    sc, _, _ = run_container(make_spec(), sc)
    names = sc.names()
    p = names.index("pivot_root")
    assert sc.calls[p + 1] == ("mount", (".", "/", None, S.MS_MOVE, None))
    assert sc.calls[p + 2] == ("chroot", (".",))
    assert sc.of("umount2") == [] and "execve" in names


def test_tty_allocates_pty_inside_and_sends_master() -> None:
    spec = make_spec(tty=True, console_size=(40, 100))
    sc, channel, _ = run_container(spec)
    assert [type(m) for m in channel.sent] == [sync.PtyMaster]
    ptmx = [a for a in sc.of("openat2") if a[1] == "dev/pts/ptmx"]
    assert ptmx and ptmx[0][4] & S.RESOLVE_NO_SYMLINKS
    ioctls = [a[1] for a in sc.of("ioctl")]
    assert ioctls.index(S.TIOCGPTPEER) < ioctls.index(S.TIOCSCTTY)
    assert S.TIOCSWINSZ in ioctls
    assert [a[1] for a in sc.of("dup2")] == [0, 1, 2]


def test_pause_before_exec_reports_created_and_waits() -> None:
    spec = dataclasses.replace(make_spec(), pause_before_exec=True)
    sc, channel, _ = run_container(spec)
    assert [type(m) for m in channel.sent] == [sync.Created]
    assert channel.resumed == 1


def test_host_namespaces_are_not_unshared() -> None:
    spec = dataclasses.replace(make_spec(), namespaces={"mnt": None, "pid": None})
    sc, _, _ = run_container(spec)
    assert sc.of("unshare") == [(S.CLONE_NEWNS,)]
    assert sc.of("link_up") == [] and sc.of("sethostname") == []


def test_no_new_privileges_and_rlimits() -> None:
    spec = make_spec(no_new_privileges=True, rlimits=(("RLIMIT_NOFILE", 1024, 4096),))
    sc, _, _ = run_container(spec)
    assert (S.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) in sc.of("prctl")
    assert sc.of("setrlimit") == [("RLIMIT_NOFILE", 1024, 4096)]


def test_exec_joins_namespaces_of_init_in_order() -> None:
    spec = ExecSpec("c1", "e1", make_spec(user=UserSpec("nobody")).process)
    sc = make_kernel()
    state = InitState(sc=sc, channel=FakeChannel(), process=spec.process,
                      stdio=Stdio(10, 11, 12), init_pid=4242, cgroup_dirs=("/cg/c1",))
    run_steps(exec_steps(spec), state)
    opened = [a[0] for a in sc.of("open") if a[0].startswith("/proc/4242/ns/")]
    assert opened == [f"/proc/4242/ns/{k}" for k in ("cgroup", "ipc", "uts", "net", "mnt")]
    assert [a[1] for a in sc.of("setns")] == [S.CLONE_NEWCGROUP, S.CLONE_NEWIPC,
                                               S.CLONE_NEWUTS, S.CLONE_NEWNET, S.CLONE_NEWNS]
    assert sc.of("setresuid") == [(65534,)]
    assert "mount" not in sc.names() and "pivot_root" not in sc.names()
    # the init's root, opened before joining, becomes ours after the mount namespace
    root_open = next(i for i, (n, a) in enumerate(sc.calls) if n == "open" and a[0] == "/proc/4242/root")
    last_setns = max(i for i, (n, _) in enumerate(sc.calls) if n == "setns")
    assert root_open < last_setns
    assert [n for n, _ in sc.calls[last_setns + 1:last_setns + 4]] == ["fchdir", "chroot", "chdir"]
    assert sc.calls[last_setns + 2] == ("chroot", (".",))
