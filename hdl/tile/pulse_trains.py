"""The pulse engine's first phase: one sample's codes in, its pulse trains written to memory.

Random mode: the codes arrive x for rows 0..n_in-1, then d for columns 0..n_out-1. Line ``n`` of an
axis hashes ``key ^ ((n << 4) | g)`` for groups ``g < ceil(bl/4)``, L groups per cycle; slot ``t``
fires iff byte ``t % 4`` of group ``t // 4`` is below ``|code|`` (clipped to ``p_max``). The train
(slots >= bl masked) and the code's sign are written when its last round returns.
Deterministic mode: each count ``c`` writes a train of ``|c|`` leading slots with sign
``c > 0``, the cycle after it is taken; the addressed line's all-slots train is written in the
op's first cycle, before any count's.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import thermometer, times
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts, PulseMode
from ohmflow.hdl.tile.tile_io import WORD

__all__ = ["TrainBuilder"]


class TrainBuilder(wiring.Component):
    """Codes to stored trains for one sample.

    Ports
    -----
    begin: the sample's start beat is accepted this cycle; ``begin_mode`` is its mode.
    sample: the sample's parameters, registered (valid from the cycle after ``begin``).
    line_q, line_r: the addressed line ``index`` as quotient and remainder by L (registered).
    bl: run-time pulse-train length, sampled at ``begin``.
    active: the engine is in its train phase (codes are taken only then).
    codes: In stream of signed words: the sample's codes or counts.
    hash_req: Out stream of group hashes to `Lowbias32` (always accepted: the hash never stalls
        in this phase, since a sample starts with no draw in flight).
    hash_res: In stream of the hashed groups (always accepted).
    row_wr, col_wr: writes of the row- and column-train memories.
    done: every code taken, every train written, no group in flight.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.lay = lay = PulseLayouts(cfg)
        g = lay.geom
        super().__init__({
            "begin": In(1),
            "begin_mode": In(PulseMode),
            "sample": In(lay.start),
            "line_q": In(g.index_shape(g.q_bits)),
            "line_r": In(g.index_shape(g.r_bits)),
            "bl": In(range(cfg.bl_max + 1)),
            "active": In(1),
            "codes": In(stream.Signature(signed(WORD))),
            "hash_req": Out(stream.Signature(lay.train_hash, always_ready=True)),
            "hash_res": In(stream.Signature(lay.train_hash, always_ready=True)),
            "row_wr": Out(lay.row_write()),
            "col_wr": Out(lay.col_write()),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        g = lay.geom
        L, B = cfg.lanes, cfg.bl_max
        nmax = max(cfg.rows, cfg.cols)
        par = self.sample
        det = par.mode != PulseMode.RANDOM

        slot_mask = Signal(B, reset_less=True)
        groups = Signal(range(lay.groups_max + 1), reset_less=True)
        with m.If(self.begin):
            m.d.sync += [slot_mask.eq(thermometer(self.bl, B)), groups.eq((self.bl + 3) >> 2)]

        # the code walk: which line of which axis the next code belongs to
        axis = Signal()  # 0: rows (x), 1: columns (d)
        line = Signal(range(nmax + 1))
        line_q = Signal(g.index_shape(g.q_bits))
        line_r = Signal(g.index_shape(g.r_bits))
        n_axis = Mux(axis, par.n_out, par.n_in)
        all_taken = Signal()
        written = Signal(range(cfg.rows + cfg.cols + 1))
        total = Mux(par.mode == PulseMode.RANDOM, par.n_in + par.n_out,
                    Mux(par.mode == PulseMode.ROW, par.n_out, par.n_in))
        # random mode: the line being hashed, round by round
        hashing = Signal()
        hashed = Signal(lay.train_tag, reset_less=True)
        hashed_line = Signal(range(max(2, nmax)), reset_less=True)
        hash_round = Signal(range(lay.rounds_max + 1))
        last_round = times(hash_round + 1, L) >= groups
        issue = hashing & self.active
        code = self.codes.payload
        abs_code = Mux(code < 0, -code, code)
        m.d.comb += self.codes.ready.eq(
            self.active & ~all_taken & (det | ~hashing | (issue & last_round)))
        with m.If(self.begin):
            m.d.sync += [axis.eq(self.begin_mode == PulseMode.ROW), line.eq(0), line_q.eq(0),
                         line_r.eq(0), all_taken.eq(0), written.eq(0), hashing.eq(0)]
        take = self.codes.valid & self.codes.ready
        with m.If(take):
            with m.If(line + 1 == n_axis):
                m.d.sync += [line.eq(0), line_q.eq(0), line_r.eq(0), axis.eq(1)]
                with m.If(axis | det):
                    m.d.sync += all_taken.eq(1)
            with m.Else():
                m.d.sync += line.eq(line + 1)
                with m.If(line_r == L - 1):
                    m.d.sync += [line_r.eq(0), line_q.eq(line_q + 1)]
                with m.Else():
                    m.d.sync += line_r.eq(line_r + 1)
            with m.If(~det):
                m.d.sync += [
                    hashing.eq(1), hash_round.eq(0), hashed_line.eq(line),
                    hashed.axis.eq(axis), hashed.q.eq(line_q), hashed.r.eq(line_r),
                    hashed.absc.eq(Mux(abs_code > cfg.p_max, cfg.p_max, abs_code)),
                    hashed.neg.eq(code < 0),
                ]
        with m.Elif(issue):
            with m.If(last_round):
                m.d.sync += hashing.eq(0)
            with m.Else():
                m.d.sync += hash_round.eq(hash_round + 1)
        key = Mux(hashed.axis, par.key_col, par.key_row)
        group_base = times(hash_round, L)
        req = self.hash_req.payload
        for lane in range(L):
            m.d.comb += req.word[lane].eq(key ^ Cat((group_base + lane)[:4], hashed_line))
        m.d.comb += [self.hash_req.valid.eq(hashing), req.tag.eq(hashed),
                     req.tag.round.eq(hash_round), req.tag.last.eq(last_round)]

        # deterministic counts: registered with their line, the train written the next cycle
        # (``written`` counts the code when it is taken; the scan reads two cycles later)
        count_v = Signal()
        count_abs = Signal(range(B + 1), reset_less=True)
        count_neg = Signal(reset_less=True)
        count_axis = Signal(reset_less=True)
        count_q = Signal.like(line_q, reset_less=True)
        count_r = Signal.like(line_r, reset_less=True)
        m.d.sync += count_v.eq(take & det)
        with m.If(take & det):
            m.d.sync += [count_abs.eq(Mux(abs_code > B, B, abs_code)), count_neg.eq(code > 0),
                         count_axis.eq(axis), count_q.eq(line_q), count_r.eq(line_r)]
        count_train = Signal(lay.train)
        m.d.comb += [count_train.slots.eq(thermometer(count_abs, B)),
                     count_train.neg.eq(count_neg)]

        # hashed groups: place each round's nibbles, write the train after its last round
        res = self.hash_res.payload
        tag = res.tag
        train = Signal(B, reset_less=True)
        nibbles = [Cat(*[res.word[lane][8 * b:8 * b + 8] < tag.absc for b in range(4)])
                   for lane in range(L)]
        placed = []
        for p in range(lay.groups_max):
            width = min(4, B - 4 * p)
            placed.append(Mux(tag.round == p // L, nibbles[p % L][:width],
                              train[4 * p:4 * p + width]))
        train_next = Cat(*placed)
        round_back = self.hash_res.valid
        with m.If(round_back):
            m.d.sync += train.eq(train_next)
        hashed_train = Signal(lay.train)
        m.d.comb += [hashed_train.slots.eq(train_next & slot_mask), hashed_train.neg.eq(tag.neg)]
        write_hashed = round_back & tag.last
        w_axis = Mux(det, count_axis, tag.axis)
        w_q, w_r = Mux(det, count_q, tag.q), Mux(det, count_r, tag.r)
        # a deterministic op's addressed line fires in every slot with polarity 0
        addressed = Signal()
        m.d.sync += addressed.eq(self.begin & (self.begin_mode != PulseMode.RANDOM))
        ones = Const((1 << B) - 1, B)
        w_train = Mux(det, count_train.as_value(), hashed_train.as_value())
        w_en = write_hashed | count_v
        row_wr, col_wr = self.row_wr, self.col_wr
        q, r = self.line_q, self.line_r
        m.d.comb += [
            row_wr.addr.eq(Mux(addressed, q, w_q)),
            row_wr.data.eq(Cat(*[Mux(addressed, Cat(Mux(r == lane, ones, 0), Const(0, 1)),
                                     w_train) for lane in range(L)])),
            row_wr.en.eq(Mux(addressed, Mux(par.mode == PulseMode.ROW, (1 << L) - 1, 0),
                             Cat(*[(w_r == lane) & w_en & (w_axis == 0) for lane in range(L)]))),
            col_wr.addr.eq(Mux(addressed, Cat(r[:g.r_bits], q), Cat(w_r[:g.r_bits], w_q))),
            col_wr.data.eq(Mux(addressed, Cat(ones, Const(0, 1)), w_train)),
            col_wr.en.eq(Mux(addressed, par.mode == PulseMode.COL, w_en & (w_axis == 1))),
        ]
        with m.If(write_hashed | (take & det)):
            m.d.sync += written.eq(written + 1)
        m.d.comb += self.done.eq(all_taken & (written == total) & ~hashing)
        return m
