"""The DAC interface: run-time resolution, clipping, and a pulse-width conversion time.

Codes arrive one per beat on ``i`` (a whole drive vector, ``last`` on its final code) and are
clipped to ``±(2**(bits-1) - 1)`` (``Twin._dac``). The vector is then held in a lane-wide buffer
and read back one chunk of ``cfg.lanes`` codes per request on ``req`` -> ``o``; lanes past the
vector's length read as 0. The request with ``end`` set is the vector's last: it frees its buffer.

Two buffers, so the next vector loads while the current one is read (the array's columns are
sampled and held after integration, so the rows may be driven again during the readout).

Latency model: pulse-width modulation, one slot per cycle, one vector at a time. A vector's
pulse starts in the cycle its last code is accepted, or when the previous vector's pulse ends,
whichever is later; ``2**(bits-1)`` cycles after its start (the full-scale pulse of
``2**(bits-1) - 1`` slots plus one settling slot) the vector's first request may be accepted,
once the previous vector's requests are done. A request is answered one cycle after it is
accepted.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import clip
from ohmflow.hdl.tile.tile_io import WORD

__all__ = ["DAC"]



def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class DAC(wiring.Component):
    """A bank of ``max(rows, cols)`` DACs, read back ``cfg.lanes`` at a time.

    Ports
    -----
    i: In stream ``{code: signed(32), last}``: the codes of one vector, in line order.
    req: In stream ``{chunk, tag, end}``: read codes of lines ``chunk*L .. chunk*L+L-1``;
        ``end``: the vector's last request (its buffer is free for the vector after next).
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
                "chunk": range(max(2, self.chunks)), "tag": tag_shape, "end": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "codes": self.codes_layout, "tag": tag_shape}))),
            "bits": In(range(cfg.in_bits + 1)),
            "clipped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.cfg.lanes
        qbits = max(1, (self.chunks - 1).bit_length())
        m.submodules.buf = buf = Memory(shape=self.codes_layout, depth=2 << qbits, init=[])
        wp = buf.write_port(granularity=1)
        rp = buf.read_port()

        # ----- buffers: wb is loaded, rb read, pb pulsed next; full / pulsed per buffer -----
        wb, rb, pb = Signal(), Signal(), Signal()
        full, pulsed = Signal(2), Signal(2)
        pulsing = Signal()  # a pulse runs (on buffer pb)
        timer = Signal(range(2 ** (cfg.in_bits - 1) + 1))
        pulse_end = pulsing & (timer == 0)

        # ----- loading and clipping -----
        mx = Signal(signed(cfg.in_bits + 1))
        m.d.comb += mx.eq((Const(1, cfg.in_bits + 1) << (self.bits - 1).as_unsigned()) - 1)
        code = self.i.payload.code
        val = clip(code, -mx, mx)
        wq = Signal(range(max(2, self.chunks)))
        wr = Signal(range(max(2, L)))
        lastq = Signal(range(max(2, self.chunks)))
        lastr = Signal(range(max(2, L)))
        take = self.i.valid & self.i.ready
        loaded = take & self.i.payload.last  # buffer wb holds a whole vector from the next cycle
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(wb, 1)),
            wp.addr.eq(Cat(wq[:qbits], wb)),
            wp.data.eq(Cat(*([val[:cfg.in_bits]] * L))),
            wp.en.eq(_onehot(wr, L) & take.replicate(L)),
            self.clipped.eq(take & (val != code)),
        ]
        with m.If(take):
            with m.If(self.i.payload.last):
                m.d.sync += [wq.eq(0), wr.eq(0), lastq.eq(wq), lastr.eq(wr), wb.eq(~wb)]
            with m.Elif(wr == L - 1):
                m.d.sync += [wr.eq(0), wq.eq(wq + 1)]
            with m.Else():
                m.d.sync += wr.eq(wr + 1)

        # ----- pulses: one vector at a time, in load order -----
        nxt = Mux(pulsing, ~pb, pb)  # the buffer whose pulse may start now
        ready_to_pulse = ((full.bit_select(nxt, 1) | (loaded & (wb == nxt)))
                          & ~pulsed.bit_select(nxt, 1))
        start = (~pulsing | pulse_end) & ready_to_pulse
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.If(pulse_end):
            m.d.sync += [pulsed.bit_select(pb, 1).eq(1), pulsing.eq(0), pb.eq(~pb)]
        with m.If(start):
            m.d.sync += [pulsing.eq(1), pb.eq(nxt), timer.eq(mx.as_unsigned())]  # 2**(bits-1) - 1

        # ----- read-back -----
        adv = Signal()
        mask = Signal(L, reset_less=True)
        tag = Signal(Value.cast(self.req.payload.tag).shape(), reset_less=True)
        chunk = self.req.payload.chunk
        readable = full.bit_select(rb, 1) & (pulsed.bit_select(rb, 1) | (pulse_end & (pb == rb)))
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            self.req.ready.eq(adv & readable),
            rp.addr.eq(Cat(chunk[:qbits], rb)),
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

        # ----- buffer flags (set on load / pulse end, cleared by the vector's last request) ---
        free = self.req.valid & self.req.ready & self.req.payload.end
        for k in range(2):
            with m.If(loaded & (wb == k)):
                m.d.sync += full[k].eq(1)
            with m.If(free & (rb == k)):
                m.d.sync += [full[k].eq(0), pulsed[k].eq(0)]
        with m.If(free):
            m.d.sync += rb.eq(~rb)
        return m


def _onehot(index, n: int) -> Value:
    """One-hot decode of ``index`` onto ``n`` bits."""
    return Cat(*[index == k for k in range(n)])
