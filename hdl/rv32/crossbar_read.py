"""The crossbar read of the ``rv32`` engine: one exact column (or row) sum from the states in
SPRAM, one multiply-accumulate a cycle.

The firmware loads a vector's DAC codes into the unit's code buffer (a block RAM), then asks
for one sum at a time: the address of the line's first state and the distance between its
states (two bytes along a row of W for the forward read, two bytes times ``rows`` down a column
for the transposed read). The unit reads the states from SPRAM through the bus it borrows
while the core waits, multiplies each by its code in a DSP block and accumulates exactly
(``acc_bits`` of the config must be at most 32): the MVM of docs/numerics.md §4.2 and §4.3.
The firmware adds read noise and converts (the ADC) in software.

Pipeline: cycle 0 reads a state (SPRAM) and its code (block RAM); cycle 1 selects the state's
halfword and registers both; cycle 2 registers their product; cycle 3 adds it to the sum. A sum
of n products keeps ``busy`` high for n + 3 cycles after the cycle that starts it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["CrossbarRead", "fits"]


def fits(cfg) -> bool:
    """Whether ``cfg``'s reads fit the unit: 32-bit sums, 16-bit states, at most 256 codes."""
    return cfg.acc_bits <= 32 and cfg.w_bits <= 16 and max(cfg.rows, cfg.cols) <= 256


class CrossbarRead(wiring.Component):
    """One line sum at a time.

    Attributes
    ----------
    code, code_we: In
        Write ``code`` (signed 16) at the code buffer's next index (``line`` resets it to 0).
    line, line_we: In
        Write the number of products of the next sums.
    stride, stride_we: In
        Bytes from one state of the line to the next (even).
    start, start_we: In
        The first state's byte address (in SPRAM); writing it starts a sum.
    busy: Out(1)
        A sum is running: the unit drives ``mem_*`` and the core must wait.
    total: Out(signed(32))
        The last sum (valid once ``busy`` is low).
    mem_addr, mem_en: Out; mem_rdata: In(32)
        The SPRAM read port (byte address; the word of the previous cycle's read).
    """

    def __init__(self, depth: int = 256):
        self.depth = depth
        super().__init__({
            "code": In(signed(16)), "code_we": In(1),
            "line": In(16), "line_we": In(1),
            "stride": In(32), "stride_we": In(1),
            "start": In(32), "start_we": In(1),
            "busy": Out(1), "total": Out(signed(32)),
            "mem_addr": Out(32), "mem_en": Out(1), "mem_rdata": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.codes = codes = Memory(shape=signed(16), depth=self.depth, init=[])
        c_wr, c_rd = codes.write_port(), codes.read_port()
        fill = Signal(range(self.depth), reset_less=True)  # next code's index
        n = Signal(16, reset_less=True)
        stride = Signal(32, reset_less=True)
        addr = Signal(32, reset_less=True)  # the next state's byte address
        k = Signal(16, reset_less=True)  # products issued
        issuing = Signal()
        half = Signal(reset_less=True)  # the state read last cycle is the word's upper half
        v1, v2, v3 = Signal(), Signal(), Signal()  # a product in stage 1, 2, 3
        state = Signal(signed(16), reset_less=True)
        code = Signal(signed(16), reset_less=True)
        product = Signal(signed(32), reset_less=True)
        total = Signal(signed(32), reset_less=True)

        m.d.comb += [c_wr.addr.eq(fill), c_wr.data.eq(self.code), c_wr.en.eq(self.code_we),
                     self.total.eq(total)]
        with m.If(self.code_we):
            m.d.sync += fill.eq(fill + 1)
        with m.If(self.line_we):
            m.d.sync += [n.eq(self.line), fill.eq(0)]
        with m.If(self.stride_we):
            m.d.sync += stride.eq(self.stride)

        # stage 0: read the state and its code
        m.d.comb += [self.mem_addr.eq(addr), self.mem_en.eq(issuing), c_rd.addr.eq(k),
                     c_rd.en.eq(issuing)]
        with m.If(self.start_we):
            m.d.sync += [addr.eq(self.start), k.eq(0), total.eq(0), issuing.eq(n != 0)]
        with m.Elif(issuing):
            m.d.sync += [addr.eq(addr + stride), k.eq(k + 1), half.eq(addr[1])]
            with m.If(k == n - 1):
                m.d.sync += issuing.eq(0)
        # stage 1: the state's halfword and the code, registered
        m.d.sync += [v1.eq(issuing), v2.eq(v1), v3.eq(v2)]
        with m.If(v1):
            m.d.sync += [state.eq(self.mem_rdata.word_select(half, 16).as_signed()),
                         code.eq(c_rd.data)]
        # stage 2: the product (a DSP block); stage 3: the sum
        with m.If(v2):
            m.d.sync += product.eq(state * code)
        with m.If(v3):
            m.d.sync += total.eq(total + product)
        m.d.comb += self.busy.eq(issuing | v1 | v2 | v3)
        return m
