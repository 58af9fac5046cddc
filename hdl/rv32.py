"""A small multi-cycle RV32I + Zmmul core: the control processor of the ``rv32`` chip engine.

Written for the iCE40UP5K, where the lane-parallel tile does not fit: the register file lives in
block RAM, the multiplier in four 16x16 DSP blocks, and the shifter is the multiplier (a shift
by n is a product with 2^n, or the high word of a product with 2^(32-n)), so the core needs no
barrel shifter. One bus carries instruction fetches and data accesses.

Cycles per instruction: 2 for ALU, LUI, AUIPC, jumps and branches (the next fetch is issued
while the instruction executes), 3 for loads and stores, 4 for multiplications and shifts;
a bus that is not ready adds its wait.

The decoder accepts RV32I and Zmmul (MUL, MULH, MULHSU, MULHU). ECALL, EBREAK, CSR accesses,
DIV/REM, invalid funct3 of loads, stores and branches, and unknown opcodes are traps: ``trap``
pulses and the core restarts at address 0 (the firmware starts afresh). FENCE is a no-op.
Misaligned accesses are not supported: the low address bits select the byte lanes of the word
(the compiler emits none for aligned data).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["BusSignature", "RV32Core"]


class BusSignature(wiring.Signature):
    """The core's memory bus (the core's side).

    ``re`` or ``we`` with ``addr`` (byte address; words are aligned) is a request, taken in a
    cycle with ``ready`` high; a read's word arrives on ``rdata`` in the next cycle. ``wmask``
    selects the bytes of ``wdata`` a write changes.
    """

    def __init__(self):
        super().__init__({
            "addr": Out(32),
            "re": Out(1),
            "we": Out(1),
            "wdata": Out(32),
            "wmask": Out(4),
            "rdata": In(32),
            "ready": In(1),
        })


class _Opcode:
    LOAD, MISC_MEM, OP_IMM, AUIPC = 0b00000, 0b00011, 0b00100, 0b00101
    STORE, OP, LUI, BRANCH = 0b01000, 0b01100, 0b01101, 0b11000
    JALR, JAL = 0b11001, 0b11011


class RV32Core(wiring.Component):
    """RV32I + Zmmul, multi-cycle, register file in block RAM.

    Attributes
    ----------
    bus: Out(BusSignature())
        Instruction fetches and data accesses.
    trap: Out(1)
        One-cycle pulse when a trapping instruction restarts the core at address 0.
    """

    def __init__(self):
        super().__init__({"bus": Out(BusSignature()), "trap": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        o = _Opcode

        m.submodules.regs = regs = Memory(shape=unsigned(32), depth=32, init=[])
        rd1, rd2 = regs.read_port(), regs.read_port()
        wr = regs.write_port()

        pc = Signal(32)
        ir = Signal(32, reset_less=True)
        opc, rd, f3 = ir[2:7], ir[7:12], ir[12:15]
        alt = ir[30]
        a, b = rd1.data, rd2.data

        # ----- decode -----
        imm_i = Cat(ir[20:32], ir[31].replicate(20))
        imm_s = Cat(ir[7:12], ir[25:32], ir[31].replicate(20))
        imm_b = Cat(Const(0, 1), ir[8:12], ir[25:31], ir[7], ir[31].replicate(20))
        imm_u = Cat(Const(0, 12), ir[12:32])
        imm_j = Cat(Const(0, 1), ir[21:31], ir[20], ir[12:20], ir[31].replicate(12))
        is_ = {name: Signal(name=f"is_{name}") for name in (
            "load", "store", "op", "op_imm", "lui", "auipc", "jal", "jalr", "branch", "fence")}
        m.d.comb += [
            is_["load"].eq(opc == o.LOAD), is_["store"].eq(opc == o.STORE),
            is_["op"].eq(opc == o.OP), is_["op_imm"].eq(opc == o.OP_IMM),
            is_["lui"].eq(opc == o.LUI), is_["auipc"].eq(opc == o.AUIPC),
            is_["jal"].eq(opc == o.JAL), is_["jalr"].eq(opc == o.JALR),
            is_["branch"].eq(opc == o.BRANCH), is_["fence"].eq(opc == o.MISC_MEM),
        ]
        muldiv = is_["op"] & (ir[25:32] == 1)
        shift = (is_["op"] | is_["op_imm"]) & ~muldiv & ((f3 == 1) | (f3 == 5))
        legal = Signal()
        m.d.comb += legal.eq((ir[0:2] == 0b11) & (
            (is_["load"] & f3.matches("000", "001", "010", "100", "101"))
            | (is_["store"] & f3.matches("000", "001", "010"))
            | (is_["branch"] & ~f3.matches("01-"))
            | (is_["op"] & ~(muldiv & f3[2])) | is_["op_imm"] | is_["lui"] | is_["auipc"]
            | is_["jal"] | (is_["jalr"] & (f3 == 0)) | is_["fence"]))

        # ----- ALU: one adder for add/sub, compares, addresses and JALR -----
        use_imm = ~(is_["op"] | is_["branch"])
        operand = Mux(use_imm, Mux(is_["store"], imm_s, imm_i), b)
        subtract = is_["branch"] | (is_["op"] & alt & (f3 == 0)) | f3.matches("01-") & (
            is_["op"] | is_["op_imm"])
        total = Signal(33)
        m.d.comb += total.eq(a + Mux(subtract, ~operand, operand) + subtract)
        zero = total[:32] == 0
        lt_u = ~total[32]
        lt_s = Mux(a[31] ^ operand[31], a[31], total[31])
        alu = Signal(32)
        with m.Switch(f3):
            with m.Case(0):
                m.d.comb += alu.eq(total[:32])
            with m.Case(2):
                m.d.comb += alu.eq(lt_s)
            with m.Case(3):
                m.d.comb += alu.eq(lt_u)
            with m.Case(4):
                m.d.comb += alu.eq(a ^ operand)
            with m.Case(6):
                m.d.comb += alu.eq(a | operand)
            with m.Case(7):
                m.d.comb += alu.eq(a & operand)
        taken = Mux(f3[2], Mux(f3[1], lt_u, lt_s), zero) ^ f3[0]

        # pc-relative targets (JAL, branches, AUIPC) on their own adder
        pc_rel = Signal(32)
        m.d.comb += pc_rel.eq(pc + Mux(is_["jal"], imm_j, Mux(is_["branch"], imm_b, imm_u)))
        pc4 = Signal(32)
        m.d.comb += pc4.eq(pc + 4)
        next_pc = Signal(32)
        with m.If(is_["jal"] | (is_["branch"] & taken)):
            m.d.comb += next_pc.eq(pc_rel)
        with m.Elif(is_["jalr"]):
            m.d.comb += next_pc.eq(Cat(Const(0, 1), total[1:32]))
        with m.Else():
            m.d.comb += next_pc.eq(pc4)
        result = Signal(32)
        with m.If(is_["lui"]):
            m.d.comb += result.eq(imm_u)
        with m.Elif(is_["auipc"]):
            m.d.comb += result.eq(pc_rel)
        with m.Elif(is_["jal"] | is_["jalr"]):
            m.d.comb += result.eq(pc4)
        with m.Else():
            m.d.comb += result.eq(alu)

        # ----- multiplier, also the shifter -----
        # four 16x16 unsigned products (DSP blocks), registered in EXECUTE; then the 64-bit
        # sum and the signed corrections in MUL1 and MUL2
        shamt = Mux(is_["op"], b[:5], ir[20:25])
        sll = f3 == 1
        power = Signal(32)
        m.d.comb += power.eq(Const(1, 32) << Mux(sll, shamt, -shamt)[:5])
        mul_b = Mux(shift, power, b)
        a_signed = Mux(shift, alt & ~sll, f3.matches("001", "010"))
        b_signed = ~shift & (f3 == 1)
        take_high = Mux(shift, ~sll & (shamt != 0), f3 != 0)
        ll, lh, hl, hh = (Signal(32, name=n, reset_less=True) for n in ("ll", "lh", "hl", "hh"))
        mid = Signal(33, reset_less=True)
        corr = Signal(33, reset_less=True)
        high = Signal(reset_less=True)
        product = Signal(64)
        m.d.comb += product.eq(Cat(ll, hh) + (mid << 16))
        mul_out = Mux(high, product[32:] - corr[:32], product[:32])

        # ----- load data: the addressed bytes, extended -----
        lsb = Signal(2, reset_less=True)
        lane = Signal(32)
        m.d.comb += lane.eq(bus.rdata >> (lsb * 8))
        load_data = Signal(32)
        with m.Switch(f3):
            with m.Case(0):
                m.d.comb += load_data.eq(lane[:8].as_signed())
            with m.Case(1):
                m.d.comb += load_data.eq(lane[:16].as_signed())
            with m.Case(4):
                m.d.comb += load_data.eq(lane[:8])
            with m.Case(5):
                m.d.comb += load_data.eq(lane[:16])
            with m.Default():
                m.d.comb += load_data.eq(lane)

        m.d.comb += [wr.addr.eq(rd), rd1.addr.eq(bus.rdata[15:20]), rd2.addr.eq(bus.rdata[20:25])]

        def fetch(addr):
            """Issue the fetch at ``addr``: the next cycle decodes it (or waits in FETCH)."""
            m.d.comb += [bus.re.eq(1), bus.addr.eq(addr)]
            m.d.sync += pc.eq(addr)
            with m.If(bus.ready):
                m.next = "DECODE"
            with m.Else():
                m.next = "FETCH"

        def write_rd(value):
            m.d.comb += [wr.data.eq(value), wr.en.eq(rd != 0)]

        with m.FSM(name="core"):
            with m.State("FETCH"):
                fetch(pc)
            with m.State("DECODE"):
                m.d.comb += [rd1.en.eq(1), rd2.en.eq(1)]
                m.d.sync += ir.eq(bus.rdata)
                m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.If(~legal):
                    m.d.comb += self.trap.eq(1)
                    m.d.sync += pc.eq(0)
                    m.next = "FETCH"
                with m.Elif(is_["load"]):
                    m.d.comb += [bus.re.eq(1), bus.addr.eq(total[:32])]
                    m.d.sync += lsb.eq(total[:2])
                    with m.If(bus.ready):
                        m.next = "LOAD"
                with m.Elif(is_["store"]):
                    addr = total[:32]
                    m.d.comb += [bus.we.eq(1), bus.addr.eq(addr)]
                    with m.Switch(f3[:2]):
                        with m.Case(0):
                            m.d.comb += [bus.wdata.eq(b[:8].replicate(4)),
                                         bus.wmask.eq(Const(1, 4) << addr[:2])]
                        with m.Case(1):
                            m.d.comb += [bus.wdata.eq(b[:16].replicate(2)),
                                         bus.wmask.eq(Mux(addr[1], 0b1100, 0b0011))]
                        with m.Default():
                            m.d.comb += [bus.wdata.eq(b), bus.wmask.eq(0b1111)]
                    with m.If(bus.ready):
                        m.d.sync += pc.eq(pc4)
                        m.next = "FETCH"
                with m.Elif(muldiv | shift):
                    m.d.sync += [
                        ll.eq(a[:16] * mul_b[:16]), lh.eq(a[:16] * mul_b[16:]),
                        hl.eq(a[16:] * mul_b[:16]), hh.eq(a[16:] * mul_b[16:]),
                        high.eq(take_high),
                        corr.eq(Mux(a_signed & a[31], mul_b, 0) + Mux(b_signed & b[31], a, 0)),
                    ]
                    m.next = "MUL1"
                with m.Else():
                    with m.If(~is_["branch"] & ~is_["fence"]):
                        write_rd(result)
                    fetch(next_pc)
            with m.State("LOAD"):
                write_rd(load_data)
                fetch(pc4)
            with m.State("MUL1"):
                m.d.sync += mid.eq(lh + hl)
                m.next = "MUL2"
            with m.State("MUL2"):
                write_rd(mul_out)
                fetch(pc4)
        return m
