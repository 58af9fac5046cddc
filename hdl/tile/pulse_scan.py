"""The pulse engine's second phase: coincidence counts and draw words from the stored trains.

For L devices ``(j, kL .. kL+L-1)`` per beat: ``n = popcount(row_i & col_j)`` (0 past ``n_in``),
polarity ``up = neg_i ^ neg_j`` and the draw word ``key_c2c ^ (j*rows + i)``. A random sample
scans every active device (j outer, chunk k inner); a ROW op only chunk ``index // L`` of every
column, a COL op only column ``index``. Two stages: the memories answer, then counts, polarities
and draw words are registered (so a simulator evaluates the popcounts only when a beat moves).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import popcount, times
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts, PulseMode

__all__ = ["CoincidenceScan"]


class CoincidenceScan(wiring.Component):
    """Walks the devices of one sample, L per beat, and sends their draw words.

    Ports
    -----
    begin: start the walk (the trains are written); ``active`` is high from the next cycle.
    active: the engine is in its scan phase (beats are issued only then).
    sample: the sample's parameters.
    line_q, line_r: the addressed line as quotient and remainder by L.
    chunk_last: the last row chunk of the active shape, ``(n_in - 1) // L``.
    row_addr, row_en, row_data: read port of the row-train memory (data one cycle after).
    col_addr, col_en, col_data: read port of the column-train memory.
    draws: Out stream of the beats' L draw words with their counts and polarities.
    last: the walk's final beat is issued this cycle.
    busy: a beat is in one of the two stages.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.lay = lay = PulseLayouts(cfg)
        g = lay.geom
        super().__init__({
            "begin": In(1),
            "active": In(1),
            "sample": In(lay.start),
            "line_q": In(g.index_shape(g.q_bits)),
            "line_r": In(g.index_shape(g.r_bits)),
            "chunk_last": In(g.index_shape(g.iq_bits)),
            "row_addr": Out(range(lay.row_depth)),
            "row_en": Out(1),
            "row_data": In(lay.row_word),
            "col_addr": Out(range(lay.col_depth)),
            "col_en": Out(1),
            "col_data": In(lay.col_word),
            "draws": Out(stream.Signature(lay.draw_hash)),
            "last": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        g = lay.geom
        L = cfg.lanes
        par = self.sample
        # the walk: column j = {jq, jr} outer, row chunk k inner; base = j*rows + k*L
        col = Signal(range(cfg.cols + 1))
        col_q = Signal(g.index_shape(g.jq_bits))
        col_r = Signal(g.index_shape(g.r_bits))
        chunk = Signal(g.index_shape(g.iq_bits))
        chunk_row = Signal(range(g.iq * L + 1))
        col_base = Signal(range(cfg.cols * cfg.rows + 1))
        row_op, col_op = par.mode == PulseMode.ROW, par.mode == PulseMode.COL
        chunk_first = Mux(row_op, self.line_q[: g.iq_bits], 0)
        chunk_stop = Mux(row_op, self.line_q[: g.iq_bits], self.chunk_last)
        col_stop = Mux(col_op, par.index, par.n_out - 1)
        with m.If(self.begin):
            m.d.sync += [chunk.eq(chunk_first),
                         chunk_row.eq(Mux(row_op, times(self.line_q, L), 0))]
            with m.If(col_op):
                m.d.sync += [col.eq(par.index), col_q.eq(self.line_q), col_r.eq(self.line_r),
                             col_base.eq(times(par.index, cfg.rows))]
            with m.Else():
                m.d.sync += [col.eq(0), col_q.eq(0), col_r.eq(0), col_base.eq(0)]
        read_v, count_v = Signal(), Signal()  # stage 1: memories read; stage 2: counts
        adv_count = ~count_v | self.draws.ready
        adv_read = ~read_v | adv_count
        issue = self.active & adv_read
        m.d.comb += [self.row_addr.eq(chunk), self.col_addr.eq(Cat(col_r[:g.r_bits], col_q)),
                     self.row_en.eq(adv_read), self.col_en.eq(adv_read),
                     self.last.eq(issue & (chunk == chunk_stop) & (col == col_stop))]
        with m.If(issue):
            with m.If(chunk == chunk_stop):
                m.d.sync += [chunk.eq(chunk_first),
                             chunk_row.eq(Mux(row_op, times(self.line_q, L), 0))]
                with m.If(col != col_stop):
                    m.d.sync += [col.eq(col + 1), col_base.eq(col_base + cfg.rows)]
                    with m.If(col_r == L - 1):
                        m.d.sync += [col_r.eq(0), col_q.eq(col_q + 1)]
                    with m.Else():
                        m.d.sync += col_r.eq(col_r + 1)
            with m.Else():
                m.d.sync += [chunk.eq(chunk + 1), chunk_row.eq(chunk_row + L)]

        read = Signal(lay.draw_tag, reset_less=True)
        read_row = Signal.like(chunk_row, reset_less=True)
        read_base = Signal(32, reset_less=True)
        with m.If(adv_read):
            m.d.sync += [read_v.eq(issue), read.jq.eq(col_q), read.jr.eq(col_r),
                         read.chunk.eq(chunk), read_row.eq(chunk_row),
                         read_base.eq(col_base + chunk_row)]
        counts, ups = [], []
        for lane in range(L):
            row_train = self.row_data[lane]
            in_shape = read_row + lane < par.n_in
            counts.append(Mux(in_shape, popcount(row_train.slots & self.col_data.slots), 0))
            ups.append(row_train.neg ^ self.col_data.neg)

        beat = Signal(lay.draw_tag, reset_less=True)
        words = Signal(lay.words, reset_less=True)
        with m.If(adv_count):
            m.d.sync += count_v.eq(read_v)
        with m.If(adv_count & read_v):
            m.d.sync += [beat.jq.eq(read.jq), beat.jr.eq(read.jr), beat.chunk.eq(read.chunk),
                         beat.up.eq(Cat(*ups))]
            for lane in range(L):
                m.d.sync += [beat.n[lane].eq(counts[lane]),
                             words[lane].eq(par.key_c2c ^ (read_base + lane))]
        m.d.comb += [self.draws.valid.eq(count_v), self.draws.payload.tag.eq(beat),
                     self.draws.payload.word.eq(words), self.busy.eq(read_v | count_v)]
        return m
