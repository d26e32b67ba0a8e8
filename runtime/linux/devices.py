"""Device access rules of a container, and the cgroup v2 eBPF program that enforces them.

cgroup v1 has a devices controller fed with ``devices.allow`` lines (``c 1:3 rwm``); cgroup
v2 has none: the kernel asks a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached to the
cgroup instead. :func:`device_program` compiles the same rule lines into that program, in
the shape runc's devicefilter uses: load type, access, major and minor from the context
into R2..R5, one block per allow rule that falls through to the next block on any mismatch
and returns 1 on a match, and a final block returning the default (0 = deny, or 1 when a
rule allows every device). Loading and attaching go through the
:mod:`runtime.linux.syscalls` seam.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.linux.syscalls import Syscalls

# include/uapi/linux/bpf.h
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
PROGRAM_LICENSE = "Apache"

_ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_ALL_ACCESS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE
_TYPES = {"c": BPF_DEVCG_DEV_CHAR, "b": BPF_DEVCG_DEV_BLOCK}

# moby's deviceCgroupRuleRegex: what --device-cgroup-rule accepts
_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")

# eBPF opcodes (include/uapi/linux/bpf_common.h, bpf.h)
_LDX_MEM_W = 0x61     # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54   # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_K = 0xB4   # BPF_ALU | BPF_MOV | BPF_K
_ALU32_MOV_X = 0xBC   # BPF_ALU | BPF_MOV | BPF_X
_JMP_JNE_K = 0x55     # BPF_JMP | BPF_JNE | BPF_K
_JMP_JNE_X = 0x5D     # BPF_JMP | BPF_JNE | BPF_X
_JMP_EXIT = 0x95      # BPF_JMP | BPF_EXIT
R0, R1, R2, R3, R4, R5 = range(6)


class InvalidDeviceRule(ValueError):
    """A rule line that is not ``<a|b|c> <major|*>:<minor|*> <rwm>``."""


@dataclass(frozen=True, slots=True)
class DeviceRule:
    """One allow rule. ``kind`` is "a" (every device), "c" or "b"; ``major``/``minor``
    None mean ``*``; ``access`` is a subset of "rwm"."""

    kind: str
    major: int | None
    minor: int | None
    access: str

    @property
    def line(self) -> str:
        """The devices.allow line (cgroup v1)."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.kind} {major}:{minor} {self.access}"


def parse_rule(text: str) -> DeviceRule:
    """Parse a devices-cgroup line as dockerd validates ``--device-cgroup-rule``."""
    match = _RULE.match(text)
    if match is None:
        raise InvalidDeviceRule(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = match.groups()
    if len(set(access)) != len(access):
        raise InvalidDeviceRule(f"invalid device cgroup rule format: '{text}'")
    return DeviceRule(kind, None if major == "*" else int(major),
                      None if minor == "*" else int(minor), access)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: DeviceRule) -> bytes:
    """Instructions for one allow rule: every test jumps over the rest of the block
    (to the next rule) on a mismatch; a full match returns 1."""
    access = 0
    for ch in rule.access:
        access |= _ACCESS_BITS[ch]
    tests: list[tuple[int, int, int, int]] = [(_JMP_JNE_K, R2, 0, _TYPES[rule.kind])]
    if access != _ALL_ACCESS:
        # (requested & allowed) != requested -> some requested access is not allowed
        tests += [(_ALU32_MOV_X, R1, R3, 0), (_ALU32_AND_K, R1, 0, access),
                  (_JMP_JNE_X, R1, R3, 0)]
    if rule.major is not None:
        tests.append((_JMP_JNE_K, R4, 0, rule.major))
    if rule.minor is not None:
        tests.append((_JMP_JNE_K, R5, 0, rule.minor))
    tail = [_insn(_ALU32_MOV_K, R0, imm=1), _insn(_JMP_EXIT)]
    out = []
    for i, (code, dst, src, imm) in enumerate(tests):
        is_jump = code in (_JMP_JNE_K, _JMP_JNE_X)
        skip = len(tests) - i - 1 + len(tail) if is_jump else 0
        out.append(_insn(code, dst, src, skip, imm))
    return b"".join(out + tail)


def device_program(rules: tuple[DeviceRule, ...]) -> bytes:
    """The eBPF program (raw ``struct bpf_insn`` array) allowing exactly ``rules``.

    The context is ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}``
    with the device type in the low and the access in the high 16 bits of access_type.
    A rule of kind "a" allows everything (as writing it to v1's devices.allow does)."""
    prologue = b"".join((
        _insn(_LDX_MEM_W, R2, R1, 0), _insn(_ALU32_AND_K, R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, R3, R1, 0), _insn(_ALU32_RSH_K, R3, imm=16),
        _insn(_LDX_MEM_W, R4, R1, 4),
        _insn(_LDX_MEM_W, R5, R1, 8),
    ))
    allow_all = any(r.kind == "a" for r in rules)
    blocks = b"" if allow_all else b"".join(_rule_block(r) for r in rules)
    final = _insn(_ALU32_MOV_K, R0, imm=1 if allow_all else 0) + _insn(_JMP_EXIT)
    return prologue + blocks + final


def attach_device_program(sys: Syscalls, cgroup_dir: str, lines: Iterable[str]) -> None:
    """Compile ``lines`` (devices.allow syntax), load the program and attach it to the
    cgroup v2 directory (``BPF_F_ALLOW_MULTI``, as runc: a parent's program still runs).
    The attachment keeps the program alive; both fds are closed before returning."""
    program = device_program(tuple(parse_rule(line) for line in lines))
    dir_fd = sys.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        prog_fd = sys.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, program, PROGRAM_LICENSE)
        try:
            sys.bpf_prog_attach(dir_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        finally:
            sys.close(prog_fd)
    finally:
        sys.close(dir_fd)


__all__ = ["DeviceRule", "InvalidDeviceRule", "parse_rule", "device_program",
           "attach_device_program",
           "BPF_PROG_TYPE_CGROUP_DEVICE", "BPF_CGROUP_DEVICE", "BPF_F_ALLOW_MULTI",
           "PROGRAM_LICENSE"]
