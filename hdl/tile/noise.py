"""Read noise: the Gaussian variates added before the ADC (``Twin._adc``).

For a vector with key ``key`` (``op_key(seed, domain, nonce)``) the variate of output line ``n`` is
``gauss(lowbias32(key ^ n))``; this unit emits them for ``n = 0 .. count-1`` in order.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.tile.adc import NOISE_SHAPE
from ohmflow.hdl.tile.prng import Lowbias32, gauss

__all__ = ["ReadNoise"]


class ReadNoise(wiring.Component):
    """Per-vector read-noise generator, one variate per cycle.

    Ports
    -----
    i: In stream ``{key, count}``: one request per vector.
    o: Out stream of ``count`` variates (signed 11 bits) per request, line 0 first.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        n = max(cfg.rows, cfg.cols)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"key": 32, "count": range(n + 1)}))),
            "o": Out(stream.Signature(NOISE_SHAPE)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.hash = h = Lowbias32(lanes=1)
        n = max(self.cfg.rows, self.cfg.cols)
        busy = Signal()
        key = Signal(32, reset_less=True)
        idx = Signal(range(n + 1), reset_less=True)
        count = Signal(range(n + 1), reset_less=True)
        last = h.i.ready & (idx + 1 == count)  # the vector's last index enters the hash now
        m.d.comb += [
            self.i.ready.eq(~busy | last),  # the next vector's key follows without a gap
            h.i.valid.eq(busy),
            h.i.payload.word[0].eq(key ^ idx),
            self.o.valid.eq(h.o.valid),
            self.o.payload.eq(gauss(h.o.payload.word[0])),
            h.o.ready.eq(self.o.ready),
        ]
        with m.If(h.i.valid & h.i.ready):
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx + 1 == count):
                m.d.sync += busy.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [key.eq(self.i.payload.key), count.eq(self.i.payload.count), idx.eq(0),
                         busy.eq(self.i.payload.count != 0)]
        return m
