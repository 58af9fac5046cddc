"""DAC, ADC and read-noise unit against the twin's arithmetic, with back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.emulator import prng
from ohmflow.emulator.config import NOISE_FRAC, PRESETS, ChipConfig
from ohmflow.hdl.tile.adc import ADC
from ohmflow.hdl.tile.dac import DAC
from ohmflow.hdl.tile.noise import ReadNoise

from .hdlbench import recv, run, send

CFGS = [PRESETS["tiny"], ChipConfig(tiles=1, rows=3, cols=4, lanes=1, in_bits=4, out_bits=5,
                                    name="one-lane")]


@pytest.mark.parametrize("k", range(len(CFGS)), ids=[c.name for c in CFGS])
def test_adc_matches_twin_arithmetic(k):
    cfg = CFGS[k]
    rng = np.random.default_rng(k)
    dut = ADC(cfg)
    n = 60
    amax = 2 ** (cfg.acc_bits - 1) - 1
    acc = rng.integers(-amax, amax + 1, size=n) >> rng.integers(0, cfg.acc_bits, size=n)
    acc[:2] = [amax, -amax - 1]
    g = rng.integers(-510, 511, size=n)
    results = []
    for bits, gain, shift, sigma in [(cfg.out_bits, 65535, 16, 0), (2, 1234, 40, 65535),
                                     (cfg.out_bits - 1, 40000, 63, 300),
                                     (3, 777, int(rng.integers(16, 40)), 5000)]:
        got = {}

        async def tb(ctx, bits=bits, gain=gain, shift=shift, sigma=sigma):
            ctx.set(dut.bits, bits)
            ctx.set(dut.gain, gain)
            ctx.set(dut.shift, shift)
            ctx.set(dut.sigma, sigma)
            await send(ctx, dut.i, [int(a) for a in acc], rng, 0.7)

        async def tb_noise(ctx):
            await send(ctx, dut.noise, [int(v) for v in g], rng, 0.8)

        async def mon(ctx, got=got):
            got["o"] = await recv(ctx, dut.o, n, rng, 0.5)

        run(dut, tb, tb_noise, mon, max_cycles=5000)
        v = ((acc * gain) >> (shift - NOISE_FRAC)) + g * sigma + (1 << (NOISE_FRAC - 1))
        q = v >> NOISE_FRAC
        mx = 2 ** (bits - 1) - 1
        code = np.clip(q, -mx, mx)
        assert [p.code for p in got["o"]] == code.tolist()
        assert [p.sat for p in got["o"]] == (q != code).astype(int).tolist()
        results.append((q != code).sum())
    assert max(results) > 0 and min(results) < n  # saturation both seen and not seen


def test_adc_latency_is_bits_plus_two():
    cfg = PRESETS["tiny"]
    dut = ADC(cfg)
    lat = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.noise.valid, 1)
        for bits in (2, 5, cfg.out_bits):
            ctx.set(dut.bits, bits)
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            n = 0
            while not ctx.get(dut.o.valid):
                await ctx.tick()
                n += 1
            lat[bits] = n + 1  # cycles from the accepting edge to the first visible cycle
            await ctx.tick()

    run(dut, tb, max_cycles=200)
    assert lat == {b: b + 2 for b in lat}


@pytest.mark.parametrize("k", range(len(CFGS)), ids=[c.name for c in CFGS])
def test_dac_clips_buffers_and_waits(k):
    cfg = CFGS[k]
    rng = np.random.default_rng(10 + k)
    dut = DAC(cfg, tag_shape=8)
    L = cfg.lanes
    bits = cfg.in_bits - 1
    mx = 2 ** (bits - 1) - 1
    n = max(cfg.rows, cfg.cols) - 1
    x = rng.integers(-(2**20), 2**20, size=n) >> rng.integers(0, 21, size=n)
    chunks = -(-n // L)
    reqs = [{"chunk": c, "tag": 100 + c} for c in range(dut.chunks)]
    got, times = {}, {}

    async def tb(ctx):
        ctx.set(dut.bits, bits)
        clipped = 0
        for v_idx, v in enumerate(x):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"code": int(v) & 0xFFFFFFFF, "last": v_idx == n - 1})
            while True:
                _, _, rdy, clp = await ctx.tick().sample(dut.i.ready, dut.clipped)
                if rdy:
                    clipped += clp
                    break
        ctx.set(dut.i.valid, 0)
        times["clipped"] = clipped
        times["last"] = 0
        ctx.set(dut.req.valid, 1)
        ctx.set(dut.req.payload, reqs[0])
        wait = 0
        while True:
            _, _, rdy = await ctx.tick().sample(dut.req.ready)
            if rdy:
                break
            wait += 1
        times["wait"] = wait
        ctx.set(dut.req.valid, 0)
        await send(ctx, dut.req, reqs[1:], rng, 0.6)

    async def mon(ctx):
        got["o"] = await recv(ctx, dut.o, len(reqs), rng, 0.6)

    run(dut, tb, mon, max_cycles=2000)
    exp = np.zeros(dut.chunks * L, dtype=np.int64)
    exp[:n] = np.clip(x, -mx, mx)
    assert [list(p.codes) for p in got["o"]] == exp.reshape(-1, L).tolist()
    assert [p.tag for p in got["o"]] == [r["tag"] for r in reqs]
    assert chunks <= dut.chunks
    assert times["clipped"] == (np.abs(x) > mx).sum() > 0
    # first request accepted 2**(bits-1) cycles after the last code
    assert times["wait"] == 2 ** (bits - 1) - 1


def test_read_noise_matches_prng():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(5)
    dut = ReadNoise(cfg)
    keys = [int(k) for k in rng.integers(0, 2**32, size=3)]
    counts = [7, 1, 5]
    got = {}

    async def tb(ctx):
        await send(ctx, dut.i, [{"key": k, "count": c} for k, c in zip(keys, counts, strict=True)],
                   rng, 0.5)

    async def mon(ctx):
        got["o"] = await recv(ctx, dut.o, sum(counts), rng, 0.5)

    run(dut, tb, mon, max_cycles=2000)
    exp = np.concatenate([prng.gauss(prng.draw(k, np.arange(c))) for k, c in
                          zip(keys, counts, strict=True)])
    assert [int(v) for v in got["o"]] == exp.tolist()


def test_dac_loads_the_next_vector_while_one_is_read():
    """Two buffers: vector B loads right after A; C waits for A's last request. Pulses run one
    at a time, each 2**(bits-1) cycles from the later of its last code and the previous pulse's
    end; a vector's requests follow its pulse and the previous vector's last request."""
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(12)
    dut = DAC(cfg, tag_shape=8)
    bits, n, L = cfg.in_bits, max(cfg.rows, cfg.cols), cfg.lanes
    t = 2 ** (bits - 1)
    mx = t - 1
    assert dut.chunks - 1 + n < t  # so every vector's start is set by the previous pulse
    vecs = [rng.integers(-2 * mx, 2 * mx, size=n) for _ in range(3)]
    plan = [(v, c) for v in range(3) for c in range(dut.chunks)]
    code_at, req_at, out = {}, {}, []

    async def tb(ctx):
        ctx.set(dut.bits, bits)
        ctx.set(dut.o.ready, 1)
        li = ci = ri = 0
        for cycle in range(4 * t + 50):
            ctx.set(dut.i.valid, li < 3)
            if li < 3:
                ctx.set(dut.i.payload, {"code": int(vecs[li][ci]) & 0xFFFFFFFF,
                                        "last": ci == n - 1})
            ctx.set(dut.req.valid, ri < len(plan))
            if ri < len(plan):
                v, c = plan[ri]
                ctx.set(dut.req.payload, {"chunk": c, "tag": 16 * v + c,
                                          "end": c == dut.chunks - 1})
            _, _, i_rdy, r_rdy, o_val, o_pay = await ctx.tick().sample(
                dut.i.ready, dut.req.ready, dut.o.valid, dut.o.payload)
            if o_val:
                out.append((o_pay.tag, list(o_pay.codes)))
            if li < 3 and i_rdy:
                code_at[(li, ci)] = cycle
                ci += 1
                if ci == n:
                    li, ci = li + 1, 0
            if ri < len(plan) and r_rdy:
                req_at[plan[ri]] = cycle
                ri += 1

    run(dut, tb, max_cycles=6 * t + 100)
    last = [code_at[(v, n - 1)] for v in range(3)]
    first = [req_at[(v, 0)] for v in range(3)]
    a_end = req_at[(0, dut.chunks - 1)]
    assert code_at[(1, 0)] == last[0] + 1  # B loads while A waits for its pulse
    assert code_at[(2, 0)] == a_end + 1  # C takes A's buffer once A's last request is in
    assert first == [last[0] + t, last[0] + 2 * t, last[0] + 3 * t]
    exp = []
    for v in range(3):
        codes = np.zeros(dut.chunks * L, dtype=np.int64)
        codes[:n] = np.clip(vecs[v], -mx, mx)
        exp += [(16 * v + c, row) for c, row in enumerate(codes.reshape(-1, L).tolist())]
    assert out == exp
