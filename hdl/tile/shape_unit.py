"""The tile's step shapes (docs/numerics.md §5.4.1): tables, range reciprocals, the step base.

- `shape_write_layout`: one node write (direction, node, value) into every lane's tables.
- `RangeDivider`: rinv = floor(2^(w_bits + RINV_EXTRA) / (wmax - wmin)) of each device map
  write, pipelined (`RangeDivider.STEP_BITS` quotient bits a stage), for the array's per-device
  rinv memories.
- `ShapeLane`: one lane's tables (T_up and T_down, even nodes and odd nodes in two memories, so
  that T[idx] and T[idx + 1] are read in one cycle) and its pipeline from a device's state, bounds,
  rinv and scale to b = rnd(s g, SHAPE_FRAC), `SHAPE_LATENCY` cycles.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import (
    RINV_EXTRA,
    SHAPE_BITS,
    SHAPE_FRAC,
    SHAPE_NODES,
    SHAPE_POS_FRAC,
    SHAPE_SEG_BITS,
    SHAPE_SEGS,
    ChipConfig,
)
from ohmflow.emulator.step_shape import ONE, range_reciprocal
from ohmflow.hdl.tile.physics_math import NODE_T_BITS, scale12

__all__ = ["SHAPE_LATENCY", "RangeDivider", "ShapeLane", "divider_latency", "rinv_bits",
           "rinv_values", "shape_write_layout"]

#: cycles a beat spends in the array's extra stages while a table mode is loaded
SHAPE_LATENCY = 6


def rinv_bits(cfg: ChipConfig) -> int:
    """Unsigned width of rinv: range >= 1 gives rinv <= 2^(w_bits + RINV_EXTRA)."""
    return cfg.w_bits + RINV_EXTRA + 1


def rinv_values(cfg: ChipConfig, wmax, wmin) -> np.ndarray:
    """rinv of devices with bounds (wmax, wmin), as the twin derives it (§5.4.1)."""
    return range_reciprocal(cfg, wmax, wmin)


def divider_latency(cfg: ChipConfig) -> int:
    """`RangeDivider.LATENCY`: cycles from a map write to its rinv write."""
    return -(-rinv_bits(cfg) // RangeDivider.STEP_BITS) + 1


def shape_write_layout() -> data.StructLayout:
    """A node write: ``en``, direction ``down`` (0: T_up), ``node`` 0 .. SHAPE_NODES - 1, value;
    ``load``: a LOAD_SHAPE is under way (from before its first write: simulation clock gates
    keep the tables' clock running)."""
    return data.StructLayout({"en": 1, "load": 1, "down": 1, "node": range(SHAPE_NODES),
                              "value": SHAPE_BITS})


class RangeDivider(wiring.Component):
    """rinv = floor(2^(w_bits + RINV_EXTRA) / span) for span >= 1, one request a cycle.

    Restoring division of the constant (the rv32 firmware's loop, `STEP_BITS` quotient bits a
    stage): the request is registered, then `stages` stages; ``o`` shows the result ``LATENCY``
    cycles after ``i``. ``busy``: a request is in the pipeline. No back-pressure.
    """

    STEP_BITS = 2

    def __init__(self, cfg: ChipConfig, tag_shape):
        self.cfg = cfg
        self.n_bits = rinv_bits(cfg)
        self.LATENCY = divider_latency(cfg)
        self.stages = self.LATENCY - 1
        span = unsigned(cfg.w_bits)
        super().__init__({
            "i": In(data.StructLayout({"valid": 1, "span": span, "tag": tag_shape})),
            "o": Out(data.StructLayout({"valid": 1, "rinv": self.n_bits, "tag": tag_shape})),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W = self.cfg.w_bits
        valid = Signal(name="div_v0")
        span = Signal(W, name="div_span0", reset_less=True)
        tag = Signal.like(self.i.tag, name="div_tag0", reset_less=True)
        r = Signal(W + 1, name="div_r0", reset_less=True)
        q = Signal(self.n_bits, name="div_q0", reset_less=True)
        # the datapath loads only behind a valid request, stage by stage (only the valid bits
        # follow every cycle), so an idle divider costs a simulator nothing
        m.d.sync += valid.eq(self.i.valid)
        with m.If(self.i.valid):
            m.d.sync += [span.eq(self.i.span), tag.eq(self.i.tag), r.eq(1), q.eq(0)]
        valids, left = [valid], self.n_bits
        for k in range(self.stages):
            rr, qq = r, q
            for _ in range(min(self.STEP_BITS, left)):
                take = rr >= span
                rr, qq = (Mux(take, rr - span, rr) << 1)[:W + 1], Cat(take, qq)[:self.n_bits]
                left -= 1
            nv = Signal(name=f"div_v{k + 1}")
            nr = Signal(W + 1, name=f"div_r{k + 1}", reset_less=True)
            nq = Signal(self.n_bits, name=f"div_q{k + 1}", reset_less=True)
            ns = Signal(W, name=f"div_span{k + 1}", reset_less=True)
            nt = Signal.like(tag, name=f"div_tag{k + 1}", reset_less=True)
            m.d.sync += nv.eq(valid)
            with m.If(valid):
                m.d.sync += [nr.eq(rr), nq.eq(qq), ns.eq(span), nt.eq(tag)]
            valid, r, q, span, tag = nv, nr, nq, ns, nt
            valids.append(valid)
        m.d.comb += [self.o.valid.eq(valid), self.o.rinv.eq(q), self.o.tag.eq(tag),
                     self.busy.eq(Cat(*valids).any())]
        return m


class ShapeLane:
    """One lane's tables and step-base pipeline, built into the array's module.

    ``reg(expr, name, en)`` is the array's pipeline register (loads when the array advances and
    ``en``); ``adv`` the array's advance. `build` returns b, registered `SHAPE_LATENCY` cycles
    after the cycle its operands are offered.
    """

    def __init__(self, cfg: ChipConfig, lane: int):
        self.cfg, self.lane = cfg, lane
        # even node 2a at {down, a} (a <= SHAPE_SEGS / 2), odd node 2a + 1 at {down, a}
        even_depth, odd_depth = 2 << SHAPE_SEG_BITS, 2 << (SHAPE_SEG_BITS - 1)
        self.even = Memory(shape=SHAPE_BITS, depth=even_depth, init=[ONE] * even_depth)
        self.odd = Memory(shape=SHAPE_BITS, depth=odd_depth, init=[ONE] * odd_depth)

    def tables(self, m: Module, wr) -> None:
        """The memories and their write ports (``wr``: a `shape_write_layout` value)."""
        b = self.lane
        m.submodules[f"shape_even{b}"], m.submodules[f"shape_odd{b}"] = self.even, self.odd
        half_bits = SHAPE_SEG_BITS - 1
        for mem, odd, abits in ((self.even, 1, half_bits + 1), (self.odd, 0, half_bits)):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(Cat(wr.node[1:1 + abits], wr.down)),
                         wp.data.eq(wr.value), wp.en.eq(wr.en & (wr.node[0] != odd))]

    def build(self, m: Module, reg, adv, en, centered, w, wmin, wmax, rinv, s, up, factor):
        """pos, idx, f, g and b = rnd(s g, SHAPE_FRAC) of a device (§5.4.1), g interpolated
        between the nodes scaled by the step factor of the temperature (§11.4).

        ``en``: a pulse beat offers its operands (state w, bounds, rinv, scale s, direction up)
        this cycle; ``centered``: the mode (1) or bottom (0), and ``factor``: CS[T], both
        constant while beats are in flight.
        """
        cfg, b = self.cfg, self.lane
        W = cfg.w_bits
        pv = [en]
        for k in range(SHAPE_LATENCY):
            pv.append(reg(pv[-1], f"shape_v{k}_{b}", valid=True))
        # E0: the position's numerator, w - wmin (bottom) or w - wmin + wmax (centered)
        num = w - wmin + Mux(centered, wmax, 0)
        num0 = reg(num.as_unsigned()[:W + 2], f"shape_num_{b}", pv[0])
        rinv0 = reg(rinv, f"shape_rinv_{b}", pv[0])
        s0, up0 = reg(s, f"shape_s0_{b}", pv[0]), reg(up, f"shape_up0_{b}", pv[0])
        # E1: num * rinv < 2^(w_bits + RINV_EXTRA + 2)
        prod1 = reg((num0 * rinv0)[:W + RINV_EXTRA + 2], f"shape_prod_{b}", pv[1])
        s1, up1 = reg(s0, f"shape_s1_{b}", pv[1]), reg(up0, f"shape_up1_{b}", pv[1])
        # E2: pos, idx, f; the tables are read (T[idx] and T[idx + 1]: one even, one odd node)
        pos = Mux(centered, prod1 >> (W + 1), prod1 >> W)[:RINV_EXTRA + 1]
        top = pos[SHAPE_POS_FRAC:] >= SHAPE_SEGS
        idx = Mux(top, SHAPE_SEGS - 1, pos[SHAPE_POS_FRAC:])[:SHAPE_SEG_BITS]
        f = Mux(top, 1 << SHAPE_POS_FRAC, pos[:SHAPE_POS_FRAC])
        rp_e, rp_o = self.even.read_port(), self.odd.read_port()
        m.d.comb += [rp_e.addr.eq(Cat(((idx + 1) >> 1)[:SHAPE_SEG_BITS], ~up1)),
                     rp_o.addr.eq(Cat(idx[1:], ~up1)), rp_e.en.eq(adv & pv[2]),
                     rp_o.en.eq(adv & pv[2])]
        f2, par2 = reg(f, f"shape_f2_{b}", pv[2]), reg(idx[0], f"shape_par2_{b}", pv[2])
        s2 = reg(s1, f"shape_s2_{b}", pv[2])
        # E3: the nodes scaled by CS[T] and registered: T'[k] = rnd(T[k] CS[T], 12) (§11.4;
        # exactly T[k] at T0)
        te3 = reg(scale12(rp_e.data, factor)[:NODE_T_BITS], f"shape_te_{b}", pv[3])
        to3 = reg(scale12(rp_o.data, factor)[:NODE_T_BITS], f"shape_to_{b}", pv[3])
        f3, par3 = reg(f2, f"shape_f3_{b}", pv[3]), reg(par2, f"shape_par3_{b}", pv[3])
        s3 = reg(s2, f"shape_s3_{b}", pv[3])
        # E4: g = rnd(T[idx] (64 - f) + T[idx + 1] f, 6) = rnd(64 T[idx] + (T[idx+1] - T[idx]) f, 6)
        lo, hi = Mux(par3, to3, te3), Mux(par3, te3, to3)
        acc = (lo << SHAPE_POS_FRAC) + (hi - lo) * f3 + (1 << (SHAPE_POS_FRAC - 1))
        g4 = reg(acc.as_unsigned()[SHAPE_POS_FRAC:SHAPE_POS_FRAC + NODE_T_BITS], f"shape_g_{b}",
                 pv[4])
        s4 = reg(s3, f"shape_s4_{b}", pv[4])
        # E5: s g; E6: b = rnd(s g, SHAPE_FRAC)
        sg5 = reg(s4 * g4, f"shape_sg_{b}", pv[5])
        return reg((sg5 + (1 << (SHAPE_FRAC - 1))) >> SHAPE_FRAC, f"shape_b_{b}", pv[6])
