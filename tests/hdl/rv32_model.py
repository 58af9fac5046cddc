"""A reference model of RV32I + Zmmul for the core's tests: an instruction-set simulator and
instruction encoders, written from the RISC-V unprivileged specification (version 20191213),
independently of ``hdl/rv32/core.py``.

`Machine` executes one instruction per `step` on a byte-addressed memory dict; traps (ECALL,
EBREAK, illegal and DIV instructions) restart at address 0, as the core does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MASK = 0xFFFFFFFF


def sx(value: int, bits: int) -> int:
    """``value``'s low ``bits`` as a signed integer."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# ----- encoders -----
def r_type(op, rd, f3, rs1, rs2, f7):
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def i_type(op, rd, f3, rs1, imm):
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def s_type(op, f3, rs1, rs2, imm):
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op


def b_type(f3, rs1, rs2, imm):
    imm &= 0x1FFF
    return (((imm >> 12) & 1) << 31) | (((imm >> 5) & 63) << 25) | (rs2 << 20) | (rs1 << 15) \
        | (f3 << 12) | (((imm >> 1) & 15) << 8) | (((imm >> 11) & 1) << 7) | 0x63


def u_type(op, rd, imm20):
    return ((imm20 & 0xFFFFF) << 12) | (rd << 7) | op


def j_type(rd, imm):
    imm &= 0x1FFFFF
    return (((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3FF) << 21) | (((imm >> 11) & 1) << 20) \
        | (((imm >> 12) & 0xFF) << 12) | (rd << 7) | 0x6F


OP_NAMES = {  # OP / OP-IMM funct3
    0: "add", 1: "sll", 2: "slt", 3: "sltu", 4: "xor", 5: "srl", 6: "or", 7: "and",
}
MUL_NAMES = {0: "mul", 1: "mulh", 2: "mulhsu", 3: "mulhu"}


def alu(f3: int, a: int, b: int, alt: bool) -> int:
    """OP / OP-IMM result of funct3 ``f3`` (``alt``: SUB / SRA) on 32-bit words."""
    sh = b & 31
    if f3 == 0:
        return (a - b if alt else a + b) & MASK
    if f3 == 1:
        return (a << sh) & MASK
    if f3 == 2:
        return int(sx(a, 32) < sx(b, 32))
    if f3 == 3:
        return int(a < b)
    if f3 == 4:
        return a ^ b
    if f3 == 5:
        return (sx(a, 32) >> sh) & MASK if alt else a >> sh
    if f3 == 6:
        return a | b
    return a & b


def mul(f3: int, a: int, b: int) -> int:
    """Zmmul result of funct3 ``f3`` (0 MUL, 1 MULH, 2 MULHSU, 3 MULHU)."""
    if f3 == 0:
        return (a * b) & MASK
    if f3 == 1:
        return ((sx(a, 32) * sx(b, 32)) >> 32) & MASK
    if f3 == 2:
        return ((sx(a, 32) * b) >> 32) & MASK
    return ((a * b) >> 32) & MASK


@dataclass
class Machine:
    """RV32I + Zmmul state: pc, x0..x31 and a sparse byte memory."""

    mem: dict[int, int] = field(default_factory=dict)
    pc: int = 0
    x: list[int] = field(default_factory=lambda: [0] * 32)
    traps: int = 0
    #: (address, bytes, value) of every store, in order
    stores: list[tuple[int, int, int]] = field(default_factory=list)

    def load_words(self, base: int, words) -> None:
        for k, w in enumerate(words):
            for b in range(4):
                self.mem[base + 4 * k + b] = (w >> (8 * b)) & 255

    def read(self, addr: int, size: int) -> int:
        return sum(self.mem.get(addr + b, 0) << (8 * b) for b in range(size))

    def write(self, addr: int, size: int, value: int) -> None:
        for b in range(size):
            self.mem[addr + b] = (value >> (8 * b)) & 255
        self.stores.append((addr, size, value & ((1 << (8 * size)) - 1)))

    def trap(self) -> None:
        self.traps += 1
        self.pc = 0

    def step(self) -> None:
        ins = self.read(self.pc, 4)
        op, rd, f3 = ins & 0x7F, (ins >> 7) & 31, (ins >> 12) & 7
        rs1, rs2, f7 = (ins >> 15) & 31, (ins >> 20) & 31, ins >> 25
        a, b = self.x[rs1], self.x[rs2]
        imm_i = sx(ins >> 20, 12)
        nxt = (self.pc + 4) & MASK
        res = None
        if op == 0x37:  # LUI
            res = ins & 0xFFFFF000
        elif op == 0x17:  # AUIPC
            res = (self.pc + (ins & 0xFFFFF000)) & MASK
        elif op == 0x6F:  # JAL
            imm = sx(((ins >> 31) << 20) | (((ins >> 12) & 0xFF) << 12)
                     | (((ins >> 20) & 1) << 11) | (((ins >> 21) & 0x3FF) << 1), 21)
            res, nxt = nxt, (self.pc + imm) & MASK
        elif op == 0x67:  # JALR
            res, nxt = nxt, (a + imm_i) & MASK & ~1
        elif op == 0x63:  # BRANCH
            imm = sx(((ins >> 31) << 12) | (((ins >> 7) & 1) << 11)
                     | (((ins >> 25) & 63) << 5) | (((ins >> 8) & 15) << 1), 13)
            sa, sb = sx(a, 32), sx(b, 32)
            taken = {0: a == b, 1: a != b, 4: sa < sb, 5: sa >= sb, 6: a < b, 7: a >= b}.get(f3)
            if taken is None:
                return self.trap()
            if taken:
                nxt = (self.pc + imm) & MASK
        elif op == 0x03:  # LOAD
            addr = (a + imm_i) & MASK
            size = {0: 1, 1: 2, 2: 4, 4: 1, 5: 2}.get(f3)
            if size is None:
                return self.trap()
            v = self.read(addr, size)
            res = v if f3 >= 4 or size == 4 else sx(v, 8 * size) & MASK
        elif op == 0x23:  # STORE
            size = {0: 1, 1: 2, 2: 4}.get(f3)
            if size is None:
                return self.trap()
            imm = sx(((ins >> 25) << 5) | ((ins >> 7) & 31), 12)
            self.write((a + imm) & MASK, size, b)
        elif op == 0x13:  # OP-IMM
            res = alu(f3, a, imm_i & MASK, f3 == 5 and bool(f7 & 0x20))
        elif op == 0x33:  # OP
            if f7 == 1:
                if f3 >= 4:  # DIV, DIVU, REM, REMU: not in Zmmul
                    return self.trap()
                res = mul(f3, a, b)
            else:
                res = alu(f3, a, b, bool(f7 & 0x20))
        elif op == 0x0F:  # FENCE: nothing to order on one hart without caches
            pass
        else:  # SYSTEM and the rest
            return self.trap()
        if res is not None and rd:
            self.x[rd] = res & MASK
        self.pc = nxt
