"""The pulse engine: stochastic pulse trains, coincidence counts and cycle-to-cycle draws.

One sample at a time (``Twin.update`` / ``Twin.pulse``):

1. Trains. Random mode: the codes of a sample arrive on ``codes`` (x for rows 0..n_in-1, then d for
   columns 0..n_out-1). Line ``n`` of an axis draws ``lowbias32(key ^ ((n << 4) | g))`` for groups
   ``g < ceil(bl/4)``; slot ``t`` fires iff byte ``t % 4`` of group ``t // 4`` is below ``|code|``.
   ``L`` groups are hashed per cycle, so a line takes ``ceil(ceil(bl/4) / L)`` cycles.
   Deterministic mode: ``|count|`` leading slots fire on the counted lines (one per cycle) and
   every slot of the addressed line fires, so a device sees exactly ``|count|`` coincidences.
2. Scan. For L devices (j, kL..kL+L-1) per cycle: ``n = popcount(row_i & col_j)``, polarity
   ``up = sign(x_i) != sign(d_j)`` (deterministic: count > 0), and the draw
   ``g = gauss(lowbias32(key_c2c ^ (j*rows + i)))``, ``e = rnd(g*dw_std, 8)``,
   ``t = rnd(e*SQRT[n], 8)``; the beat goes to the array's pulse lines. A deterministic op scans
   only the addressed line.
"""

from __future__ import annotations

import math

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import C2C_SHIFT, DW_STD_BITS, SQRT_FRAC, ChipConfig
from ohmflow.hdl.lib.fixed import (
    divmod_const,
    popcount,
    rnd_shift,
    sum_tree,
    thermometer,
    times,
)
from ohmflow.hdl.tile.layouts import Geometry
from ohmflow.hdl.tile.prng import Lowbias32, gauss
from ohmflow.hdl.tile.tile_io import WORD

__all__ = ["PulseEngine", "PulseMode"]


class PulseMode(enum.Enum, shape=2):
    RANDOM = 0  #: stochastic update sample
    ROW = 1  #: deterministic counts on devices (j, index), one count per column j
    COL = 2  #: deterministic counts on devices (index, i), one count per row i


class PulseEngine(wiring.Component):
    """Trains, coincidences and draws for one update sample or deterministic pulse op.

    Ports
    -----
    start: In stream: one beat per sample (mode, tile, active shape, index, keys), accepted
        while not ``busy``.
    codes: In stream of signed words: the sample's codes or counts (see module docstring).
    pulse: Out stream of pulse beats for `AnalogArray.pulse`.
    count: the sum of ``n`` over the lanes of the current ``pulse`` beat.
    bl, dw_std: run-time settings, stable while busy.
    busy: from ``start`` accepted until the last pulse beat has been accepted.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.geom = g = Geometry(cfg)
        nmax = max(cfg.rows, cfg.cols)
        self.start_layout = data.StructLayout({
            "mode": PulseMode, "tile": g.index_shape(g.tile_bits),
            "n_in": range(cfg.rows + 1), "n_out": range(cfg.cols + 1), "index": range(max(2, nmax)),
            "key_row": 32, "key_col": 32, "key_c2c": 32,
        })
        super().__init__({
            "start": In(stream.Signature(self.start_layout)),
            "codes": In(stream.Signature(signed(WORD))),
            "pulse": Out(stream.Signature(g.pulse_layout)),
            "count": Out(range(cfg.lanes * cfg.bl_max + 1)),
            "bl": In(range(cfg.bl_max + 1)),
            "dw_std": In(DW_STD_BITS),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, g = self.cfg, self.geom
        L, B = cfg.lanes, cfg.bl_max
        nmax = max(cfg.rows, cfg.cols)
        gmax = -(-B // 4)
        rounds_max = -(-gmax // L)
        lane = data.StructLayout({"train": B, "neg": 1})
        mem_shape = data.ArrayLayout(lane, L)
        # row trains L to a word (a scan beat reads L rows); column trains one to a word at
        # {jq, jr} (a scan beat reads one column: no lane select after the memory)
        m.submodules.rows = rows = Memory(shape=mem_shape, depth=max(2, g.iq), init=[])
        # on the ECP5 in LUT RAM: a block RAM's clock-to-out would sit in front of the popcounts
        # (the iCE40 has no LUT RAM; Yosys picks block RAM or flip-flops there)
        ecp5 = getattr(platform, "family", None) == "ecp5"
        m.submodules.cols = cols = Memory(shape=lane, depth=max(2, g.jq << g.r_bits), init=[],
                                          attrs={"ram_style": "distributed"} if ecp5 else {})
        wp_rows, wp_cols = rows.write_port(granularity=1), cols.write_port()
        rp_rows, rp_cols = rows.read_port(), cols.read_port()

        tag_a = data.StructLayout({"axis": 1, "q": g.index_shape(g.q_bits),
                                   "r": g.index_shape(g.r_bits), "round": range(max(2, rounds_max)),
                                   "last": 1, "absc": 9, "neg": 1})
        tag_b = data.StructLayout({"jq": g.index_shape(g.jq_bits),
                                   "jr": g.index_shape(g.r_bits),
                                   "chunk": g.index_shape(g.iq_bits),
                                   "n": data.ArrayLayout(g.n_shape, L), "up": L})
        tag = data.StructLayout({"phase_b": 1, "a": tag_a, "b": tag_b})
        m.submodules.hash = h = Lowbias32(lanes=L, tag_shape=tag)

        # ----- sample parameters -----
        par = Signal(self.start_layout, reset_less=True)
        blmask = Signal(B, reset_less=True)
        groups = Signal(range(gmax + 1), reset_less=True)
        k_last = Signal(g.index_shape(g.iq_bits), reset_less=True)
        idx_q = Signal(g.index_shape(g.q_bits), reset_less=True)
        idx_r = Signal(g.index_shape(g.r_bits), reset_less=True)
        st = self.start.payload
        sq, sr = divmod_const(st.index, L, nmax)
        kq, _ = divmod_const(st.n_in - 1, L, cfg.rows)
        phase = Signal(range(3))  # 0 idle, 1 trains, 2 scan
        m.d.comb += self.start.ready.eq(~self.busy)  # idle: no draw left in the pipeline
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += [
                par.eq(st), phase.eq(1), blmask.eq(thermometer(self.bl, B)),
                groups.eq((self.bl + 3) >> 2), k_last.eq(kq), idx_q.eq(sq), idx_r.eq(sr),
            ]
        mode = par.mode
        det = mode != PulseMode.RANDOM

        # ----- phase 1: trains -----
        axis = Signal()  # 0: rows (x), 1: columns (d)
        line = Signal(range(nmax + 1))
        lq = Signal(g.index_shape(g.q_bits))
        lr = Signal(g.index_shape(g.r_bits))
        n_axis = Mux(axis, par.n_out, par.n_in)
        done_in = Signal()  # every code of the sample accepted
        written = Signal(range(cfg.rows + cfg.cols + 1))
        total = Mux(mode == PulseMode.RANDOM, par.n_in + par.n_out,
                    Mux(mode == PulseMode.ROW, par.n_out, par.n_in))
        holding = Signal()
        hold = Signal(tag_a, reset_less=True)
        hold_line = Signal(range(max(2, nmax)), reset_less=True)
        rnd = Signal(range(rounds_max + 1))
        last_round = times(rnd + 1, L) >= groups
        # the hash never stalls in phase 1: a sample starts with no draw in flight, and train
        # beats leave the hash unconditionally; so the code stream's ready does not wait on the
        # array's
        issue_a = holding & (phase == 1)
        code = self.codes.payload
        absc = Mux(code < 0, -code, code)
        m.d.comb += self.codes.ready.eq(
            (phase == 1) & ~done_in & (det | ~holding | (issue_a & last_round)))
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += [axis.eq(st.mode == PulseMode.ROW), line.eq(0), lq.eq(0), lr.eq(0),
                         done_in.eq(0), written.eq(0), holding.eq(0)]
        take = self.codes.valid & self.codes.ready
        with m.If(take):
            with m.If(line + 1 == n_axis):
                m.d.sync += [line.eq(0), lq.eq(0), lr.eq(0), axis.eq(1)]
                with m.If(axis | det):
                    m.d.sync += done_in.eq(1)
            with m.Else():
                m.d.sync += line.eq(line + 1)
                with m.If(lr == L - 1):
                    m.d.sync += [lr.eq(0), lq.eq(lq + 1)]
                with m.Else():
                    m.d.sync += lr.eq(lr + 1)
            with m.If(~det):
                m.d.sync += [
                    holding.eq(1), rnd.eq(0), hold_line.eq(line),
                    hold.axis.eq(axis), hold.q.eq(lq), hold.r.eq(lr),
                    hold.absc.eq(Mux(absc > cfg.p_max, cfg.p_max, absc)), hold.neg.eq(code < 0),
                ]
        with m.Elif(issue_a):
            with m.If(last_round):
                m.d.sync += holding.eq(0)
            with m.Else():
                m.d.sync += rnd.eq(rnd + 1)
        key_a = Mux(hold.axis, par.key_col, par.key_row)

        # deterministic counts: registered with their line, the train written the next cycle
        # (``written`` counts the code when it is taken; the scan reads two cycles later)
        det_v = Signal()
        det_cnt = Signal(range(B + 1), reset_less=True)
        det_neg = Signal(reset_less=True)
        det_axis = Signal(reset_less=True)
        det_q, det_r = Signal.like(lq, reset_less=True), Signal.like(lr, reset_less=True)
        m.d.sync += det_v.eq(take & det)
        with m.If(take & det):
            m.d.sync += [det_cnt.eq(Mux(absc > B, B, absc)), det_neg.eq(code > 0),
                         det_axis.eq(axis), det_q.eq(lq), det_r.eq(lr)]
        det_lane = Signal(lane)
        m.d.comb += [det_lane.train.eq(thermometer(det_cnt, B)), det_lane.neg.eq(det_neg)]

        # hash results of phase 1: place nibbles, write the finished train
        ho = h.o.payload
        ta = ho.tag.a
        train = Signal(B, reset_less=True)
        nibbles = [Cat(*[ho.word[l][8 * b:8 * b + 8] < ta.absc for b in range(4)])
                   for l in range(L)]
        placed = []
        for p in range(gmax):
            width = min(4, B - 4 * p)
            placed.append(Mux(ta.round == p // L, nibbles[p % L][:width],
                              train[4 * p:4 * p + width]))
        train_next = Cat(*placed)
        done_a = h.o.valid & ~ho.tag.phase_b
        with m.If(done_a):
            m.d.sync += train.eq(train_next)
        wr_lane = Signal(lane)
        m.d.comb += [wr_lane.train.eq(train_next & blmask), wr_lane.neg.eq(ta.neg)]
        w_a = done_a & ta.last
        w_det = det_v
        w_axis = Mux(det, det_axis, ta.axis)
        w_q, w_r = Mux(det, det_q, ta.q), Mux(det, det_r, ta.r)
        # a deterministic op's addressed line fires in every slot with polarity 0: its train is
        # written in the op's first cycle (before any count's), so the scan reads plain trains
        init = Signal()
        m.d.sync += init.eq(self.start.valid & self.start.ready & (st.mode != PulseMode.RANDOM))
        ones = Const((1 << B) - 1, B)
        w_lane = Mux(det, det_lane.as_value(), wr_lane.as_value())
        w_en = w_a | w_det
        m.d.comb += [
            wp_rows.addr.eq(Mux(init, idx_q, w_q)),
            wp_rows.data.eq(Cat(*[Mux(init, Cat(Mux(idx_r == l, ones, 0), Const(0, 1)), w_lane)
                                  for l in range(L)])),
            wp_rows.en.eq(Mux(init, Mux(mode == PulseMode.ROW, (1 << L) - 1, 0),
                              Cat(*[(w_r == l) & w_en & (w_axis == 0) for l in range(L)]))),
            wp_cols.addr.eq(Mux(init, Cat(idx_r[:g.r_bits], idx_q), Cat(w_r[:g.r_bits], w_q))),
            wp_cols.data.eq(Mux(init, Cat(ones, Const(0, 1)), w_lane)),
            wp_cols.en.eq(Mux(init, mode == PulseMode.COL, w_en & (w_axis == 1))),
        ]
        with m.If(w_a | (take & det)):
            m.d.sync += written.eq(written + 1)

        # ----- phase 2: scan -----
        sj = Signal(range(cfg.cols + 1))
        sjq = Signal(g.index_shape(g.jq_bits))
        sjr = Signal(g.index_shape(g.r_bits))
        sk = Signal(g.index_shape(g.iq_bits))
        skl = Signal(range(g.iq * L + 1))
        sjrows = Signal(range(cfg.cols * cfg.rows + 1))
        row_op, col_op = mode == PulseMode.ROW, mode == PulseMode.COL
        k_first = Mux(row_op, idx_q[: g.iq_bits], 0)
        k_stop = Mux(row_op, idx_q[: g.iq_bits], k_last)
        j_stop = Mux(col_op, par.index, par.n_out - 1)
        with m.If((phase == 1) & done_in & (written == total) & ~holding):
            m.d.sync += [phase.eq(2), sk.eq(k_first), skl.eq(Mux(row_op, times(idx_q, L), 0))]
            with m.If(col_op):
                m.d.sync += [sj.eq(par.index), sjq.eq(idx_q), sjr.eq(idx_r),
                             sjrows.eq(times(par.index, cfg.rows))]
            with m.Else():
                m.d.sync += [sj.eq(0), sjq.eq(0), sjr.eq(0), sjrows.eq(0)]
        v1, v2 = Signal(), Signal()
        adv2 = ~v2 | (h.i.ready & ~holding)
        adv1 = ~v1 | adv2
        issue_b = (phase == 2) & adv1
        m.d.comb += [rp_rows.addr.eq(sk), rp_cols.addr.eq(Cat(sjr[:g.r_bits], sjq)),
                     rp_rows.en.eq(adv1), rp_cols.en.eq(adv1)]
        with m.If(issue_b):
            with m.If(sk == k_stop):
                m.d.sync += [sk.eq(k_first), skl.eq(Mux(row_op, times(idx_q, L), 0))]
                with m.If(sj == j_stop):
                    m.d.sync += phase.eq(0)
                with m.Else():
                    m.d.sync += [sj.eq(sj + 1), sjrows.eq(sjrows + cfg.rows)]
                    with m.If(sjr == L - 1):
                        m.d.sync += [sjr.eq(0), sjq.eq(sjq + 1)]
                    with m.Else():
                        m.d.sync += sjr.eq(sjr + 1)
            with m.Else():
                m.d.sync += [sk.eq(sk + 1), skl.eq(skl + L)]
        b1 = Signal(tag_b, reset_less=True)
        b1_kl = Signal.like(skl, reset_less=True)
        b1_base = Signal(32, reset_less=True)
        with m.If(adv1):
            m.d.sync += [v1.eq(issue_b), b1.jq.eq(sjq), b1.jr.eq(sjr), b1.chunk.eq(sk),
                         b1_kl.eq(skl), b1_base.eq(sjrows + skl)]
        col = rp_cols.data
        col_train, col_neg = col.train, col.neg
        ns, ups = [], []
        for l in range(L):
            rowl = rp_rows.data[l]
            row_train = rowl.train
            active = b1_kl + l < par.n_in
            both = row_train & col_train
            ns.append(Mux(active, popcount(both), 0))
            ups.append(rowl.neg ^ col_neg)

        # stage 2: counts, polarities and draw words registered (so a simulator evaluates the
        # lanes' popcounts only when a scan beat moves)
        b2 = Signal(tag_b, reset_less=True)
        words_b = [Signal(32, reset_less=True, name=f"word_b{l}") for l in range(L)]
        with m.If(adv2):
            m.d.sync += v2.eq(v1)
        with m.If(adv2 & v1):
            m.d.sync += [b2.jq.eq(b1.jq), b2.jr.eq(b1.jr), b2.chunk.eq(b1.chunk),
                         b2.up.eq(Cat(*ups))]
            for l in range(L):
                m.d.sync += [b2.n[l].eq(ns[l]), words_b[l].eq(par.key_c2c ^ (b1_base + l))]

        # hash input: phase 1 groups or phase 2 device draws
        tag_in = h.i.payload.tag
        gbase = times(rnd, L)
        for l in range(L):
            word_a = key_a ^ Cat((gbase + l)[:4], hold_line)
            m.d.comb += h.i.payload.word[l].eq(Mux(holding, word_a, words_b[l]))
        m.d.comb += [
            h.i.valid.eq(holding | v2),
            tag_in.phase_b.eq(~holding),
            tag_in.a.eq(hold), tag_in.a.round.eq(rnd), tag_in.a.last.eq(last_round),
            tag_in.b.eq(b2),
        ]

        # ----- phase 2 back end: e, then t -----
        adv = Signal()
        m.d.comb += [adv.eq(~self.pulse.valid | self.pulse.ready),
                     h.o.ready.eq(~ho.tag.phase_b | adv)]
        sqrt = Array([Const(math.isqrt(n << (2 * SQRT_FRAC)), g.sqrt_max.bit_length())
                      for n in range(B + 1)])
        ve = Signal()
        e_tag = Signal(tag_b, reset_less=True)
        es = [Signal(g.e_shape, reset_less=True, name=f"e{l}") for l in range(L)]
        roots = [Signal(g.sqrt_max.bit_length(), reset_less=True, name=f"root{l}")
                 for l in range(L)]
        out = self.pulse.payload
        with m.If(adv):
            m.d.sync += [ve.eq(h.o.valid & ho.tag.phase_b), self.pulse.valid.eq(ve)]
        # data registers load only behind a valid beat (idle lanes cost a simulator nothing)
        with m.If(adv & h.o.valid & ho.tag.phase_b):
            m.d.sync += e_tag.eq(ho.tag.b)
            for l in range(L):
                m.d.sync += [es[l].eq(rnd_shift(gauss(ho.word[l]) * self.dw_std, C2C_SHIFT)),
                             roots[l].eq(sqrt[ho.tag.b.n[l]])]
        count = Signal.like(self.count, reset_less=True)  # registered with the beat it sums
        with m.If(adv & ve):
            m.d.sync += [out.tile.eq(par.tile), out.jq.eq(e_tag.jq), out.jr.eq(e_tag.jr),
                         out.chunk.eq(e_tag.chunk), out.up.eq(e_tag.up),
                         count.eq(sum_tree([e_tag.n[l] for l in range(L)]))]
            for l in range(L):
                m.d.sync += [out.n[l].eq(e_tag.n[l]),
                             out.t[l].eq(rnd_shift(es[l] * roots[l], SQRT_FRAC))]
        m.d.comb += self.count.eq(count)

        inflight = Signal(range(Lowbias32.LATENCY + 2))
        hin = h.i.valid & h.i.ready
        hout = h.o.valid & h.o.ready
        m.d.sync += inflight.eq(inflight + hin - hout)
        m.d.comb += self.busy.eq((phase != 0) | v1 | v2 | (inflight != 0) | ve | self.pulse.valid)
        return m
