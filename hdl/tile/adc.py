"""The ADC interface: gain, input-referred read noise, quantization and saturation.

Arithmetic (``Twin._adc``): ``v = ((acc * gain) >> (shift - 16)) + g * sigma + 2**15``, then
``q = v >> 16``, ``code = clip(q, -m, m)`` with ``m = 2**(bits-1) - 1``;
saturated iff ``q != code``.

Latency model: a pipelined SAR converter. A sample accepted at cycle 0 leaves at cycle
``bits + 2``: one cycle of gain (sample and hold), one of noise injection and scaling, then one
cycle per output bit. One conversion per cycle (the time-interleaved SARs of a column bank).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import NOISE_FRAC, SHIFT_BITS, ChipConfig
from ohmflow.hdl.lib.fixed import clip
from ohmflow.hdl.lib.skid import Skid
from ohmflow.hdl.tile.physics_math import GAIN_T_BITS, SIGMA_T_BITS

__all__ = ["ADC", "NOISE_SHAPE"]

NOISE_SHAPE = signed(11)  #: an Irwin-Hall variate in [-510, 510]


class ADC(wiring.Component):
    """Converts column sums to codes of run-time resolution ``bits`` (2..cfg.out_bits).

    Ports
    -----
    i: In stream of accumulator values (signed ``cfg.acc_bits``).
    noise: In stream of Gaussian variates g, one consumed per conversion (joined with ``i``).
    o: Out stream of ``{code, sat}``.
    gain, shift, sigma, bits: run-time settings (gain and sigma with their factors of
        temperature, docs/numerics.md §11.4), registered (a change applies from the next
        cycle); hold them stable while conversions are in flight.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.out_layout = data.StructLayout({"code": signed(cfg.out_bits), "sat": 1})
        super().__init__({
            "i": In(stream.Signature(signed(cfg.acc_bits))),
            "noise": In(stream.Signature(NOISE_SHAPE)),
            "o": Out(stream.Signature(self.out_layout)),
            "gain": In(GAIN_T_BITS),
            "shift": In(SHIFT_BITS),
            "sigma": In(SIGMA_T_BITS),
            "bits": In(range(cfg.out_bits + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        depth = cfg.out_bits + 1  # delay line positions; the last is the output register
        # the column sums enter through a register slice: ``i.ready`` does not depend on
        # ``o.ready``; the slice's cycle comes out of the delay line below, so the latency stays
        m.submodules.slice = sl = Skid(self.i.payload.shape())
        wiring.connect(m, wiring.flipped(self.i), sl.i)
        adv = Signal()
        take = Signal()
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            take.eq(sl.o.valid & self.noise.valid & adv),
            sl.o.ready.eq(self.noise.valid & adv),
            self.noise.ready.eq(sl.o.valid & adv),
        ]
        # stage 1: gain and noise products
        v1 = Signal()
        prod = Signal(signed(cfg.acc_bits + GAIN_T_BITS + 1), reset_less=True)
        gs = Signal(signed(NOISE_SHAPE.width + SIGMA_T_BITS + 1), reset_less=True)
        # the settings' derived values, registered (the settings are stable while converting)
        sh = Signal(6, reset_less=True)
        mx = Signal(unsigned(cfg.out_bits), reset_less=True)
        gain = Signal.like(self.gain, reset_less=True)
        sigma = Signal.like(self.sigma, reset_less=True)
        m.d.sync += [
            gain.eq(self.gain), sigma.eq(self.sigma),
            sh.eq(self.shift - NOISE_FRAC),
            mx.eq((Const(1, cfg.out_bits + 1) << (self.bits - 1).as_unsigned()) - 1),
        ]
        # stage 2 (scale, add noise and offset) and the first delay slot (quantize, clip): with
        # the input slice the sample enters the delay line two slots later (bits >= 2)
        v2 = Signal()
        v_next = (prod >> sh) + gs + (1 << (NOISE_FRAC - 1))
        v = Signal(v_next.shape(), reset_less=True)
        q = v >> NOISE_FRAC
        mxs = Signal(signed(cfg.out_bits + 1))
        m.d.comb += mxs.eq(mx)
        code = clip(q, -mxs, mxs)
        valid = [Signal(name=f"valid{p}") for p in range(depth)]
        word = [Signal(self.out_layout, reset_less=True, name=f"word{p}") for p in range(depth)]
        entry = Signal(range(depth + 2))
        m.d.comb += entry.eq(depth + 1 - self.bits)
        with m.If(adv):
            m.d.sync += [
                v1.eq(take),
                prod.eq(sl.o.payload * gain),
                gs.eq(self.noise.payload * sigma),
                v2.eq(v1),
            ]
            with m.If(v1):
                m.d.sync += v.eq(v_next)
            for p in range(depth):
                prev_v = valid[p - 1] if p else 0
                prev_w = word[p - 1] if p else 0
                with m.If(entry == p):
                    m.d.sync += [valid[p].eq(v2), word[p].code.eq(code), word[p].sat.eq(q != code)]
                with m.Else():
                    m.d.sync += [valid[p].eq(prev_v), word[p].eq(prev_w)]
        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(word[-1])]
        return m
