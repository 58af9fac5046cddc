"""The tile controller's parts one by one: `KeyHash` against `prng.op_key`, `CounterBank` against
a Python tally, `ProgramWalker` on an `AnalogArray` against numpy clipping, `SampleWalker` and
`VectorWalker` against the beat sequences docs/gateware.md gives, with stub units around them."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from ohmflow.emulator import prng
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import nominal
from ohmflow.hdl.tile.adc import ADC
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.dac import DAC
from ohmflow.hdl.tile.noise import ReadNoise
from ohmflow.hdl.tile.pulse_layouts import PulseMode
from ohmflow.hdl.tile.tile_counters import CounterBank
from ohmflow.hdl.tile.tile_io import COUNTER_NAMES, Op
from ohmflow.hdl.tile.tile_keys import DOMAINS, Domain, KeyHash
from ohmflow.hdl.tile.tile_program import ProgramWalker
from ohmflow.hdl.tile.tile_samples import SampleWalker
from ohmflow.hdl.tile.tile_vectors import VectorWalker, drive_tag

from .hdlbench import recv, run, send, signed32

CFG = ChipConfig(tiles=2, rows=5, cols=4, lanes=2, name="parts")


def test_key_hash_keys_follow_seed_and_nonce():
    rng = np.random.default_rng(1)
    dut = KeyHash()
    seed = int(rng.integers(0, 2**32))
    # (domain, bump) requests: before a seed (seed 0), after it, after a clear
    plan = [[(Domain.FWD, 1), (Domain.ROW, 0), (Domain.C2C, 1), (Domain.BWD, 1)],
            [(Domain.COL, 0), (Domain.COL, 1), (Domain.C2C, 1)],
            [(Domain.ROW, 1), (Domain.FWD, 0)]]
    want, got = [], []
    for s, reqs in zip((0, seed, 0), plan, strict=True):
        nonce = 0
        for d, bump in reqs:
            want.append(prng.op_key(s, DOMAINS[d.value], nonce))
            nonce += bump

    async def drive(ctx):
        for phase, reqs in enumerate(plan):
            if phase == 1:
                await send(ctx, dut.seed, [seed])
                await ctx.tick().until(dut.seeded)
            if phase == 2:
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
            for d, b in reqs:
                await send(ctx, dut.req, [{"domain": d, "bump": b}], rng, 0.5)
                got.extend(await recv(ctx, dut.key, 1, rng, 0.7))

    run(dut, drive, max_cycles=5_000)
    assert got == want


def test_counter_bank_tallies_stores_reports_and_clears():
    rng = np.random.default_rng(2)
    dut = CounterBank(CFG)
    n = len(COUNTER_NAMES)
    model = np.zeros((CFG.tiles, n), dtype=np.int64)
    reports = []

    async def report(ctx, tile):  # as COUNTERS: the row is read, loaded, then reported
        ctx.set(dut.tile, tile)
        await ctx.tick()
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.reporting, 1)
        words = []
        while len(words) < 2 * n:
            r = rng.random() < 0.6
            ctx.set(dut.report.ready, r)
            _, _, v, w = await ctx.tick().sample(dut.report.valid, dut.report.payload)
            if v and r:
                words.append(w)
        ctx.set(dut.reporting, 0)
        ctx.set(dut.report.ready, 0)
        return [words[2 * k] | words[2 * k + 1] << 32 for k in range(n)]

    async def drive(ctx):
        for _ in range(6):
            tile = int(rng.integers(CFG.tiles))
            ctx.set(dut.tile, tile)
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)
            await ctx.tick()  # the row is read
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            length = 3
            for _ in range(int(rng.integers(1, 12))):
                inc = [int(v) for v in rng.integers(0, 1 << 16, size=n)]
                ctx.set(dut.inc, inc)
                model[tile] += inc
                await ctx.tick()
                length += 1
            ctx.set(dut.inc, [0] * n)
            ctx.set(dut.store, 1)
            model[tile, COUNTER_NAMES.index("cycles")] += length
            await ctx.tick()
            ctx.set(dut.store, 0)
            await ctx.tick()
            reports.append((await report(ctx, tile), list(model[tile])))
        ctx.set(dut.clear, 1)
        await ctx.tick().until(dut.cleared)
        ctx.set(dut.clear, 0)
        await ctx.tick()
        for t in range(CFG.tiles):
            reports.append((await report(ctx, t), [0] * n))

    run(dut, drive, max_cycles=5_000)
    for got, want in reports:
        assert got == [int(v) for v in want]


class ProgBench(wiring.Component):
    def __init__(self, cfg):
        self.walker = ProgramWalker(cfg)
        self.arr = AnalogArray(cfg, nominal(cfg))
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker, m.submodules.arr = w, a = self.walker, self.arr
        wiring.connect(m, w.prog, a.prog)
        wiring.connect(m, a.prog_out, w.prog_out)
        return m


def test_program_walker_writes_and_reads_clipped_words():
    rng = np.random.default_rng(3)
    cfg = CFG
    bench = ProgBench(cfg)
    w = bench.walker
    n_in, n_out = cfg.rows - 1, cfg.cols - 1
    span = cfg.w_max_code - cfg.w_min_code
    states = rng.integers(cfg.w_min_code - span // 4, cfg.w_max_code + span // 4,
                          size=n_in * n_out)
    devices = cfg.rows * cfg.cols
    lims = [(0, cfg.step_max), (0, cfg.step_max), (-cfg.slope_max, cfg.slope_max),
            (-cfg.slope_max, cfg.slope_max), (1, cfg.w_max_code), (cfg.w_min_code, -1)]
    maps = np.stack([rng.integers(lo - 3, hi + 4, size=devices) for lo, hi in lims], axis=1)
    got, dones = {}, []

    async def watch(ctx):
        while "zero" not in got:
            _, _, done = await ctx.tick().sample(w.done)
            if done:
                dones.append(1)

    async def op(ctx, code, tile, words=(), results=0):
        before = len(dones)
        ctx.set(w.op, code)
        ctx.set(w.tile, tile)
        ctx.set(w.begin, 1)
        await ctx.tick()
        ctx.set(w.begin, 0)
        ctx.set(w.active, 1)
        await send(ctx, w.data_in, [int(v) & 0xFFFFFFFF for v in words], rng, 0.7)
        out = await recv(ctx, w.data_out, results, rng, 0.7) if results else []
        while len(dones) == before:
            await ctx.tick()
        ctx.set(w.active, 0)
        await ctx.tick().until(bench.arr.idle)
        return [signed32(v) for v in out]

    async def drive(ctx):
        ctx.set(w.n_in, n_in)
        ctx.set(w.n_out, n_out)
        await op(ctx, Op.PROGRAM, 1, states)
        got["read"] = await op(ctx, Op.READ, 1, results=n_in * n_out)
        await op(ctx, Op.MAP_WRITE, 0, maps.ravel())
        got["map"] = await op(ctx, Op.MAP_READ, 0, results=6 * devices)
        await op(ctx, Op.RESET, 0)
        got["zero"] = await op(ctx, Op.READ, 1, results=n_in * n_out)

    run(bench, drive, watch, max_cycles=20_000)
    # PROGRAM clips to the weight codes, the array then to the device's bounds
    dm = nominal(cfg)
    lo_w, hi_w = dm.wmin[1, :n_out, :n_in].ravel(), dm.wmax[1, :n_out, :n_in].ravel()
    want = np.clip(np.clip(states, cfg.w_min_code, cfg.w_max_code), lo_w, hi_w)
    assert got["read"] == list(want)
    lo, hi = [0, 0, -cfg.slope_max, -cfg.slope_max, 0, cfg.w_min_code], \
        [cfg.step_max, cfg.step_max, cfg.slope_max, cfg.slope_max, cfg.w_max_code, 0]
    assert got["map"] == list(np.clip(maps, lo, hi).ravel())
    assert got["zero"] == [0] * (n_in * n_out)


class SampleBench(wiring.Component):
    def __init__(self, cfg):
        self.walker = SampleWalker(cfg)
        self.keys = KeyHash()
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker, m.submodules.keys = w, k = self.walker, self.keys
        wiring.connect(m, w.key_req, k.req)
        wiring.connect(m, k.key, w.key)
        return m


@pytest.mark.parametrize("update", [True, False], ids=["update", "pulse"])
def test_sample_walker_starts_each_sample_with_its_keys(update):
    rng = np.random.default_rng(4)
    bench = SampleBench(CFG)
    w = bench.walker
    n_in, n_out, axis, index = 4, 3, 1, 2
    count = 3 if update else 1
    per = n_in + n_out if update else (n_in if axis else n_out)
    words = [int(v) for v in rng.integers(-40, 41, size=count * per)]
    starts, codes = [], []

    async def drive(ctx):
        for name, v in (("update", update), ("count", count), ("tile", 1), ("axis", axis),
                        ("index", index), ("n_in", n_in), ("n_out", n_out)):
            ctx.set(getattr(w, name), v)
        ctx.set(w.go, 1)
        await ctx.tick()
        ctx.set(w.go, 0)
        await send(ctx, w.data_in, [v & 0xFFFFFFFF for v in words], rng, 0.7)
        await ctx.tick().until(w.done)

    async def engine(ctx):  # a stub pulse engine: takes a start, the codes, then idles
        for _ in range(count):
            ctx.set(w.engine_idle, 0)
            starts.append((await recv(ctx, w.start, 1, rng, 0.5))[0])
            codes.extend(await recv(ctx, w.codes, per, rng, 0.6))
            for _ in range(int(rng.integers(0, 5))):
                await ctx.tick()
            ctx.set(w.engine_idle, 1)
            await ctx.tick()

    run(bench, drive, engine, max_cycles=5_000)
    assert codes == words
    mode = PulseMode.RANDOM if update else PulseMode.COL
    for nonce, s in enumerate(starts):
        assert (s.mode, s.tile, s.n_in, s.n_out, s.index) == (mode, 1, n_in, n_out, index)
        assert [s.key_row, s.key_col, s.key_c2c] == [
            prng.op_key(0, d, nonce) for d in (prng.DOMAIN_ROW, prng.DOMAIN_COL,
                                               prng.DOMAIN_C2C)]


def _walker_units(cfg):
    return DAC(cfg, drive_tag(cfg)), ReadNoise(cfg), ADC(cfg)


class VectorBench(wiring.Component):
    def __init__(self, cfg):
        self.units = _walker_units(cfg)  # their ports type the walker's; stubs stand in for them
        self.walker = VectorWalker(cfg, *self.units)
        self.keys = KeyHash()
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker, m.submodules.keys = w, k = self.walker, self.keys
        for n, unit in enumerate(self.units):  # elaborated, left unconnected
            m.submodules[f"unit{n}"] = unit
        wiring.connect(m, w.key_req, k.req)
        wiring.connect(m, k.key, w.key)
        return m


@pytest.mark.parametrize("transpose", [0, 1], ids=["forward", "backward"])
def test_vector_walker_loads_drives_and_returns_vectors(transpose):
    rng = np.random.default_rng(5 + transpose)
    cfg = CFG
    L = cfg.lanes
    bench = VectorBench(cfg)
    w = bench.walker
    count, n_dac, n_adc = 3, 5, 3
    words = [int(v) for v in rng.integers(-9, 10, size=count * n_dac)]
    results = [{"code": int(c), "sat": int(s)} for c, s in
               zip(rng.integers(-100, 101, size=count * n_adc),
                   rng.integers(0, 2, size=count * n_adc), strict=True)]
    got = {}
    chunks = -(-n_dac // L)
    want_reqs = [(k, j // L, j % L, k == chunks - 1, j == n_adc - 1 and k == chunks - 1)
                 for _ in range(count) for j in range(n_adc) for k in range(chunks)]

    async def drive(ctx):
        for name, v in (("count", count), ("tile", 1), ("transpose", transpose),
                        ("n_dac", n_dac), ("n_adc", n_adc)):
            ctx.set(getattr(w, name), v)
        ctx.set(w.begin, 1)
        await ctx.tick()
        ctx.set(w.begin, 0)
        ctx.set(w.on, 1)
        ctx.set(w.active, 1)
        await send(ctx, w.data_in, [v & 0xFFFFFFFF for v in words], rng, 0.7)
        await ctx.tick().until(w.issued)
        ctx.set(w.active, 0)
        await ctx.tick().until(w.drained)

    async def dac(ctx):
        got["codes"] = await recv(ctx, w.dac_codes, len(words), rng, 0.5)

    async def reqs(ctx):
        got["reqs"] = await recv(ctx, w.dac_req, len(want_reqs), rng, 0.5)

    async def noise(ctx):
        got["noise"] = await recv(ctx, w.noise, count, rng, 0.5)

    async def adc(ctx):
        await send(ctx, w.results, results, rng, 0.6)

    async def out(ctx):
        got["out"] = await recv(ctx, w.data_out, len(results), rng, 0.7)

    run(bench, drive, dac, reqs, noise, adc, out, max_cycles=10_000)
    assert [signed32(c.code) for c in got["codes"]] == words
    assert [c.last for c in got["codes"]] == [int(k % n_dac == n_dac - 1)
                                              for k in range(len(words))]
    assert [(r.chunk, r.tag.line_q, r.tag.line_r, r.tag.last, r.end) for r in got["reqs"]] == \
        want_reqs
    assert all(r.tag.tile == 1 and r.tag.transpose == transpose for r in got["reqs"])
    domain = prng.DOMAIN_BWD if transpose else prng.DOMAIN_FWD
    assert [(n.key, n.count) for n in got["noise"]] == [
        (prng.op_key(0, domain, k), n_adc) for k in range(count)]
    assert got["out"] == [(r["code"] & 0xFFFF) | r["sat"] << 16 for r in results]
