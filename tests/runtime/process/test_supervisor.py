"""Real container starts through the supervisor (root; busybox rootfs over overlayfs)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.linux.cgroups import CgroupHandle, CgroupManager, Resources
from runtime.process.contract import ExitReport, StartInvalidConfig, StartSystemError
from runtime.spec.model import ExecSpec, UserSpec
from tests.runtime.process.conftest import Harness, needs_root, read_all

pytestmark = needs_root


async def test_echo_hello_through_stdout_pipe(harness: Harness) -> None:
    code, out, err = await harness.run(harness.spec("echo", "hello"))
    assert (code, out, err) == (0, "hello\n", "")


async def test_exit_code_and_stderr(harness: Harness) -> None:
    code, out, err = await harness.run(harness.spec("sh", "-c", "echo oops >&2; exit 3"))
    assert (code, out, err) == (3, "", "oops\n")


async def test_missing_path_is_start_failed_with_dockerd_text(harness: Harness) -> None:
    with pytest.raises(StartInvalidConfig) as info:
        await harness.start(harness.spec("/no/such"))
    assert info.value.exit_code == 127
    assert str(info.value).endswith(
        'error during container init: exec: "/no/such": stat /no/such: '
        "no such file or directory: unknown")


async def test_missing_command_in_path(harness: Harness) -> None:
    with pytest.raises(StartInvalidConfig) as info:
        await harness.start(harness.spec("nosuchcmd"))
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in str(info.value)
    assert info.value.exit_code == 127


async def test_not_executable_is_permission_denied(harness: Harness) -> None:
    with pytest.raises(StartInvalidConfig) as info:
        await harness.start(harness.spec("/etc/passwd"))
    assert info.value.exit_code == 126
    assert "permission denied" in str(info.value)


async def test_pid_one_and_own_processes_only(harness: Harness) -> None:
    code, out, _ = await harness.run(harness.spec("sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"))
    lines = out.split()
    assert code == 0 and lines[0] == "1"
    assert int(lines[1]) <= 3  # sh, ls, grep: nothing of the host


async def test_default_capabilities(harness: Harness) -> None:
    _, out, _ = await harness.run(harness.spec("grep", "^Cap", "/proc/self/status"))
    caps = dict(line.split(":\t") for line in out.splitlines())
    assert caps == {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb",
                    "CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb",
                    "CapAmb": "0000000000000000"}


async def test_masked_and_readonly_proc_paths(harness: Harness) -> None:
    # /proc/kcore does not exist on every kernel; /proc/keys is masked the same way.
    script = ("for p in /proc/kcore /proc/keys; do [ -e $p ] && wc -c < $p; done; "
              "ls /sys/firmware | wc -l; "
              "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo writable || echo ro")
    code, out, _ = await harness.run(harness.spec("sh", "-c", script))
    host_keys = Path("/proc/keys").read_text()
    lines = out.split()
    assert lines[-1] == "ro"
    assert lines[-2] == "0"                      # /sys/firmware is an empty tmpfs
    assert all(v == "0" for v in lines[:-2])     # masked files read as empty
    assert host_keys                             # while the host's /proc/keys is not


async def test_mounts_match_dockerd_options(harness: Harness) -> None:
    _, out, _ = await harness.run(harness.spec("cat", "/proc/self/mountinfo"))
    opts = {}
    for line in out.splitlines():
        left, _, right = line.partition(" - ")
        opts[left.split()[4]] = (left.split()[5], right.split()[0])
    assert opts["/"][1] == "overlay"
    assert opts["/proc"] == ("rw,nosuid,nodev,noexec,relatime", "proc")
    assert opts["/sys"][0].startswith("ro,")
    assert opts["/sys/fs/cgroup"][0].startswith("ro,")
    assert opts["/dev/pts"][1] == "devpts" and opts["/dev/shm"][1] == "tmpfs"
    assert opts["/proc/sys"][0].startswith("ro,")


async def test_hostname_and_loopback(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "hostname; cat /sys/class/net/lo/operstate; ls /sys/class/net")
    _, out, _ = await harness.run(spec)
    lines = out.split()
    assert lines[0] == spec.hostname
    assert lines[2:] == ["lo"]


async def test_user_nobody(harness: Harness) -> None:
    _, out, _ = await harness.run(harness.spec("id", user="65534:65534"))
    assert out.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    _, out, _ = await harness.run(harness.spec("id"))
    assert out.strip() == "uid=0(root) gid=0(root) groups=0(root),10(wheel)"


async def test_unknown_user(harness: Harness) -> None:
    with pytest.raises(StartSystemError) as info:
        await harness.start(harness.spec("id", user="bob"))
    assert str(info.value) == "unable to find user bob: no matching entries in passwd file"


async def test_only_stdio_fds_reach_the_process(harness: Harness) -> None:
    _, out, _ = await harness.run(harness.spec("ls", "/proc/self/fd"))
    assert sorted(out.split()) == ["0", "1", "2", "3"]  # 3 = the directory ls reads


async def test_workdir_created_and_files_stay_in_upper(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "pwd; echo data > f", cwd="/srv/app")
    code, out, _ = await harness.run(spec)
    assert (code, out) == (0, "/srv/app\n")
    assert (Path(str(spec.rootfs.mount.option("upperdir"))) / "srv/app/f").read_text() == "data\n"
    assert not (harness.rootfs / "work").exists()


async def test_stdin_pipe(harness: Harness) -> None:
    proc = await harness.start(harness.spec("tr", "a-z", "A-Z", open_stdin=True))
    assert proc.stdin is not None
    os.write(proc.stdin, b"abc\n")
    os.close(proc.stdin)
    out = await asyncio.get_running_loop().run_in_executor(None, read_all, proc.stdout)
    read_all(proc.stderr)
    assert out == "ABC\n"
    assert await harness.wait(proc) == 0


async def test_tty_gets_container_pts(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "tty; stty size", tty=True)
    spec = dataclasses.replace(spec, process=dataclasses.replace(spec.process,
                                                                console_size=(30, 90)))
    proc = await harness.start(spec)
    assert proc.tty and proc.stderr is None and proc.stdin is not None
    os.close(proc.stdin)
    out = await asyncio.get_running_loop().run_in_executor(None, read_all, proc.stdout)
    assert re.fullmatch(r"/dev/pts/\d+\r\n30 90\r\n", out), out
    assert await harness.wait(proc) == 0


async def test_signal_death_is_128_plus_signal(harness: Harness) -> None:
    proc = await harness.start(harness.spec("sleep", "30"))
    await harness.client.signal(proc.pid, 9)
    assert await harness.wait(proc) == 137
    for fd in (proc.stdout, proc.stderr):
        read_all(fd)


async def test_exec_into_running_container(harness: Harness) -> None:
    spec = harness.spec("sleep", "30")
    init = await harness.start(spec)
    exec_spec = ExecSpec(spec.container_id, "e1", dataclasses.replace(
        spec.process, args=("sh", "-c", "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; id -u; hostname"),
        user=UserSpec("nobody")))
    proc = await harness.client.exec(exec_spec)
    harness.started.append(proc.pid)
    loop = asyncio.get_running_loop()
    out = await loop.run_in_executor(None, read_all, proc.stdout)
    read_all(proc.stderr)
    assert await harness.wait(proc) == 0
    pid, cmdline, uid, host = out.split("\n")[:4]
    assert int(pid) > 1 and cmdline == "sleep 30 " and uid == "65534"
    assert host == spec.hostname
    running = await harness.client.running()
    assert [(c, e, p.pid) for c, e, p in running if c == spec.container_id] == [
        (spec.container_id, None, init.pid)]
    for _, _, p in running:
        for fd in (p.stdin, p.stdout, p.stderr):
            if fd is not None:
                os.close(fd)
    await harness.client.signal(init.pid, 9)
    assert await harness.wait(init) == 137


async def test_exec_in_unknown_container_fails(harness: Harness) -> None:
    spec = harness.spec("true")
    with pytest.raises(Exception, match="is not running"):
        await harness.client.exec(ExecSpec("nope", "e1", spec.process))


async def test_pause_before_exec_then_resume(harness: Harness) -> None:
    spec = dataclasses.replace(harness.spec("echo", "resumed"), pause_before_exec=True)
    proc = await harness.start(spec)
    # the namespaces exist while paused: the net namespace is not the host's
    assert os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    await harness.client.resume(spec.container_id)
    out = await asyncio.get_running_loop().run_in_executor(None, read_all, proc.stdout)
    read_all(proc.stderr)
    assert out == "resumed\n" and await harness.wait(proc) == 0


class Cgroups:
    def __init__(self) -> None:
        self.manager = CgroupManager(parent=f"pydockerd-test-{uuid.uuid4().hex[:8]}")
        self.handles: list[CgroupHandle] = []

    def create(self, resources: Resources) -> tuple[str, ...]:
        handle = self.manager.create(uuid.uuid4().hex, resources)
        self.handles.append(handle)
        return handle.dirs

    def cleanup(self) -> None:
        for handle in self.handles:
            self.manager.remove(handle)
        mountpoints = list(self.manager.hierarchies.values())
        if self.manager.unified is not None:
            mountpoints.append(self.manager.unified)
        for mountpoint in mountpoints:
            try:
                os.rmdir(os.path.join(mountpoint, self.manager.parent))
            except FileNotFoundError:
                pass


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    helper = Cgroups()
    yield helper
    helper.cleanup()


async def test_memory_limit_oom_kill_is_137(harness: Harness, cgroups: Cgroups) -> None:
    dirs = cgroups.create(Resources(memory=16 << 20, memory_swap=16 << 20))
    code, _, _ = await harness.run(harness.spec("tail", "/dev/zero", cgroup_dirs=dirs))
    assert code == 137
    assert cgroups.manager.oom_killed(cgroups.handles[0])


async def test_pids_and_cpu_limits_visible_inside(harness: Harness, cgroups: Cgroups) -> None:
    dirs = cgroups.create(Resources(pids_limit=42, nano_cpus=1_500_000_000))
    spec = harness.spec("cat", "/sys/fs/cgroup/pids/pids.max",
                        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                        "/sys/fs/cgroup/cpu/cpu.cfs_period_us", cgroup_dirs=dirs)
    code, out, _ = await harness.run(spec)
    assert (code, out.split()) == (0, ["42", "150000", "100000"])
    assert not cgroups.manager.oom_killed(cgroups.handles[0])


async def test_hybrid_host_container_joins_the_unified_hierarchy_too(
        harness: Harness, cgroups: Cgroups) -> None:
    if cgroups.manager.unified is None:
        pytest.skip("no cgroup2 hierarchy next to the v1 controllers on this host")
    dirs = cgroups.create(Resources())
    handle = cgroups.handles[0]
    unified = os.path.join(cgroups.manager.unified, cgroups.manager.parent, handle.container_id)
    assert unified in dirs
    code, out, _ = await harness.run(harness.spec("cat", "/proc/self/cgroup", cgroup_dirs=dirs))
    own = f"/{cgroups.manager.parent}/{handle.container_id}"
    paths = {key: path for _, key, path in (line.split(":", 2) for line in out.splitlines())}
    assert code == 0 and paths[""] == own                # "0::/<parent>/<id>", as dockerd
    assert paths["memory"] == own and paths["name=systemd"] == own
    cgroups.manager.remove(handle)
    assert not os.path.exists(unified)


async def test_exec_with_tty_and_privileged(harness: Harness) -> None:
    spec = harness.spec("sleep", "30")
    init = await harness.start(spec)
    process = dataclasses.replace(spec.process, args=("sh", "-c", "tty; grep CapEff /proc/self/status"),
                                  tty=True)
    proc = await harness.client.exec(ExecSpec(spec.container_id, "e2", process, privileged=True))
    harness.started.append(proc.pid)
    assert proc.stdin is not None
    os.close(proc.stdin)
    out = await asyncio.get_running_loop().run_in_executor(None, read_all, proc.stdout)
    assert await harness.wait(proc) == 0
    host_bnd = [l for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith("CapBnd")][0].split()[1]
    assert re.fullmatch(rf"/dev/pts/\d+\r\nCapEff:\t{host_bnd}\r\n", out), out
    await harness.client.signal(init.pid, 9)
    assert await harness.wait(init) == 137


async def test_privileged_container(harness: Harness) -> None:
    from runtime.spec.defaults import all_host_capabilities, default_mounts
    spec = harness.spec("sh", "-c", "grep CapEff /proc/self/status; cat /proc/self/mountinfo")
    mounts = tuple(dataclasses.replace(m, options=tuple(o for o in m.options if o != "ro"))
                   if m.destination == "/sys" else m for m in default_mounts())
    spec = dataclasses.replace(spec, privileged=True, masked_paths=(), readonly_paths=(),
                               mounts=mounts, process=dataclasses.replace(
                                   spec.process, capabilities=all_host_capabilities()))
    code, out, _ = await harness.run(spec)
    host_bnd = [l for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith("CapBnd")][0].split()[1]
    assert code == 0 and out.splitlines()[0] == f"CapEff:\t{host_bnd}"
    sys_opts = [l.split()[5] for l in out.splitlines()[1:] if l.split()[4] == "/sys"]
    assert sys_opts and sys_opts[0].startswith("rw,")
    assert not any(l.split()[4] == "/proc/sys" for l in out.splitlines()[1:])


async def test_stdin_is_dev_null_without_open_stdin(harness: Harness) -> None:
    code, out, _ = await harness.run(harness.spec("sh", "-c", "cat; readlink /proc/self/fd/0"))
    assert (code, out) == (0, "/dev/null\n")


async def test_readonly_rootfs_binds_sysctls_rlimits_nnp(harness: Harness, tmp_path: Path) -> None:
    from runtime.spec.model import Mount
    host_file = tmp_path / "hostname"
    host_file.write_text("bound\n")
    spec = harness.spec("sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; cat /etc/hostname; "
                        "echo y > /etc/hostname 2>/dev/null || echo bind-ro; "
                        "cat /proc/sys/net/ipv4/ip_forward; ulimit -n; "
                        "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj")
    spec = dataclasses.replace(
        spec, rootfs=dataclasses.replace(spec.rootfs, readonly=True),
        mounts=spec.mounts + (Mount("/etc/hostname", "bind", str(host_file), ("rbind", "ro")),),
        sysctls={"net.ipv4.ip_forward": "1"},
        process=dataclasses.replace(spec.process, rlimits=(("RLIMIT_NOFILE", 321, 654),),
                                    no_new_privileges=True, oom_score_adj=123))
    code, out, err = await harness.run(spec)
    assert code == 0, err
    assert out.split("\n")[:7] == ["ro", "bound", "bind-ro", "1", "321", "NoNewPrivs:\t1", "123"]
    assert host_file.read_text() == "bound\n"


async def test_exit_kept_while_no_daemon_is_connected(harness: Harness, tmp_path: Path) -> None:
    from runtime.process.client import SupervisorClient, spawn_supervisor
    root = tmp_path / "private-exec"
    sup, ready = spawn_supervisor(root)
    try:
        assert os.read(ready, 1) == b"1"
        os.close(ready)
        first = await SupervisorClient.connect(root)
        proc = await first.start(harness.spec("sh", "-c", "sleep 0.2; exit 5"))
        for fd in (proc.stdout, proc.stderr):
            assert fd is not None
            os.close(fd)
        await first.close()
        saved = root / "supervisor" / "exits" / f"{proc.pid}.json"
        for _ in range(100):
            if saved.exists():
                break
            await asyncio.sleep(0.02)
        assert saved.exists()
        second = await SupervisorClient.connect(root)
        await asyncio.sleep(0.1)  # the exit arrives before anyone listens: it is held
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_exit(report: ExitReport) -> None:
            if not got.done():
                got.set_result(report.exit_code)

        second.on_exit(on_exit)
        assert await asyncio.wait_for(got, 5) == 5
        for _ in range(100):  # acknowledged: forgotten
            if not saved.exists():
                break
            await asyncio.sleep(0.02)
        assert not saved.exists()
        await second.close()
    finally:
        sup.terminate()
        sup.wait(10)


async def test_concurrent_starts_each_get_their_own_output(harness: Harness) -> None:
    specs = [harness.spec("sh", "-c", f"echo {i}; exit {i}") for i in range(12)]
    results = await asyncio.gather(*(harness.run(s) for s in specs))
    assert [(code, out) for code, out, _ in results] == [(i, f"{i}\n") for i in range(12)]
