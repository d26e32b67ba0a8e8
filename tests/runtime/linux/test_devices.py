"""Device rules and the cgroup v2 eBPF device program: the rule parser, the program's
answers (interpreted from its bytes), the kernel's verifier, and a real attachment to a
cgroup2 hierarchy mounted for the test (hybrid hosts allow it) governing a process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.linux import devices as D
from runtime.linux.cgroups import DEFAULT_DEVICE_RULES, PRIVILEGED_DEVICE_RULES
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.syscalls_fake import RecordingSyscalls
from tests.runtime.linux.ebpf import allows


def program(*lines: str) -> bytes:
    return D.device_program(tuple(D.parse_rule(line) for line in lines))


def test_parse_rule_as_dockerd_validates() -> None:
    assert D.parse_rule("c 1:3 rwm") == D.DeviceRule("c", 1, 3, "rwm")
    assert D.parse_rule("b 7:* rmw") == D.DeviceRule("b", 7, None, "rmw")
    assert D.parse_rule("a *:* m").line == "a *:* m"
    for bad in ("c 1:3", "x 1:3 rwm", "c 1:3 rwx", "c a:3 r", "c 1:3 rwmr", " c 1:3 r", "c 1 r"):
        with pytest.raises(D.InvalidDeviceRule) as info:
            D.parse_rule(bad)
        assert str(info.value) == f"invalid device cgroup rule format: '{bad}'"


def test_default_program_allows_the_default_list_only() -> None:
    prog = program(*DEFAULT_DEVICE_RULES)
    assert len(prog) % 8 == 0
    for major, minor in ((1, 3), (1, 5), (1, 8), (1, 9), (5, 0), (5, 2), (136, 4), (10, 200)):
        assert allows(prog, "c", major, minor, "rw"), (major, minor)
    assert allows(prog, "c", 1, 11, "m") and allows(prog, "b", 8, 0, "m")  # mknod: any
    assert not allows(prog, "b", 8, 0, "r")      # the host's disk
    assert not allows(prog, "c", 1, 11, "w")     # /dev/kmsg
    assert not allows(prog, "c", 10, 229, "rw")  # fuse
    assert not allows(prog, "b", 1, 3, "r")      # type matters


def test_access_must_be_covered_by_one_rule() -> None:
    prog = program("c 4:* r", "c 4:1 w")
    assert allows(prog, "c", 4, 7, "r") and not allows(prog, "c", 4, 7, "w")
    assert allows(prog, "c", 4, 1, "w") and not allows(prog, "c", 4, 1, "rw")
    assert not allows(prog, "c", 4, 1, "m")


def test_wildcards_and_allow_all() -> None:
    prog = program(*DEFAULT_DEVICE_RULES, "b 7:* rmw")
    assert allows(prog, "b", 7, 0, "r") and allows(prog, "b", 7, 12, "rw")
    assert not allows(prog, "b", 8, 0, "r")
    every = program(*PRIVILEGED_DEVICE_RULES)
    assert allows(every, "b", 8, 0, "rw") and allows(every, "c", 1, 11, "w")
    assert not allows(program(), "c", 1, 3, "r")


def test_attach_through_the_seam() -> None:
    sys = RecordingSyscalls()
    D.attach_device_program(sys, "/cg/c1", DEFAULT_DEVICE_RULES)
    assert sys.names() == ["open", "bpf_prog_load", "bpf_prog_attach", "close", "close"]
    (prog_type, insns, _license), = sys.of("bpf_prog_load")
    assert prog_type == D.BPF_PROG_TYPE_CGROUP_DEVICE and insns == program(*DEFAULT_DEVICE_RULES)
    (target, _fd, attach_type, flags), = sys.of("bpf_prog_attach")
    assert (target, attach_type, flags) == ("/cg/c1", D.BPF_CGROUP_DEVICE, D.BPF_F_ALLOW_MULTI)


def test_fake_attach_refuses_what_the_kernel_refuses() -> None:
    sys = RecordingSyscalls()
    with pytest.raises(OSError):
        sys.bpf_prog_load(D.BPF_PROG_TYPE_CGROUP_DEVICE, b"\x00" * 5, "Apache")
    with pytest.raises(OSError):
        sys.bpf_prog_attach(sys.open("/cg", 0), 12345, D.BPF_CGROUP_DEVICE, 0)


# --- the real kernel -----------------------------------------------------------------------

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@root_only
@pytest.mark.parametrize("lines", [DEFAULT_DEVICE_RULES, PRIVILEGED_DEVICE_RULES,
                                   DEFAULT_DEVICE_RULES + ("b 7:* rmw", "c 4:1 w")])
def test_kernel_verifier_accepts(lines: tuple[str, ...]) -> None:
    fd = LinuxSyscalls().bpf_prog_load(D.BPF_PROG_TYPE_CGROUP_DEVICE, program(*lines),
                                       D.PROGRAM_LICENSE)
    os.close(fd)


@root_only
def test_kernel_verifier_refuses_garbage() -> None:
    bad = program(*DEFAULT_DEVICE_RULES)[:-8]  # no final exit
    with pytest.raises(OSError) as info:
        LinuxSyscalls().bpf_prog_load(D.BPF_PROG_TYPE_CGROUP_DEVICE, bad, D.PROGRAM_LICENSE)
    assert "BPF_PROG_LOAD" in str(info.value)


@pytest.fixture
def cgroup2(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a fresh child cgroup on a cgroup2 mount, a tmpfs that honours device nodes)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mnt, dev = tmp_path / "cg", tmp_path / "dev"
    mnt.mkdir()
    dev.mkdir()
    sys = LinuxSyscalls()
    sys.mount("none", str(mnt), "cgroup2", 0, None)
    try:
        sys.mount("none", str(dev), "tmpfs", 0, "mode=755")
        child = mnt / f"pydockerd-test-{os.getpid()}"
        child.mkdir()
        try:
            yield child, dev
        finally:
            child.rmdir()
            sys.umount2(str(dev), 0)
    finally:
        sys.umount2(str(mnt), 0)


def probe(child: Path, dev: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a shell that first moves itself into ``child``."""
    return subprocess.run(["sh", "-c", f'echo $$ > {child}/cgroup.procs && cd {dev} && {script}'],
                          capture_output=True, text=True, timeout=30)


def test_attached_program_governs_a_process(cgroup2: tuple[Path, Path]) -> None:
    child, dev = cgroup2
    D.attach_device_program(LinuxSyscalls(), str(child),
                            DEFAULT_DEVICE_RULES + ("b 7:* rmw",))
    denied = probe(child, dev, "mknod disk b 8 0 && head -c1 disk")
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr, denied
    kmsg = probe(child, dev, "mknod kmsg c 1 11 && echo x > kmsg")
    assert kmsg.returncode != 0 and "Operation not permitted" in kmsg.stderr, kmsg
    ok = probe(child, dev, "mknod null c 1 3 && echo x > null && head -c1 null && echo fine")
    assert ok.returncode == 0 and ok.stdout.strip() == "fine", ok
    loop = probe(child, dev, "mknod loop b 7 0 && exec 3<loop; echo opened $?")
    assert "Operation not permitted" not in loop.stderr, loop


def test_without_program_the_probe_opens(cgroup2: tuple[Path, Path]) -> None:
    # the control: the same probe, no program attached -> the kernel lets it open
    child, dev = cgroup2
    proc = probe(child, dev, "mknod null2 c 1 11 && exec 3>null2 && echo opened")
    assert proc.stdout.strip() == "opened", proc
