"""The DAC interface: run-time resolution, clipping, and a pulse-width conversion time.

Codes arrive one per beat on ``i`` (a whole drive vector, ``last`` on its final code) and are
clipped to ``±(2**(bits-1) - 1)`` (``Twin._dac``). The vector is then held in a lane-wide buffer
and read back one chunk of ``cfg.lanes`` codes per request on ``req`` -> ``o``; lanes past the
vector's length read as 0.

Latency model: pulse-width modulation, one slot per cycle. After the last code of a vector is
accepted at cycle c, the first request is accepted at cycle ``c + 2**(bits-1)`` at the earliest
(the full-scale pulse of ``2**(bits-1) - 1`` slots plus one settling slot); a request is answered
one cycle after it is accepted.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.fixed import clip

__all__ = ["DAC", "WORD"]

WORD = 32  #: width of an operand word


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class DAC(wiring.Component):
    """A bank of ``max(rows, cols)`` DACs, read back ``cfg.lanes`` at a time.

    Ports
    -----
    i: In stream ``{code: signed(32), last}``: the codes of one vector, in line order.
    req: In stream ``{chunk, tag}``: read codes of lines ``chunk*L .. chunk*L+L-1``.
    o: Out stream ``{codes[L], tag}``.
    bits: run-time resolution (2..cfg.in_bits).
    clipped: high in a cycle whose accepted code was clipped.
    """

    def __init__(self, cfg: ChipConfig, tag_shape=1):
        self.cfg = cfg
        self.chunks = _ceil_div(max(cfg.rows, cfg.cols), cfg.lanes)
        self.code_shape = signed(cfg.in_bits)
        self.codes_layout = data.ArrayLayout(self.code_shape, cfg.lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"code": signed(WORD), "last": 1}))),
            "req": In(stream.Signature(data.StructLayout({
                "chunk": range(max(2, self.chunks)), "tag": tag_shape}))),
            "o": Out(stream.Signature(data.StructLayout({
                "codes": self.codes_layout, "tag": tag_shape}))),
            "bits": In(range(cfg.in_bits + 1)),
            "clipped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.cfg.lanes
        m.submodules.buf = buf = Memory(shape=self.codes_layout, depth=max(2, self.chunks),
                                        init=[])
        wp = buf.write_port(granularity=1)
        rp = buf.read_port()

        # ----- loading and clipping -----
        mx = Signal(signed(cfg.in_bits + 1))
        m.d.comb += mx.eq((Const(1, cfg.in_bits + 1) << (self.bits - 1).as_unsigned()) - 1)
        code = self.i.payload.code
        val = clip(code, -mx, mx)
        wq = Signal(range(max(2, self.chunks)))
        wr = Signal(range(max(2, L)))
        lastq = Signal(range(max(2, self.chunks)))
        lastr = Signal(range(max(2, L)))
        have = Signal()  # a complete vector is buffered
        timer = Signal(range(2 ** (cfg.in_bits - 1) + 1))
        m.d.comb += [
            self.i.ready.eq(timer == 0),
            wp.addr.eq(wq),
            wp.data.eq(Cat(*([val[:cfg.in_bits]] * L))),
            wp.en.eq(_onehot(wr, L) & (self.i.valid & self.i.ready).replicate(L)),
            self.clipped.eq(self.i.valid & self.i.ready & (val != code)),
        ]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += have.eq(0)
            with m.If(self.i.payload.last):
                m.d.sync += [
                    wq.eq(0), wr.eq(0), lastq.eq(wq), lastr.eq(wr), have.eq(1),
                    timer.eq((Const(1, cfg.in_bits) << (self.bits - 1).as_unsigned()) - 1),
                ]
            with m.Elif(wr == L - 1):
                m.d.sync += [wr.eq(0), wq.eq(wq + 1)]
            with m.Else():
                m.d.sync += wr.eq(wr + 1)

        # ----- read-back -----
        adv = Signal()
        mask = Signal(L, reset_less=True)
        tag = Signal(Value.cast(self.req.payload.tag).shape(), reset_less=True)
        chunk = self.req.payload.chunk
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            self.req.ready.eq(adv & have & (timer == 0)),
            rp.addr.eq(chunk),
            rp.en.eq(adv),
        ]
        with m.If(adv):
            m.d.sync += [
                self.o.valid.eq(self.req.valid & self.req.ready),
                tag.eq(self.req.payload.tag),
                mask.eq(Cat(*[(chunk < lastq) | ((chunk == lastq) & (lastr >= l if l else 1))
                              for l in range(L)])),
            ]
        for l in range(L):
            m.d.comb += self.o.payload.codes[l].eq(Mux(mask[l], rp.data[l], 0))
        m.d.comb += Value.cast(self.o.payload.tag).eq(tag)
        return m


def _onehot(index, n: int) -> Value:
    """One-hot decode of ``index`` onto ``n`` bits."""
    return Cat(*[index == k for k in range(n)])
