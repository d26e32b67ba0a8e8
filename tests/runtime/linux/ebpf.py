"""An interpreter for the eBPF subset of cgroup-device programs: what the kernel would
answer for one device access, computed from the program bytes alone (nothing loaded)."""

from __future__ import annotations

import struct

ACCESS = {"m": 1, "r": 2, "w": 4}
TYPES = {"b": 1, "c": 2}


def allows(program: bytes, kind: str, major: int, minor: int, access: str) -> bool:
    insns = list(struct.iter_unpack("<BBhi", program))
    ctx = struct.pack("<III", (sum(ACCESS[c] for c in access) << 16) | TYPES[kind],
                      major, minor)
    regs = [0] * 11
    pc = 0
    for _ in range(10_000):
        code, raw, off, imm = insns[pc]
        dst, src = raw & 0x0F, raw >> 4
        pc += 1
        if code == 0x61:    # ldxw dst, [src + off]; src must be the context (R1)
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:  # and32 dst, imm
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif code == 0x74:  # rsh32 dst, imm
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xB4:  # mov32 dst, imm
            regs[dst] = imm & 0xFFFFFFFF
        elif code == 0xBC:  # mov32 dst, src
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0x55:  # jne dst, imm, +off
            pc += off if regs[dst] != imm else 0
        elif code == 0x5D:  # jne dst, src, +off
            pc += off if regs[dst] != regs[src] else 0
        elif code == 0x95:  # exit
            return regs[0] == 1
        else:
            raise ValueError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not terminate")
