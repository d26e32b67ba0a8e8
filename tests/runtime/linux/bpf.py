"""A classic-BPF interpreter for seccomp programs: what the kernel would return for a
syscall, computed from the exported program alone (no filter is loaded)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003


def seccomp_data(nr: int, arch: int, args: Sequence[int] = (), ip: int = 0) -> bytes:
    padded = list(args) + [0] * (6 - len(args))
    return struct.pack("=iIQ6Q", nr, arch, ip, *(a & 0xFFFFFFFFFFFFFFFF for a in padded))


def run(program: bytes, data: bytes, limit: int = 100_000) -> int:
    """The program's return value for ``data`` (a struct seccomp_data)."""
    insns = list(struct.iter_unpack("=HBBI", program))
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(limit):
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        pc += 1
        if cls == 0x00:  # LD
            mode, size = code & 0xE0, code & 0x18
            if mode == 0x20 and size == 0x00:
                a = struct.unpack_from("=I", data, k)[0]
            elif mode == 0x00:
                a = k
            elif mode == 0x60:
                a = mem[k]
            elif mode == 0x80:
                a = len(data)
            else:
                raise ValueError(f"unsupported load {code:#x}")
        elif cls == 0x01:  # LDX
            mode = code & 0xE0
            x = k if mode == 0x00 else mem[k] if mode == 0x60 else len(data)
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: lambda: a + src, 0x10: lambda: a - src, 0x20: lambda: a * src,
                 0x30: lambda: a // src, 0x40: lambda: a | src, 0x50: lambda: a & src,
                 0x60: lambda: a << src, 0x70: lambda: a >> src, 0x80: lambda: -a,
                 0x90: lambda: a % src, 0xA0: lambda: a ^ src}[op]() & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            src = x if code & 0x08 else k
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:  # MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    raise RuntimeError("BPF program did not return")
