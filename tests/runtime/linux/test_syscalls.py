"""The kernel seam: real calls raise OSError with errno; the fake records."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime.linux import syscalls as S
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.syscalls_fake import RecordingSyscalls

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_mount_error_carries_errno_and_path(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        LinuxSyscalls().mount("none", str(tmp_path / "missing"), "tmpfs", 0, None)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(tmp_path / "missing")


def test_setns_on_bad_fd() -> None:
    with pytest.raises(OSError) as info:
        LinuxSyscalls().setns(987654, S.CLONE_NEWNET)
    assert info.value.errno == errno.EBADF


def test_capget_matches_proc_status() -> None:
    eff, prm, inh = LinuxSyscalls().capget()
    status = dict(line.split(":\t") for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("Cap"))
    assert (eff, prm, inh) == (int(status["CapEff"], 16), int(status["CapPrm"], 16),
                               int(status["CapInh"], 16))


def test_openat2_in_root_cannot_escape(tmp_path: Path) -> None:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/escape").symlink_to("/etc")
    (tmp_path / "secret").write_text("host")
    (tmp_path / "root/dots").symlink_to("../../secret")
    sc = LinuxSyscalls()
    rootfd = os.open(tmp_path / "root", os.O_PATH | os.O_DIRECTORY)
    try:
        fd = sc.openat2(rootfd, "escape", os.O_PATH, 0, S.RESOLVE_IN_ROOT)
        assert os.readlink(f"/proc/self/fd/{fd}") == str(tmp_path / "root/etc")
        os.close(fd)
        with pytest.raises(FileNotFoundError):
            sc.openat2(rootfd, "dots", os.O_RDONLY, 0, S.RESOLVE_IN_ROOT)
    finally:
        os.close(rootfd)


def test_read_file_refuses_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "passwd")
    with pytest.raises(OSError) as info:
        LinuxSyscalls().read_file(str(tmp_path / "passwd"), 100)
    assert info.value.errno == errno.EINVAL


@root_only
def test_unshare_and_hostname_in_child() -> None:
    sc = LinuxSyscalls()
    pid = os.fork()
    if pid == 0:
        try:
            sc.unshare(S.CLONE_NEWUTS)
            sc.sethostname("seam-test")
            os._exit(0 if os.uname().nodename == "seam-test" else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.uname().nodename != "seam-test"


def test_recording_fake_records_and_fails_on_demand() -> None:
    sc = RecordingSyscalls(fail={"mount": [errno.EPERM]})
    with pytest.raises(PermissionError):
        sc.mount("a", "/b", "tmpfs", 0, None)
    sc.mount("a", "/b", "tmpfs", 0, None)
    assert sc.of("mount") == [("a", "/b", "tmpfs", 0, None)] * 2
    fd = sc.openat2(3, "dev/null", os.O_PATH, 0, 0)
    sc.stats["dev/null"] = RecordingSyscalls.char_device(1, 3)
    assert sc.fstat(fd).st_rdev == os.makedev(1, 3)
