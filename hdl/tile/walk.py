"""A two-level index walk (j outer, i inner) kept in flat and (quotient, remainder by L) form, so
the array's bank addresses need no division."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.tile.layouts import Geometry

__all__ = ["Walk"]


class Walk:
    """Counters ``j = jq*L + jr`` (outer) and ``i = iq*L + ir`` (inner).

    `step` returns the statements of one step of ``for j in 0..: for i in 0..i_last`` (the outer
    index counts on); `at` is true on the final pair. Use them in the synchronous domain.
    """

    def __init__(self, cfg: ChipConfig, name: str = "walk"):
        g = Geometry(cfg)
        n = max(cfg.rows, cfg.cols)
        self.lanes = cfg.lanes
        self.j = Signal(range(n + 1), name=f"{name}_j")
        self.i = Signal(range(n + 1), name=f"{name}_i")
        self.jq = Signal(g.index_shape(g.q_bits), name=f"{name}_jq")
        self.jr = Signal(g.index_shape(g.r_bits), name=f"{name}_jr")
        self.iq = Signal(g.index_shape(g.q_bits), name=f"{name}_iq")
        self.ir = Signal(g.index_shape(g.r_bits), name=f"{name}_ir")

    def clear(self) -> list:
        return [s.eq(0) for s in (self.j, self.i, self.jq, self.jr, self.iq, self.ir)]

    def at(self, j_last, i_last):
        return (self.j == j_last) & (self.i == i_last)

    def step(self, i_last) -> list:
        L = self.lanes
        wrap = self.i == i_last
        ir_end = self.ir == L - 1
        jr_end = self.jr == L - 1
        return [
            self.i.eq(Mux(wrap, 0, self.i + 1)),
            self.ir.eq(Mux(wrap | ir_end, 0, self.ir + 1)),
            self.iq.eq(Mux(wrap, 0, Mux(ir_end, self.iq + 1, self.iq))),
            self.j.eq(Mux(wrap, self.j + 1, self.j)),
            self.jr.eq(Mux(wrap, Mux(jr_end, 0, self.jr + 1), self.jr)),
            self.jq.eq(Mux(wrap & jr_end, self.jq + 1, self.jq)),
        ]
