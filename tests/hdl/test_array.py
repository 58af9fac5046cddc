"""AnalogArray: program port, forward/transposed reads and the device response, against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS, ChipConfig, DeviceModel
from ohmflow.emulator.fabrication import FIELDS, fabricate
from ohmflow.emulator.twin import rnd_shift
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd

from .hdlbench import recv, run, send

CFGS = [
    PRESETS["tiny"],
    ChipConfig(tiles=1, rows=3, cols=4, lanes=1, name="one-lane"),
    ChipConfig(tiles=3, rows=6, cols=5, lanes=4, bl_max=20, name="four-lanes"),
]
MODELS = [
    DeviceModel(dw_min=0.01),
    DeviceModel(model="LinearStep", dw_min=0.02, gamma_up=0.5, gamma_down=0.3, up_down=0.1),
    DeviceModel.soft_bounds(dw_min=0.03, w_max=1.0, w_min=-0.8),
]


def _prog(cfg, cmd, t, j, i, state=0, dmap=None):
    L = cfg.lanes
    mp = {f: int(getattr(dmap, f)[t, j, i]) for f in FIELDS} if dmap is not None else {}
    return {"cmd": cmd, "tile": t, "jq": j // L, "jr": j % L, "iq": i // L, "ir": i % L,
            "state": int(state), "map": mp}


def _devices(cfg):
    return [(t, j, i) for t in range(cfg.tiles) for j in range(cfg.cols) for i in range(cfg.rows)]


def _wait_idle(dut):
    async def wait(ctx):
        await ctx.tick().until(dut.idle)
    return wait


@pytest.mark.parametrize("k", range(len(CFGS)), ids=[c.name for c in CFGS])
def test_program_map_and_readback(k):
    cfg = CFGS[k]
    rng = np.random.default_rng(10 + k)
    dm0 = fabricate(cfg, MODELS[k % 3], seed=k)
    dm1 = fabricate(cfg, MODELS[(k + 1) % 3], seed=100 + k)
    dut = AnalogArray(cfg, dm0)
    devs = _devices(cfg)
    w = rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(cfg.tiles, cfg.cols, cfg.rows))
    got = {}

    async def tb(ctx):
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.STATE, *d, w[d]) for d in devs], rng, 0.7)
        await ctx.tick().until(dut.idle)
        # new parameters for tile 0 only: states clip into the new bounds
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.MAP, *d, dmap=dm1) for d in devs
                                   if d[0] == 0], rng, 0.7)
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.READ, *d) for d in devs], rng, 0.8)

    async def mon(ctx):
        got["out"] = await recv(ctx, dut.prog_out, len(devs), rng, 0.6)

    run(dut, tb, mon)
    dm = dm0.copy()
    for f in FIELDS:
        getattr(dm, f)[0] = getattr(dm1, f)[0]
    exp = np.clip(w, dm0.wmin, dm0.wmax)
    exp = np.clip(exp, dm.wmin, dm.wmax)
    for d, p in zip(devs, got["out"], strict=True):
        assert p.state == exp[d], d
        for f in FIELDS:
            assert getattr(p.map, f) == getattr(dm, f)[d], (d, f)


def _mvm_beats(cfg, t, transpose, x, n_out):
    """Drive beats of one vector x for outputs 0..n_out-1 (chunks over the input axis)."""
    L = cfg.lanes
    chunks = -(-len(x) // L)
    xp = np.zeros(chunks * L, dtype=np.int64)
    xp[: len(x)] = x
    beats = []
    for o in range(n_out):
        for c in range(chunks):
            beats.append({"tile": t, "transpose": transpose, "line_q": o // L, "line_r": o % L,
                          "chunk": c, "last": c == chunks - 1,
                          "codes": [int(v) for v in xp[c * L:(c + 1) * L]]})
    return beats


@pytest.mark.parametrize("k", range(len(CFGS)), ids=[c.name for c in CFGS])
def test_forward_and_transposed_reads(k):
    cfg = CFGS[k]
    rng = np.random.default_rng(20 + k)
    dut = AnalogArray(cfg)
    # wide bounds so programmed states are kept exactly
    w = rng.integers(-3000, 3000, size=(cfg.tiles, cfg.cols, cfg.rows))
    w[0, 0, 0] = -9000  # below the nominal bound: clipped
    w = np.clip(w, dut.device_map.wmin, dut.device_map.wmax)
    vecs, beats = [], []
    for t in range(cfg.tiles):
        for transpose in (0, 1):
            n_in, n_out = (cfg.rows, cfg.cols) if not transpose else (cfg.cols, cfg.rows)
            x = rng.integers(-cfg.in_max, cfg.in_max + 1, size=n_in)
            x[0] = cfg.in_max
            vecs.append(w[t] @ x if not transpose else w[t].T @ x)
            beats += _mvm_beats(cfg, t, transpose, x, n_out)
    expected = np.concatenate(vecs)
    got = {}

    async def tb(ctx):
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.STATE, *d, w[d]) for d in _devices(cfg)])
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.drive, beats, rng, 0.7)

    async def mon(ctx):
        got["acc"] = await recv(ctx, dut.readout, len(expected), rng, 0.5)

    run(dut, tb, mon)
    assert got["acc"] == [int(v) for v in expected]


def _response(w, n, up, t, s_up, s_dn, k_up, k_dn, lo, hi):
    """The device response with a given cycle-to-cycle draw t (Twin._apply's arithmetic)."""
    s = np.where(up, s_up, s_dn)
    k = np.where(up, k_up, k_dn)
    step = np.maximum(s + rnd_shift(k * w, 20), 0)
    total = n * step + rnd_shift(step * t, 12)
    new = np.clip(np.where(up, w + total, w - total), lo, hi)
    return np.where(n > 0, new, w)


@pytest.mark.parametrize("k", range(len(CFGS)), ids=[c.name for c in CFGS])
def test_pulse_response(k):
    cfg = CFGS[k]
    g = Geometry(cfg)
    rng = np.random.default_rng(30 + k)
    dm = fabricate(cfg, MODELS[k % 3], seed=7 + k)
    dut = AnalogArray(cfg, dm)
    L = cfg.lanes
    shape = (cfg.tiles, cfg.cols, g.iq * L)
    w = rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(cfg.tiles, cfg.cols, cfg.rows))
    w = np.clip(w, dm.wmin, dm.wmax)
    w[:, 0, 0] = dm.wmax[:, 0, 0]  # at the bound
    n = rng.integers(0, cfg.bl_max + 1, size=shape) * (rng.random(shape) < 0.7)
    up = rng.random(shape) < 0.5
    tmax = 2 ** (g.t_shape.width - 1) - 1
    tt = rng.integers(-tmax, tmax + 1, size=shape) >> rng.integers(0, 14, size=shape)
    n[..., cfg.rows:] = 0
    beats = []
    for t in range(cfg.tiles):
        for j in range(cfg.cols):
            for c in range(g.iq):
                sl = slice(c * L, (c + 1) * L)
                beats.append({"tile": t, "jq": j // L, "jr": j % L, "chunk": c,
                              "n": [int(v) for v in n[t, j, sl]],
                              "up": int(sum(int(b) << l for l, b in enumerate(up[t, j, sl]))),
                              "t": [int(v) for v in tt[t, j, sl]]})
    got = {}

    async def tb(ctx):
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.STATE, *d, w[d]) for d in _devices(cfg)])
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.pulse, beats, rng, 0.8)
        await ctx.tick().until(dut.idle)
        await send(ctx, dut.prog, [_prog(cfg, ProgCmd.READ, *d) for d in _devices(cfg)])

    async def mon(ctx):
        got["out"] = await recv(ctx, dut.prog_out, cfg.tiles * cfg.cols * cfg.rows, rng, 0.7)

    run(dut, tb, mon)
    r = slice(0, cfg.rows)
    exp = _response(w, n[..., r], up[..., r], tt[..., r], dm.su, dm.sd, dm.ku, dm.kd,
                    dm.wmin, dm.wmax)
    assert (exp != w).sum() > 0.3 * w.size  # the test moves devices
    assert [p.state for p in got["out"]] == [int(v) for v in exp.ravel()]
