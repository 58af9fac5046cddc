"""The pulse engine's back end: hashed draw words to the array's pulse beats.

Per lane: ``g = gauss(word)``, ``e = rnd(g*dw_std, C2C_SHIFT)``, then
``t = rnd(e*SQRT[n], SQRT_FRAC)`` with ``SQRT[n] = isqrt(n << 2*SQRT_FRAC)``; two stages that
stall together when the array holds the pulse stream.
"""

from __future__ import annotations

import math

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import C2C_SHIFT, DW_STD_BITS, SQRT_FRAC, ChipConfig
from ohmflow.hdl.lib.fixed import rnd_shift, sum_tree
from ohmflow.hdl.tile.prng import gauss
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts

__all__ = ["DrawShaper"]


class DrawShaper(wiring.Component):
    """Cycle-to-cycle draws and coincidence counts to pulse beats.

    Ports
    -----
    draws: In stream of hashed draw words with their scan beat (counts, polarities, address).
    pulse: Out stream of pulse beats for `AnalogArray.pulse`.
    count: the sum of ``n`` over the lanes of the current ``pulse`` beat.
    tile: the sample's tile; dw_std: run-time setting; both stable while a beat is in flight.
    busy: a beat is in one of the two stages.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.lay = lay = PulseLayouts(cfg)
        g = lay.geom
        super().__init__({
            "draws": In(stream.Signature(lay.draw_hash)),
            "pulse": Out(stream.Signature(g.pulse_layout)),
            "count": Out(range(cfg.lanes * cfg.bl_max + 1)),
            "tile": In(g.index_shape(g.tile_bits)),
            "dw_std": In(DW_STD_BITS),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, g = self.cfg, self.lay.geom
        L, B = cfg.lanes, cfg.bl_max
        adv = Signal()
        m.d.comb += [adv.eq(~self.pulse.valid | self.pulse.ready), self.draws.ready.eq(adv)]
        sqrt = Array([Const(math.isqrt(n << (2 * SQRT_FRAC)), g.sqrt_max.bit_length())
                      for n in range(B + 1)])
        inp = self.draws.payload
        # stage 1: e and the root of n
        e_valid = Signal()
        e_beat = Signal(self.lay.draw_tag, reset_less=True)
        es = [Signal(g.e_shape, reset_less=True, name=f"e{lane}") for lane in range(L)]
        roots = [Signal(g.sqrt_max.bit_length(), reset_less=True, name=f"root{lane}")
                 for lane in range(L)]
        with m.If(adv):
            m.d.sync += [e_valid.eq(self.draws.valid), self.pulse.valid.eq(e_valid)]
        # data registers load only behind a valid beat (idle lanes cost a simulator nothing)
        with m.If(adv & self.draws.valid):
            m.d.sync += e_beat.eq(inp.tag)
            for lane in range(L):
                m.d.sync += [es[lane].eq(rnd_shift(gauss(inp.word[lane]) * self.dw_std,
                                                   C2C_SHIFT)),
                             roots[lane].eq(sqrt[inp.tag.n[lane]])]
        # stage 2: t, and the beat's count registered with it
        out = self.pulse.payload
        count = Signal.like(self.count, reset_less=True)
        with m.If(adv & e_valid):
            m.d.sync += [out.tile.eq(self.tile), out.jq.eq(e_beat.jq), out.jr.eq(e_beat.jr),
                         out.chunk.eq(e_beat.chunk), out.up.eq(e_beat.up),
                         count.eq(sum_tree([e_beat.n[lane] for lane in range(L)]))]
            for lane in range(L):
                m.d.sync += [out.n[lane].eq(e_beat.n[lane]),
                             out.t[lane].eq(rnd_shift(es[lane] * roots[lane], SQRT_FRAC))]
        m.d.comb += [self.count.eq(count), self.busy.eq(e_valid | self.pulse.valid)]
        return m
