"""A small multi-cycle RV32I + Zmmul core: the control processor of the ``rv32`` chip engine.

Written for the iCE40UP5K, where the lane-parallel tile does not fit: the register file lives
in block RAM (`RegisterFile`), the multiplier in four 16x16 DSP blocks, and the shifter is the
multiplier (a shift by n is a product with 2^n, or the high word of a product with 2^(32-n)),
so the core needs no barrel shifter. One bus carries instruction fetches and data accesses.

Cycles per instruction: 2 for ALU, LUI, AUIPC and jumps (the next fetch is issued while the
instruction executes); 3 for branches and SLT(I)(U) (the compare is registered first); 4 for
stores (the address is registered before the access), multiplications and shifts; 5 for loads
(the word read is registered before it is extended); a bus that waits adds its wait. The
fetched word is decoded into registers (the immediate, the opcode's flags), so the execute
cycle starts from registers: at 24 MHz on the UP5K the slowest paths are the 32-bit adds.

The decoder accepts RV32I and Zmmul (MUL, MULH, MULHSU, MULHU). ECALL, EBREAK, CSR accesses,
DIV/REM, invalid funct3 of loads, stores and branches, and unknown opcodes are traps: ``trap``
pulses and the core restarts at address 0 (the firmware starts afresh). FENCE is a no-op.
Misaligned accesses are not supported: the low address bits select the byte lanes of the word
(the compiler emits none for aligned data).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.hdl.rv32.regfile import RegisterFile

__all__ = ["BusSignature", "RV32Core"]


class BusSignature(wiring.Signature):
    """The core's memory bus (the core's side).

    An access is ``re`` or ``we`` with ``addr`` (byte address; words are aligned), ``wdata`` and
    ``wmask`` (the bytes a write changes), in its address cycle; ``fetch`` marks the reads of
    instructions (the firmware runs from block RAM only, so they need no other decoding).
    ``daddr`` is ``addr`` of loads and stores, from a register (decoders of data regions use
    it, so the fetch address's adders do not reach them). The
    next cycle is its data cycle: a read's word is on ``rdata``; ``wait`` high means the access
    is not complete yet, and the data cycle repeats (the core issues nothing new) until
    ``wait`` is low. ``wait`` is only ever high in data cycles, and comes from registers: no
    path runs from ``addr`` to it.
    """

    def __init__(self):
        super().__init__({
            "addr": Out(32),
            "daddr": Out(32),
            "fetch": Out(1),
            "re": Out(1),
            "we": Out(1),
            "wdata": Out(32),
            "wmask": Out(4),
            "rdata": In(32),
            "wait": In(1),
        })


class Opcode(enum.Enum, shape=5):
    """The major opcodes the core executes (instruction bits 6..2)."""

    LOAD = 0b00000
    MISC_MEM = 0b00011
    OP_IMM = 0b00100
    AUIPC = 0b00101
    STORE = 0b01000
    OP = 0b01100
    LUI = 0b01101
    BRANCH = 0b11000
    JALR = 0b11001
    JAL = 0b11011


def _decode(word, opc, wf3):
    """The decoder's flags (``is_*``) and the immediate of the instruction ``word``, whose opcode
    is ``opc`` and funct3 ``wf3``: the values DECODE registers."""
    dec = {
        "load": opc == Opcode.LOAD, "store": opc == Opcode.STORE, "op": opc == Opcode.OP,
        "op_imm": opc == Opcode.OP_IMM, "lui": opc == Opcode.LUI, "auipc": opc == Opcode.AUIPC,
        "jal": opc == Opcode.JAL, "jalr": opc == Opcode.JALR, "branch": opc == Opcode.BRANCH,
        "fence": opc == Opcode.MISC_MEM,
    }
    dec["muldiv"] = dec["op"] & (word[25:32] == 1)
    dec["shift"] = (dec["op"] | dec["op_imm"]) & ~dec["muldiv"] & ((wf3 == 1) | (wf3 == 5))
    dec["use_imm"] = ~(dec["op"] | dec["branch"])
    dec["subtract"] = dec["branch"] | (dec["op"] & word[30] & (wf3 == 0)) | (
        wf3.matches("01-") & (dec["op"] | dec["op_imm"]))
    dec["legal"] = (word[0:2] == 0b11) & (
        (dec["load"] & wf3.matches("000", "001", "010", "100", "101"))
        | (dec["store"] & wf3.matches("000", "001", "010"))
        | (dec["branch"] & ~wf3.matches("01-"))
        | (dec["op"] & ~(dec["muldiv"] & wf3[2])) | dec["op_imm"] | dec["lui"]
        | dec["auipc"] | dec["jal"] | (dec["jalr"] & (wf3 == 0)) | dec["fence"])
    imm_i = Cat(word[20:32], word[31].replicate(20))
    imm_s = Cat(word[7:12], word[25:32], word[31].replicate(20))
    imm_b = Cat(Const(0, 1), word[8:12], word[25:31], word[7], word[31].replicate(20))
    imm_u = Cat(Const(0, 12), word[12:32])
    imm_j = Cat(Const(0, 1), word[21:31], word[20], word[12:20], word[31].replicate(12))
    imm_of = Mux(dec["store"], imm_s, Mux(dec["branch"], imm_b, Mux(
        dec["lui"] | dec["auipc"], imm_u, Mux(dec["jal"], imm_j, imm_i))))
    return dec, imm_of


def _load_extend(m: Module, lane, f3) -> Signal:
    """A load's result: the addressed byte, halfword or word of ``lane``, sign- or
    zero-extended by funct3 ``f3``."""
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
    return load_data


def _alu(m: Module, a, b, imm, f3, is_):
    """The ALU: one adder for add/sub, compares, addresses and JALR (``total``, 33 bits), the
    unsigned and signed less-than, the result of funct3 ``f3`` (``alu``) and a branch's
    outcome (``taken``)."""
    operand = Mux(is_["use_imm"], imm, b)
    sub = is_["subtract"]
    total = Signal(33)
    m.d.comb += total.eq(a + Mux(sub, ~operand, operand) + sub)
    zero = total[:32] == 0
    lt_u = ~total[32]
    lt_s = Mux(a[31] ^ operand[31], a[31], total[31])
    alu = Signal(32)
    with m.Switch(f3):
        with m.Case(0):
            m.d.comb += alu.eq(total[:32])
        with m.Case(4):
            m.d.comb += alu.eq(a ^ operand)
        with m.Case(6):
            m.d.comb += alu.eq(a | operand)
        with m.Case(7):
            m.d.comb += alu.eq(a & operand)
    taken = Mux(f3[2], Mux(f3[1], lt_u, lt_s), zero) ^ f3[0]
    return total, lt_u, lt_s, alu, taken


def _store_lanes(m: Module, bus, b, f3, maddr) -> None:
    """A store's data and byte mask on ``bus``: byte, halfword or word of ``b`` by funct3
    ``f3``, at the byte lanes of address ``maddr``."""
    with m.Switch(f3[:2]):
        with m.Case(0):
            m.d.comb += [bus.wdata.eq(b[:8].replicate(4)),
                         bus.wmask.eq(Const(1, 4) << maddr[:2])]
        with m.Case(1):
            m.d.comb += [bus.wdata.eq(b[:16].replicate(2)),
                         bus.wmask.eq(Mux(maddr[1], 0b1100, 0b0011))]
        with m.Default():
            m.d.comb += [bus.wdata.eq(b), bus.wmask.eq(0b1111)]


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

        m.submodules.regs = regs = RegisterFile()

        pc = Signal(32)
        ir = Signal(32, reset_less=True)
        rd, f3, alt = ir[7:12], ir[12:15], ir[30]
        a, b = regs.r1_data, regs.r2_data

        # ----- decode, registered in DECODE from the fetched word -----
        word = bus.rdata
        opc, wf3 = Opcode(word[2:7]), word[12:15]
        names = ("load", "store", "op", "op_imm", "lui", "auipc", "jal", "jalr", "branch",
                 "fence", "muldiv", "shift", "use_imm", "subtract", "legal")
        is_ = {n: Signal(name=f"is_{n}", reset_less=True) for n in names}
        imm = Signal(32, reset_less=True)
        dec, imm_of = _decode(word, opc, wf3)

        # ----- ALU: one adder for add/sub, compares, addresses and JALR -----
        total, lt_u, lt_s, alu, taken = _alu(m, a, b, imm, f3, is_)
        compared = Signal(reset_less=True)  # a branch's or SLT's compare, registered

        # pc-relative targets (JAL, branches, AUIPC) on their own adder
        pc_rel = Signal(32)
        m.d.comb += pc_rel.eq(pc + imm)
        pc4 = Signal(32)
        m.d.comb += pc4.eq(pc + 4)
        next_pc = Signal(32)
        with m.If(is_["jal"]):
            m.d.comb += next_pc.eq(pc_rel)
        with m.Elif(is_["jalr"]):
            m.d.comb += next_pc.eq(Cat(Const(0, 1), total[1:32]))
        with m.Else():
            m.d.comb += next_pc.eq(pc4)
        result = Signal(32)
        with m.If(is_["lui"]):
            m.d.comb += result.eq(imm)
        with m.Elif(is_["auipc"]):
            m.d.comb += result.eq(pc_rel)
        with m.Elif(is_["jal"] | is_["jalr"]):
            m.d.comb += result.eq(pc4)
        with m.Else():
            m.d.comb += result.eq(alu)

        # ----- multiplier, also the shifter -----
        # four 16x16 unsigned products (DSP blocks), registered in EXECUTE; then the 64-bit
        # sum and the signed corrections in MUL1 and MUL2
        shamt = Mux(is_["op"], b[:5], imm[:5])
        sll = f3 == 1
        power = Signal(32)
        m.d.comb += power.eq(Const(1, 32) << Mux(sll, shamt, -shamt)[:5])
        mul_b = Mux(is_["shift"], power, b)
        a_signed = Mux(is_["shift"], alt & ~sll, f3.matches("001", "010"))
        b_signed = ~is_["shift"] & (f3 == 1)
        take_high = Mux(is_["shift"], ~sll & (shamt != 0), f3 != 0)
        ll, lh, hl, hh = (Signal(32, name=n, reset_less=True) for n in ("ll", "lh", "hl", "hh"))
        mid = Signal(33, reset_less=True)
        corr = Signal(33, reset_less=True)
        high = Signal(reset_less=True)
        product = Signal(64)
        m.d.comb += product.eq(Cat(ll, hh) + (mid << 16))
        mul_out = Mux(high, product[32:] - corr[:32], product[:32])

        # ----- loads and stores: the address registered in EXECUTE, the access in MEM -----
        maddr = Signal(32, reset_less=True)
        lsb = maddr[:2]
        loaded = Signal(32, reset_less=True)  # the word read, registered before its extension
        lane = Signal(32)
        m.d.comb += [lane.eq(loaded >> (lsb * 8)), bus.daddr.eq(maddr)]
        load_data = _load_extend(m, lane, f3)

        m.d.comb += [regs.w_addr.eq(rd), regs.r1_addr.eq(word[15:20]),
                     regs.r2_addr.eq(word[20:25])]

        def fetch(addr, when=None):
            """Issue the fetch at ``addr`` (if ``when``): the next cycle decodes it. The address
            is driven regardless, so ``when`` (the bus's wait) does not reach the decoders."""
            m.d.comb += [bus.fetch.eq(1), bus.addr.eq(addr)]
            go = 1 if when is None else when
            m.d.comb += bus.re.eq(go)
            with m.If(go):
                m.d.sync += pc.eq(addr)
                m.next = "DECODE"

        def write_rd(value):
            m.d.comb += [regs.w_data.eq(value), regs.w_en.eq(rd != 0)]

        with m.FSM(name="core"):
            with m.State("FETCH"):  # after a store or a trap: the store may still be waiting
                fetch(pc, ~bus.wait)
            with m.State("DECODE"):
                with m.If(~bus.wait):
                    m.d.comb += [regs.r1_en.eq(1), regs.r2_en.eq(1)]
                    m.d.sync += [ir.eq(word), imm.eq(imm_of)]
                    m.d.sync += [is_[n].eq(dec[n]) for n in names]
                    m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.If(~is_["legal"]):
                    m.d.comb += self.trap.eq(1)
                    m.d.sync += pc.eq(0)
                    m.next = "FETCH"
                with m.Elif(is_["load"] | is_["store"]):
                    m.d.sync += maddr.eq(total[:32])
                    m.next = "MEM"
                with m.Elif(is_["muldiv"] | is_["shift"]):
                    m.d.sync += [
                        ll.eq(a[:16] * mul_b[:16]), lh.eq(a[:16] * mul_b[16:]),
                        hl.eq(a[16:] * mul_b[:16]), hh.eq(a[16:] * mul_b[16:]),
                        high.eq(take_high),
                        corr.eq(Mux(a_signed & a[31], mul_b, 0) + Mux(b_signed & b[31], a, 0)),
                    ]
                    m.next = "MUL1"
                with m.Elif(is_["branch"]):  # the next fetch waits a cycle for the compare
                    m.d.sync += compared.eq(taken)
                    m.next = "BRANCH"
                with m.Elif((is_["op"] | is_["op_imm"]) & f3.matches("01-")):  # SLT(I)(U)
                    m.d.sync += compared.eq(Mux(f3[0], lt_u, lt_s))
                    m.next = "SET"
                with m.Else():
                    with m.If(~is_["fence"]):
                        write_rd(result)
                    fetch(next_pc)
            with m.State("MEM"):
                m.d.comb += bus.addr.eq(maddr)
                with m.If(is_["load"]):
                    m.d.comb += bus.re.eq(1)
                    m.next = "LOAD"
                with m.Else():
                    m.d.comb += bus.we.eq(1)
                    _store_lanes(m, bus, b, f3, maddr)
                    m.d.sync += pc.eq(pc4)
                    m.next = "FETCH"
            with m.State("BRANCH"):
                fetch(Mux(compared, pc_rel, pc4))
            with m.State("SET"):
                write_rd(compared)
                fetch(pc4)
            with m.State("LOAD"):
                with m.If(~bus.wait):
                    m.d.sync += loaded.eq(bus.rdata)
                    m.next = "WRITE"
            with m.State("WRITE"):
                write_rd(load_data)
                fetch(pc4)
            with m.State("MUL1"):
                m.d.sync += mid.eq(lh + hl)
                m.next = "MUL2"
            with m.State("MUL2"):
                write_rd(mul_out)
                fetch(pc4)
        return m
