"""The array's step shapes (§5.4.1) under the Amaranth simulator: the range divider, and pulse
beats through the tables (ExpStep centered, PowStep and PiecewiseStep bottom) against the twin's
`shape_steps`, after map writes that change rinv."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.lib import data
from ohmflow.emulator.config import SHAPE_NODES, ChipConfig, DeviceModel
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import range_reciprocal, shape_steps, step_shape
from ohmflow.emulator.twin import rnd_shift
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd
from ohmflow.hdl.tile.shape_unit import RangeDivider

from .hdlbench import recv, run, send
from .test_array import _devices, _prog

CFG = ChipConfig(tiles=2, rows=5, cols=7, lanes=3, bl_max=20, name="shapes")
RERAM_ES = dict(A_up=-1.18445, A_down=-0.081404, a=-0.5, b=-0.5, gamma_up=5.0, gamma_down=5.0,
                up_down=0.259359)
MODELS = {
    "exp_reram": DeviceModel(model="ExpStep", dw_min=0.004, dw_min_dtod=0.2, **RERAM_ES),
    "pow_biased": DeviceModel(model="PowStep", dw_min=0.004, pow_gamma=2.5, pow_up_down=0.3,
                              w_max_dtod=0.3, w_min_dtod=0.3),
    "piecewise_7": DeviceModel(model="PiecewiseStep", dw_min=0.006,
                               piecewise_up=(1.5, 1.2, 1.0, 0.7, 0.4, 0.2, 0.1),
                               piecewise_down=(0.1, 0.4, 0.6, 0.9, 1.0, 1.2, 1.3)),
}


def test_range_divider():
    """rinv of spans 1, 2, the largest and random ones, one a cycle, equal to the twin's."""
    cfg = CFG
    rng = np.random.default_rng(5)
    spans = [1, 2, 3, 2 ** cfg.w_bits - 2, 2 ** cfg.w_bits - 1,
             *rng.integers(1, 2 ** cfg.w_bits - 1, size=60)]
    dut = RangeDivider(cfg, data.StructLayout({"k": 8}))
    got = []

    async def tb(ctx):
        for k in range(len(spans) + dut.LATENCY + 1):
            ctx.set(dut.i, {"valid": k < len(spans), "span": int(spans[k % len(spans)]),
                            "tag": {"k": k % 256}})
            await ctx.tick()
            o = ctx.get(dut.o)
            if o.valid:
                got.append((o.tag.k, o.rinv))

    run(dut, tb)
    span_arr = np.asarray(spans, dtype=np.int64)
    exp = range_reciprocal(cfg, span_arr, np.zeros_like(span_arr))
    assert got == [(k, int(v)) for k, v in enumerate(exp)]


def _twin_response(cfg, shape, w, n, up, t, dm):
    """§5.4 with the step shape: `shape_steps` for the step, then n pulses and the c2c draw."""
    step = np.where(up, shape_steps(cfg, shape, True, w, dm.su, dm.ku, dm.wmin, dm.wmax),
                    shape_steps(cfg, shape, False, w, dm.sd, dm.kd, dm.wmin, dm.wmax))
    total = n * step + rnd_shift(step * t, 12)
    new = np.clip(np.where(up, w + total, w - total), dm.wmin, dm.wmax)
    return np.where(n > 0, new, w)


@pytest.mark.parametrize("name", list(MODELS))
def test_pulse_through_tables(name):
    """Pulse beats at random states and at both bounds, after a map write (new rinv): every
    device's new state equals the twin's, in the model's mode."""
    cfg = CFG
    g = Geometry(cfg)
    model = MODELS[name]
    shape = step_shape(model)
    rng = np.random.default_rng(sum(map(ord, name)))
    dm0 = fabricate(cfg, DeviceModel(dw_min=0.01), seed=3)  # power-up map: rinv from init
    dm = fabricate(cfg, model, seed=4)
    dm.ku[...] = rng.integers(-2000, 2000, size=dm.ku.shape)  # slopes add to b
    L = cfg.lanes
    full = (cfg.tiles, cfg.cols, g.iq * L)
    w = rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(cfg.tiles, cfg.cols, cfg.rows))
    w = np.clip(w, dm.wmin, dm.wmax)
    w[:, 0, :] = dm.wmax[:, 0, :]  # at the upper bound
    w[:, 1, :] = dm.wmin[:, 1, :]  # at the lower bound
    n = rng.integers(1, 7, size=full) * (rng.random(full) < 0.8)  # few clip at the bounds
    n[:, 2, 0] = cfg.bl_max
    up = rng.random(full) < 0.5
    tmax = 2 ** (g.t_shape.width - 1) - 1
    tt = rng.integers(-tmax, tmax + 1, size=full) >> rng.integers(0, 14, size=full)
    n[..., cfg.rows:] = 0
    beats = []
    for t in range(cfg.tiles):
        for j in range(cfg.cols):
            for c in range(g.iq):
                sl = slice(c * L, (c + 1) * L)
                beats.append({"tile": t, "jq": j // L, "jr": j % L, "chunk": c,
                              "n": [int(v) for v in n[t, j, sl]],
                              "up": int(sum(int(b) << lane for lane, b in enumerate(up[t, j, sl]))),
                              "t": [int(v) for v in tt[t, j, sl]]})
    dut = AnalogArray(cfg, dm0)
    got = {}

    async def tb(ctx):
        for d, table in enumerate((shape.up, shape.down)):
            for k in range(SHAPE_NODES):
                ctx.set(dut.shape_wr, {"en": 1, "down": d, "node": k, "value": int(table[k])})
                await ctx.tick()
        ctx.set(dut.shape_wr.en, 0)
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.MAP, *d, dmap=dm) for d in _devices(cfg)])
        ctx.set(dut.shape_mode, shape.code)
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.STATE, *d, w[d]) for d in _devices(cfg)])
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.pulse, beats, rng, 0.8)
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.READ, *d) for d in _devices(cfg)])

    async def mon(ctx):
        got["out"] = await recv(ctx, dut.prog_out, cfg.tiles * cfg.cols * cfg.rows, rng, 0.7)

    run(dut, tb, mon)
    r = slice(0, cfg.rows)
    exp = _twin_response(cfg, shape, w, n[..., r], up[..., r], tt[..., r], dm)
    assert (exp != w).sum() > 0.3 * w.size  # the test moves devices
    for d, (s, k) in enumerate(((dm.su, dm.ku), (dm.sd, dm.kd))):  # the shape matters here
        lin = shape_steps(cfg, step_shape(DeviceModel()), d == 0, w, s, k, dm.wmin, dm.wmax)
        tab = shape_steps(cfg, shape, d == 0, w, s, k, dm.wmin, dm.wmax)
        assert (lin != tab).mean() > 0.5
    assert [p.state for p in got["out"]] == [int(v) for v in exp.ravel()]
