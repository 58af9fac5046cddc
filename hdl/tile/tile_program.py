"""The tile's program-port operations: PROGRAM, MAP_WRITE, READ, MAP_READ and RESET's zeroing.

Each walks devices (j outer, i inner) through the array's program port: PROGRAM writes one state
word per device of the active shape (clipped to the weight codes); MAP_WRITE takes six words per
device of the whole tile (su, sd, ku, kd, wmax, wmin, each clipped to its range); READ returns one
state word per device of the active shape and MAP_READ six map words per device of the tile, with
at most four reads in flight; RESET writes state 0 to every device of every tile.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import clip
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd
from ohmflow.hdl.tile.tile_io import WORD, Op
from ohmflow.hdl.tile.walk import Walk

__all__ = ["ProgramWalker"]

MAP_WORDS = 6  #: su, sd, ku, kd, wmax, wmin
READS_IN_FLIGHT = 4


class ProgramWalker(wiring.Component):
    """One program-port operation at a time.

    Ports
    -----
    op: PROGRAM, MAP_WRITE, READ, MAP_READ or RESET; tile, n_in, n_out: its tile and active shape.
    begin: an operation is accepted (the walk restarts); active: it runs (ports are live).
    done: the last write is accepted (PROGRAM, MAP_WRITE, RESET) or the last read word sent
        (READ, MAP_READ).
    data_in: In stream of operand words; data_out: Out stream of result words.
    prog, prog_out: the array's program port.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.geom = g = Geometry(cfg)
        super().__init__({
            "op": In(Op),
            "tile": In(g.index_shape(g.tile_bits)),
            "n_in": In(range(cfg.rows + 1)),
            "n_out": In(range(cfg.cols + 1)),
            "begin": In(1),
            "active": In(1),
            "done": Out(1),
            "data_in": In(stream.Signature(WORD)),
            "data_out": Out(stream.Signature(WORD)),
            "prog": Out(stream.Signature(g.prog_layout)),
            "prog_out": In(stream.Signature(g.prog_out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        walk = Walk(cfg)
        word = self.data_in.payload
        prog, po = self.prog.payload, self.prog_out.payload
        n_in, n_out = self.n_in, self.n_out
        field = Signal(range(MAP_WORDS))  # MAP_WRITE, MAP_READ: the word within a device
        held = [Signal(32, reset_less=True, name=f"map_word{k}") for k in range(MAP_WORDS - 1)]
        reads = Signal(range(8))  # reads issued and not yet answered
        issued_all = Signal()
        zero_tile = Signal(range(cfg.tiles + 1))
        with m.If(self.begin):
            m.d.sync += [field.eq(0), issued_all.eq(0), zero_tile.eq(0), *walk.clear()]
        m.d.comb += [prog.tile.eq(self.tile), prog.jq.eq(walk.jq), prog.jr.eq(walk.jr),
                     prog.iq.eq(walk.iq), prog.ir.eq(walk.ir)]
        m.d.sync += reads.eq(
            reads + (self.prog.valid & self.prog.ready & (prog.cmd == ProgCmd.READ))
            - (self.prog_out.valid & self.prog_out.ready))
        write = self.prog.valid & self.prog.ready

        with m.If(self.active):
            with m.Switch(self.op):
                with m.Case(Op.PROGRAM):
                    m.d.comb += [
                        self.prog.valid.eq(self.data_in.valid),
                        self.data_in.ready.eq(self.prog.ready), prog.cmd.eq(ProgCmd.STATE),
                        prog.state.eq(clip(word.as_signed(), cfg.w_min_code, cfg.w_max_code))]
                    with m.If(write):
                        m.d.sync += walk.step(n_in - 1)
                        m.d.comb += self.done.eq(walk.at(n_out - 1, n_in - 1))
                with m.Case(Op.MAP_WRITE):
                    w = [r.as_signed() for r in held] + [word.as_signed()]
                    m.d.comb += [
                        prog.cmd.eq(ProgCmd.MAP),
                        prog.map.su.eq(clip(w[0], 0, cfg.step_max)),
                        prog.map.sd.eq(clip(w[1], 0, cfg.step_max)),
                        prog.map.ku.eq(clip(w[2], -cfg.slope_max, cfg.slope_max)),
                        prog.map.kd.eq(clip(w[3], -cfg.slope_max, cfg.slope_max)),
                        prog.map.wmax.eq(clip(w[4], 0, cfg.w_max_code)),
                        prog.map.wmin.eq(clip(w[5], cfg.w_min_code, 0)),
                    ]
                    with m.If(field == MAP_WORDS - 1):
                        m.d.comb += [self.prog.valid.eq(self.data_in.valid),
                                     self.data_in.ready.eq(self.prog.ready)]
                        with m.If(write):
                            m.d.sync += [field.eq(0), walk.step(cfg.rows - 1)]
                            m.d.comb += self.done.eq(walk.at(cfg.cols - 1, cfg.rows - 1))
                    with m.Else():
                        m.d.comb += self.data_in.ready.eq(1)
                        with m.If(self.data_in.valid):
                            m.d.sync += [Array(held)[field].eq(word), field.eq(field + 1)]
                with m.Case(Op.READ, Op.MAP_READ):
                    is_map = self.op == Op.MAP_READ
                    j_last = Mux(is_map, cfg.cols - 1, n_out - 1)
                    i_last = Mux(is_map, cfg.rows - 1, n_in - 1)
                    fields = [po.map.su, po.map.sd, po.map.ku, po.map.kd, po.map.wmax,
                              po.map.wmin]
                    m.d.comb += [
                        self.prog.valid.eq(~issued_all & (reads < READS_IN_FLIGHT)),
                        prog.cmd.eq(ProgCmd.READ),
                        self.data_out.valid.eq(self.prog_out.valid),
                        self.data_out.payload.eq(Mux(is_map, Array(fields)[field], po.state)),
                        self.prog_out.ready.eq(self.data_out.ready
                                               & (~is_map | (field == MAP_WORDS - 1))),
                        self.done.eq(issued_all & (reads == 0)),
                    ]
                    with m.If(write):
                        m.d.sync += walk.step(i_last)
                        with m.If(walk.at(j_last, i_last)):
                            m.d.sync += issued_all.eq(1)
                    with m.If(self.data_out.valid & self.data_out.ready & is_map):
                        m.d.sync += field.eq(Mux(field == MAP_WORDS - 1, 0, field + 1))
                with m.Case(Op.RESET):
                    m.d.comb += [self.prog.valid.eq(1), prog.tile.eq(zero_tile),
                                 prog.cmd.eq(ProgCmd.STATE), prog.state.eq(0)]
                    with m.If(self.prog.ready):
                        m.d.sync += walk.step(cfg.rows - 1)
                        with m.If(walk.at(cfg.cols - 1, cfg.rows - 1)):
                            m.d.sync += [zero_tile.eq(zero_tile + 1), *walk.clear()]
                            with m.If(zero_tile == cfg.tiles - 1):
                                m.d.sync += zero_tile.eq(0)
                                m.d.comb += self.done.eq(1)
        return m
