"""The RV32I + Zmmul core against the reference instruction-set model (`rv32_model`).

Random programs of every instruction (ALU, immediate, shifts by every amount, multiplications,
loads and stores of every width and alignment, forward branches and jumps, LUI, AUIPC, JALR)
run on the core in the Amaranth simulator behind a bus whose data cycles wait at random; the
stores the core makes (including a dump of all registers at the end) must equal the model's,
in order.
"""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.hdl.rv32.core import RV32Core

from tests.hdl import rv32_model as rv
from tests.hdl.hdlbench import run

DATA = 0x1000  #: data region (loads and stores), 256 bytes
DUMP = 0x2000  #: the register dump at the end of a program


def dump_and_stop() -> list[int]:
    """Store x1..x31 at DUMP, then jump to itself (the end of the program)."""
    code = [rv.s_type(0x23, 2, 0, 30, -16),  # sw x30, -16(x0): free x30 for the base
            rv.u_type(0x37, 30, DUMP >> 12)]  # lui x30, DUMP
    code += [rv.s_type(0x23, 2, 30, r, 4 * r) for r in range(1, 32) if r != 30]
    code += [rv.i_type(0x03, 29, 2, 0, -16),  # lw x29, -16(x0): the old x30
             rv.s_type(0x23, 2, 30, 29, 4 * 30),
             rv.j_type(0, 0)]  # jal x0, 0
    return code


def random_program(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` random instructions; branches and jumps only forward, inside the program."""
    code: list[int] = []
    regs = lambda: int(rng.integers(0, 32))  # noqa: E731
    # seed registers with interesting values
    specials = [0, 1, 2, 31, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678, 0xDEADBEEF]
    for r in range(1, 32):
        v = specials[r % len(specials)] if r < 12 else int(rng.integers(0, 2**32))
        code += [rv.u_type(0x37, r, ((v + 0x800) >> 12) & 0xFFFFF),
                 rv.i_type(0x13, r, 0, r, rv.sx(v, 12))]
    base = 28  # x28 holds DATA for loads and stores
    code.append(rv.u_type(0x37, base, 0))
    code.append(rv.i_type(0x13, base, 0, 0, DATA))
    while len(code) < n:
        kind = rng.choice(["op", "imm", "shift", "mul", "load", "store", "branch", "jal",
                           "jalr", "lui", "auipc"], p=[.2, .15, .12, .13, .1, .1, .07, .03,
                                                       .03, .03, .04])
        rd = regs()
        if rd == base:
            rd = 0
        if kind == "op":
            f3 = int(rng.integers(0, 8))
            f7 = 0x20 if f3 in (0, 5) and rng.random() < .5 else 0
            code.append(rv.r_type(0x33, rd, f3, regs(), regs(), f7))
        elif kind == "imm":
            f3 = int(rng.choice([0, 2, 3, 4, 6, 7]))
            code.append(rv.i_type(0x13, rd, f3, regs(), int(rng.integers(-2048, 2048))))
        elif kind == "shift":
            f3 = int(rng.choice([1, 5]))
            sh = int(rng.integers(0, 32))
            f7 = 0x20 if f3 == 5 and rng.random() < .5 else 0
            if rng.random() < .5:
                code.append(rv.i_type(0x13, rd, f3, regs(), (f7 << 5) | sh))
            else:
                code.append(rv.r_type(0x33, rd, f3, regs(), regs(), f7))
        elif kind == "mul":
            code.append(rv.r_type(0x33, rd, int(rng.integers(0, 4)), regs(), regs(), 1))
        elif kind == "load":
            f3 = int(rng.choice([0, 1, 2, 4, 5]))
            size = {0: 1, 1: 2, 2: 4, 4: 1, 5: 2}[f3]
            off = int(rng.integers(0, 256 // size)) * size
            code.append(rv.i_type(0x03, rd, f3, base, off))
        elif kind == "store":
            f3 = int(rng.integers(0, 3))
            off = int(rng.integers(0, 256 >> f3)) << f3
            code.append(rv.s_type(0x23, f3, base, regs(), off))
        elif kind == "branch":
            f3 = int(rng.choice([0, 1, 4, 5, 6, 7]))
            code.append(rv.b_type(f3, regs(), regs(), 4 * int(rng.integers(1, 6))))
        elif kind == "jal":
            code.append(rv.j_type(rd, 4 * int(rng.integers(1, 6))))
        elif kind == "jalr":  # jump forward by AUIPC + JALR through a scratch register
            code += [rv.u_type(0x17, 27, 0),
                     rv.i_type(0x67, rd, 0, 27, 4 * int(rng.integers(2, 6)) + 1)]
        elif kind == "lui":
            code.append(rv.u_type(0x37, rd, int(rng.integers(0, 2**20))))
        else:
            code.append(rv.u_type(0x17, rd, int(rng.integers(0, 2**20))))
    code += [0x13] * 6  # nops: forward jumps near the end land here
    # a branch or jump that would land on the JALR of a pair (whose AUIPC it skipped) lands on
    # the instruction after it instead
    jalrs = {k for k, w in enumerate(code) if w & 0x7F == 0x67}
    for k, w in enumerate(code[:-6]):
        if w & 0x7F == 0x63:
            off = rv.sx(((w >> 31) << 12) | (((w >> 7) & 1) << 11) | (((w >> 25) & 63) << 5)
                        | (((w >> 8) & 15) << 1), 13)
            if k + off // 4 in jalrs:
                code[k] = rv.b_type((w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31, off + 4)
        elif w & 0x7F == 0x6F:
            off = rv.sx(((w >> 31) << 20) | (((w >> 12) & 0xFF) << 12)
                        | (((w >> 20) & 1) << 11) | (((w >> 21) & 0x3FF) << 1), 21)
            if k + off // 4 in jalrs:
                code[k] = rv.j_type((w >> 7) & 31, off + 4)
    return code + dump_and_stop()


def simulate(program: list[int], data: bytes, rng: np.random.Generator | None,
             p_wait: float = 0.0, max_cycles: int = 200_000):
    """Run ``program`` on the core until it fetches its final self-jump; return the stores,
    the trap count and the cycles. Data accesses wait at random (``p_wait`` per data cycle)."""
    dut = RV32Core()
    mem = {}
    for k, w in enumerate(program):
        for b in range(4):
            mem[4 * k + b] = (w >> (8 * b)) & 255
    for k, v in enumerate(data):
        mem[DATA + k] = v
    stop = 4 * (len(program) - 1)
    out = {"stores": [], "traps": 0, "cycles": 0}

    async def bus(ctx):
        cycles, pending = 0, None  # pending: the access whose data cycle this is
        while True:
            waiting = pending is not None and pending["wait"] > 0
            ctx.set(dut.bus.wait, waiting)
            if pending is not None and not waiting:
                word = pending["addr"] & ~3
                if pending["re"]:
                    ctx.set(dut.bus.rdata, sum(mem.get(word + b, 0) << (8 * b)
                                               for b in range(4)))
                else:
                    wmask, wdata = pending["wmask"], pending["wdata"]
                    size = bin(wmask).count("1")
                    lo = (wmask & -wmask).bit_length() - 1
                    for b in range(4):
                        if wmask >> b & 1:
                            mem[word + b] = (wdata >> (8 * b)) & 255
                    value = (wdata >> (8 * lo)) & ((1 << (8 * size)) - 1)
                    out["stores"].append((word + lo, size, value))
            _, _, re, we, addr, wdata, wmask, trap, fetch, daddr = await ctx.tick().sample(
                dut.bus.re, dut.bus.we, dut.bus.addr, dut.bus.wdata, dut.bus.wmask, dut.trap,
                dut.bus.fetch, dut.bus.daddr)
            cycles += 1
            if re or we:  # fetches are reads; loads and stores show their address on daddr
                assert (fetch and re and not we) or (not fetch and daddr == addr)
            out["traps"] += trap
            if waiting:
                assert not (re or we), "the core issued an access while the bus waited"
                pending["wait"] -= 1
                continue
            pending = None
            if re and addr == stop:
                out["cycles"] = cycles
                return
            if re or we:
                data_access = addr >= DATA
                wait = 0
                while data_access and rng is not None and rng.random() < p_wait:
                    wait += 1
                pending = {"re": re, "addr": addr, "wdata": wdata, "wmask": wmask, "wait": wait}

    run(dut, bus, max_cycles=max_cycles)
    return out


def reference(program: list[int], data: bytes):
    machine = rv.Machine()
    machine.load_words(0, program)
    for k, v in enumerate(data):
        machine.mem[DATA + k] = v
    stop = 4 * (len(program) - 1)
    for _ in range(100_000):
        if machine.pc == stop:
            return machine
        machine.step()
    raise AssertionError("the reference model did not reach the end of the program")


@pytest.mark.parametrize("seed", range(6))
def test_random_programs_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    program = random_program(rng, 240)
    data = bytes(rng.integers(0, 256, 256, dtype=np.uint8))
    want = reference(program, data)
    got = simulate(program, data, rng, p_wait=0.4 if seed % 2 else 0.0)
    assert got["traps"] == want.traps == 0
    assert len(got["stores"]) == len(want.stores)
    for k, (g, w) in enumerate(zip(got["stores"], want.stores, strict=True)):
        assert g == w, f"store {k}: core {g}, model {w}"


def _one(ins: list[int], setup: dict[int, int]) -> list[int]:
    """Registers x1..x31 after ``setup`` and ``ins`` on the core, checked against the model."""
    code = []
    for r, v in setup.items():
        code += [rv.u_type(0x37, r, ((v + 0x800) >> 12) & 0xFFFFF),
                 rv.i_type(0x13, r, 0, r, rv.sx(v, 12))]
    program = code + ins + dump_and_stop()
    want = reference(program, b"")
    got = simulate(program, b"", None)
    assert got["stores"] == want.stores
    return {a - DUMP >> 2: v for (a, _, v) in got["stores"] if a >= DUMP}


EDGE = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x8000, 0xFFFF, 0x10000, 0xFFFF8000]


def test_multiplications_and_shifts_at_the_edges():
    """Every Zmmul operation and every shift amount on the operands at the 16- and 32-bit
    boundaries (where the partial products and the signed corrections meet)."""
    ins = []
    for f3 in range(4):
        for k in range(4):
            ins.append(rv.r_type(0x33, 10 + 4 * f3 + k, f3, 1 + k, 5 + (k + f3) % 4, 1))
    regs = _one(ins, {1: EDGE[2], 2: EDGE[3], 3: EDGE[4], 4: EDGE[7],
                      5: EDGE[3], 6: EDGE[4], 7: EDGE[8], 8: EDGE[5]})
    for f3 in range(4):
        for k in range(4):
            a, b = [EDGE[2], EDGE[3], EDGE[4], EDGE[7]][k], \
                [EDGE[3], EDGE[4], EDGE[8], EDGE[5]][(k + f3) % 4]
            assert regs[10 + 4 * f3 + k] == rv.mul(f3, a, b), (f3, hex(a), hex(b))
    for sh in range(32):
        ins = [rv.i_type(0x13, 10, 1, 1, sh), rv.i_type(0x13, 11, 5, 1, sh),
               rv.i_type(0x13, 12, 5, 1, 0x400 | sh), rv.r_type(0x33, 13, 5, 2, 3, 0x20)]
        regs = _one(ins, {1: 0x80000001, 2: 0xC0FFEE01, 3: sh})
        assert [regs[r] for r in (10, 11, 12, 13)] == [
            (0x80000001 << sh) & rv.MASK, 0x80000001 >> sh,
            (rv.sx(0x80000001, 32) >> sh) & rv.MASK, (rv.sx(0xC0FFEE01, 32) >> sh) & rv.MASK]


def test_traps_restart_at_zero():
    """ECALL and DIV trap; the core restarts at 0 with its registers kept, as the model does:
    three passes, counted in x5."""
    program = [rv.i_type(0x13, 5, 0, 5, 1),  # x5 += 1
               rv.i_type(0x13, 6, 0, 0, 2),
               rv.b_type(5, 5, 6, 8),  # x5 >= 2: skip the ECALL
               0x00000073,  # ecall
               rv.i_type(0x13, 6, 0, 0, 3),
               rv.b_type(5, 5, 6, 8),  # x5 >= 3: skip the DIV
               rv.r_type(0x33, 7, 4, 5, 5, 1)]  # div x7, x5, x5
    program += dump_and_stop()
    want = reference(program, b"")
    got = simulate(program, b"", None)
    assert want.traps == 2 and got["traps"] == 2
    assert got["stores"] == want.stores
    assert want.x[5] == 3
