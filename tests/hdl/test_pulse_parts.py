"""The pulse engine's parts one by one, against Python models written from docs/numerics.md:
`TrainBuilder` (trains in memory), `CoincidenceScan` (counts, polarities, draw words) and
`DrawShaper` (the cycle-to-cycle draw arithmetic of the twin)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from ohmflow.emulator import prng
from ohmflow.emulator.config import C2C_SHIFT, SQRT_FRAC, ChipConfig
from ohmflow.emulator.twin import rnd_shift, sqrt_table
from ohmflow.hdl.tile.prng import Lowbias32
from ohmflow.hdl.tile.pulse_draws import DrawShaper
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts, PulseMode
from ohmflow.hdl.tile.pulse_scan import CoincidenceScan
from ohmflow.hdl.tile.pulse_trains import TrainBuilder

from .hdlbench import recv, run, send

CFGS = [
    ChipConfig(tiles=1, rows=5, cols=7, lanes=3, bl_max=22, name="three-lanes"),
    ChipConfig(tiles=2, rows=4, cols=3, lanes=1, bl_max=9, name="one-lane"),
]


def _random_train(code: int, line: int, key: int, bl: int) -> int:
    """Slot t of a line fires iff byte t % 4 of lowbias32(key ^ ((line << 4) | t // 4)) < |code|."""
    train = 0
    for t in range(bl):
        word = prng.lowbias32((key ^ ((line << 4) | (t // 4))) & 0xFFFFFFFF)
        train |= int(((word >> (8 * (t % 4))) & 0xFF) < abs(code)) << t
    return train


class TrainBench(wiring.Component):
    def __init__(self, cfg):
        self.tb = TrainBuilder(cfg)
        self.h = Lowbias32(lanes=cfg.lanes, tag_shape=PulseLayouts(cfg).train_tag)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tb, m.submodules.h = tb, h = self.tb, self.h
        m.d.comb += [h.i.valid.eq(tb.hash_req.valid), h.i.payload.eq(tb.hash_req.payload),
                     tb.hash_res.valid.eq(h.o.valid), tb.hash_res.payload.eq(h.o.payload),
                     h.o.ready.eq(1)]
        return m


@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_train_builder_writes_the_trains(cfg):
    rng = np.random.default_rng(11)
    L, B, g = cfg.lanes, cfg.bl_max, PulseLayouts(cfg).geom
    bench = TrainBench(cfg)
    tb = bench.tb
    bl = B - 3
    n_in, n_out = cfg.rows, cfg.cols - 1
    samples = [(PulseMode.RANDOM, 0), (PulseMode.ROW, int(rng.integers(0, n_in))),
                (PulseMode.COL, int(rng.integers(0, n_out))), (PulseMode.RANDOM, 0)]
    mems = []  # per sample: (rows {addr: [lane trains]}, cols {addr: train}) after it

    async def drive(ctx):
        ctx.set(tb.bl, bl)
        rows, cols = {}, {}
        for mode, index in samples:
            keys = [int(k) for k in rng.integers(0, 2**32, size=2)]
            sample = {"mode": mode, "tile": 0, "n_in": n_in, "n_out": n_out, "index": index,
                      "key_row": keys[0], "key_col": keys[1], "key_c2c": 0}
            if mode == PulseMode.RANDOM:
                codes = [int(c) for c in rng.integers(-cfg.p_max, cfg.p_max + 1,
                                                      size=n_in + n_out)]
            else:
                codes = [int(c) for c in rng.integers(-B, B + 1, size=n_out if
                                                      mode == PulseMode.ROW else n_in)]
            ctx.set(tb.begin, 1)
            ctx.set(tb.begin_mode, mode)
            await ctx.tick()
            ctx.set(tb.begin, 0)
            ctx.set(tb.sample, sample)
            ctx.set(tb.line_q, index // L)
            ctx.set(tb.line_r, index % L)
            ctx.set(tb.active, 1)

            # codes with random stalls; every memory write is recorded until done
            pending = list(codes)
            while True:
                valid = bool(pending) and rng.random() < 0.6
                ctx.set(tb.codes.valid, valid)
                if pending:
                    ctx.set(tb.codes.payload, pending[0])
                _, _, ready, rw, cw, done = await ctx.tick().sample(
                    tb.codes.ready, tb.row_wr, tb.col_wr, tb.done)
                if valid and ready:
                    pending.pop(0)
                for lane in range(L):
                    if (rw.en >> lane) & 1:
                        rows[(rw.addr, lane)] = (rw.data[lane].slots, rw.data[lane].neg)
                if cw.en:
                    cols[cw.addr] = (cw.data.slots, cw.data.neg)
                if done and not pending:
                    break
            ctx.set(tb.codes.valid, 0)
            ctx.set(tb.active, 0)
            mems.append((mode, index, keys, codes, dict(rows), dict(cols)))

    run(bench, drive, max_cycles=20_000)
    full = (1 << B) - 1
    for mode, index, keys, codes, rows, cols in mems:
        if mode == PulseMode.RANDOM:
            want_rows = {i: (_random_train(c, i, keys[0], bl), int(c < 0))
                         for i, c in enumerate(codes[:n_in])}
            want_cols = {j: (_random_train(c, j, keys[1], bl), int(c < 0))
                         for j, c in enumerate(codes[n_in:])}
        else:
            counted = {n: ((1 << abs(c)) - 1, int(c > 0)) for n, c in enumerate(codes)}
            addressed = {index: (full, 0)}
            want_rows, want_cols = ((addressed, counted) if mode == PulseMode.ROW
                                    else (counted, addressed))
        got_rows = {q * L + r: v for (q, r), v in rows.items()}
        got_cols = {(a >> g.r_bits) * L + (a & ((1 << g.r_bits) - 1)): v
                    for a, v in cols.items()}
        for i, want in want_rows.items():
            assert got_rows[i] == want, (mode, "row", i)
        for j, want in want_cols.items():
            assert got_cols[j] == want, (mode, "col", j)


class ScanBench(wiring.Component):
    def __init__(self, cfg, row_init, col_init):
        self.scan = CoincidenceScan(cfg)
        lay = self.scan.lay
        self.rows = Memory(shape=lay.row_word, depth=lay.row_depth, init=row_init)
        self.cols = Memory(shape=lay.col_word, depth=lay.col_depth, init=col_init)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.scan, m.submodules.rows, m.submodules.cols = s, rows, cols = (
            self.scan, self.rows, self.cols)
        rp, cp = rows.read_port(), cols.read_port()
        m.d.comb += [rp.addr.eq(s.row_addr), rp.en.eq(s.row_en), s.row_data.eq(rp.data),
                     cp.addr.eq(s.col_addr), cp.en.eq(s.col_en), s.col_data.eq(cp.data)]
        return m


@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_coincidence_scan_counts_and_draw_words(cfg):
    rng = np.random.default_rng(12)
    L, B, g = cfg.lanes, cfg.bl_max, PulseLayouts(cfg).geom
    rows = [(int(rng.integers(0, 2**B)), int(rng.integers(0, 2))) for _ in range(g.iq * L)]
    cols = [(int(rng.integers(0, 2**B)), int(rng.integers(0, 2))) for _ in range(cfg.cols)]
    row_init = [[{"slots": rows[k * L + r][0], "neg": rows[k * L + r][1]} for r in range(L)]
                for k in range(g.iq)]
    col_depth = PulseLayouts(cfg).col_depth
    col_init = [{"slots": 0, "neg": 0}] * col_depth
    for j, (slots, neg) in enumerate(cols):
        col_init[((j // L) << g.r_bits) | (j % L)] = {"slots": slots, "neg": neg}
    bench = ScanBench(cfg, row_init, col_init)
    scan = bench.scan
    n_in, n_out = cfg.rows - 1, cfg.cols
    key = int(rng.integers(0, 2**32))
    ops = [(PulseMode.RANDOM, 0), (PulseMode.ROW, n_in - 1), (PulseMode.COL, n_out - 2)]
    got = []

    def beat(j, k):
        n = [bin(rows[k * L + r][0] & cols[j][0]).count("1") if k * L + r < n_in else 0
             for r in range(L)]
        up = sum((rows[k * L + r][1] ^ cols[j][1]) << r for r in range(L))
        words = [(key ^ (j * cfg.rows + k * L + r)) & 0xFFFFFFFF for r in range(L)]
        return (j // L, j % L, k, n, up, words)

    want = []
    for mode, index in ops:
        js = [index] if mode == PulseMode.COL else range(n_out)
        ks = [index // L] if mode == PulseMode.ROW else range(-(-n_in // L))
        want.append([beat(j, k) for j in js for k in ks])

    async def drive(ctx):
        for mode, index in ops:
            ctx.set(scan.sample, {"mode": mode, "tile": 0, "n_in": n_in, "n_out": n_out,
                                  "index": index, "key_row": 0, "key_col": 0, "key_c2c": key})
            ctx.set(scan.line_q, index // L)
            ctx.set(scan.line_r, index % L)
            ctx.set(scan.chunk_last, (n_in - 1) // L)
            ctx.set(scan.begin, 1)
            await ctx.tick()
            ctx.set(scan.begin, 0)
            ctx.set(scan.active, 1)
            await ctx.tick().until(scan.last)
            ctx.set(scan.active, 0)
            await ctx.tick().until(~scan.busy)

    async def mon(ctx):
        for w in want:
            beats = await recv(ctx, scan.draws, len(w), rng, 0.5)
            got.append([(b.tag.jq, b.tag.jr, b.tag.chunk, list(b.tag.n), b.tag.up,
                         list(b.word)) for b in beats])

    run(bench, drive, mon, max_cycles=20_000)
    assert got == want


@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_draw_shaper_matches_the_twins_draw_arithmetic(cfg):
    rng = np.random.default_rng(13)
    L, B, g = cfg.lanes, cfg.bl_max, PulseLayouts(cfg).geom
    dut = DrawShaper(cfg)
    dw_std, tile = 40_000, cfg.tiles - 1
    beats = [{"word": [int(w) for w in rng.integers(0, 2**32, size=L)],
              "tag": {"jq": int(rng.integers(0, g.jq)), "jr": int(rng.integers(0, L)),
                      "chunk": int(rng.integers(0, g.iq)),
                      "n": [int(n) for n in rng.integers(0, B + 1, size=L)],
                      "up": int(rng.integers(0, 1 << L))}} for _ in range(40)]
    sqrt = sqrt_table(B)
    got = {}

    async def drive(ctx):
        ctx.set(dut.dw_std, dw_std)
        ctx.set(dut.tile, tile)
        await send(ctx, dut.draws, beats, rng, 0.7)

    async def mon(ctx):
        out = []
        for _ in beats:
            while True:
                r = rng.random() < 0.6
                ctx.set(dut.pulse.ready, r)
                _, _, valid, p, count = await ctx.tick().sample(
                    dut.pulse.valid, dut.pulse.payload, dut.count)
                if valid and r:
                    out.append((p, count))
                    break
        got["out"] = out

    run(dut, drive, mon, max_cycles=20_000)
    for b, (p, count) in zip(beats, got["out"], strict=True):
        n = np.array(b["tag"]["n"])
        e = rnd_shift(prng.gauss(np.array(b["word"], dtype=np.uint32)) * dw_std, C2C_SHIFT)
        t = rnd_shift(e * sqrt[n], SQRT_FRAC)
        assert list(p.t) == list(t)
        assert list(p.n) == list(n)
        assert count == n.sum()
        assert (p.tile, p.jq, p.jr, p.chunk, p.up) == (
            tile, b["tag"]["jq"], b["tag"]["jr"], b["tag"]["chunk"], b["tag"]["up"])
