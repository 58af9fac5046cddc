"""PulseEngine driving AnalogArray: stochastic updates and deterministic pulses against the twin."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from ohmflow.emulator import prng
from ohmflow.emulator.config import PRESETS, ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.layouts import ProgCmd
from ohmflow.hdl.tile.pulse_engine import PulseEngine, PulseMode

from .hdlbench import recv, run, send


class Bench(wiring.Component):
    def __init__(self, cfg, dmap):
        self.pe = PulseEngine(cfg)
        self.arr = AnalogArray(cfg, dmap)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe, m.submodules.arr = self.pe, self.arr
        wiring.connect(m, self.pe.pulse, self.arr.pulse)
        return m


def _prog(cfg, cmd, t, j, i, state=0):
    L = cfg.lanes
    return {"cmd": cmd, "tile": t, "jq": j // L, "jr": j % L, "iq": i // L, "ir": i % L,
            "state": int(state)}


CASES = [
    # cfg, model, settings overrides, batch
    (PRESETS["tiny"], DeviceModel(dw_min=0.02),
     {"bl": 31, "dw_std": 2000, "shapes": ((5, 7), (3, 4))}, 3),
    (ChipConfig(tiles=1, rows=4, cols=3, lanes=1, bl_max=20, name="one-lane"),
     DeviceModel.soft_bounds(dw_min=0.05, w_max=0.3, w_min=-0.3),
     {"bl": 7, "dw_std": 0, "shapes": ((3, 3),)}, 2),
    (ChipConfig(tiles=2, rows=6, cols=5, lanes=4, bl_max=64, name="four-lanes"),
     DeviceModel(model="LinearStep", dw_min=0.03, gamma_up=0.4, gamma_down=0.2, up_down=-0.1),
     {"bl": 64, "dw_std": 65535, "shapes": ((6, 5), (2, 5))}, 2),
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0].name for c in CASES])
def test_update_and_pulses_match_twin(case):
    cfg, model, over, batch = CASES[case]
    rng = np.random.default_rng(40 + case)
    dm = fabricate(cfg, model, seed=case)
    seed = int(rng.integers(0, 2**32))
    s = Settings.default(cfg).replace(cfg, seed=seed, **over)
    twin = Twin(cfg, s, dm)
    w0 = rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(cfg.tiles, cfg.cols, cfg.rows))
    twin.weights[...] = np.clip(w0, dm.wmin, dm.wmax)
    pm = cfg.p_max
    # the op list: ("upd", tile, x, d) or ("pulse", tile, axis, index, counts)
    ops = []
    for t in range(cfg.tiles):
        n_in, n_out = s.shapes[t]
        x = rng.integers(-pm, pm + 1, size=(batch, n_in))
        d = rng.integers(-pm, pm + 1, size=(batch, n_out))
        x[0, 0], d[0, 0] = pm, -pm
        ops.append(("upd", t, x, d))
        for axis in ("row", "col"):
            length, limit = (n_out, n_in) if axis == "row" else (n_in, n_out)
            counts = rng.integers(-cfg.bl_max, cfg.bl_max + 1, size=length)
            ops.append(("pulse", t, axis, int(rng.integers(0, limit)), counts))
    bench = Bench(cfg, dm)
    pe, arr = bench.pe, bench.arr
    beats = []  # (start payload, codes) in order, keys from the twin's nonce sequence
    nonce = 0
    for op in ops:
        if op[0] == "upd":
            _, t, x, d = op
            for b in range(batch):
                keys = {f"key_{n}": prng.op_key(seed, dom, nonce) for n, dom in
                        (("row", prng.DOMAIN_ROW), ("col", prng.DOMAIN_COL),
                         ("c2c", prng.DOMAIN_C2C))}
                beats.append(({"mode": PulseMode.RANDOM, "tile": t, "n_in": s.shapes[t][0],
                               "n_out": s.shapes[t][1], "index": 0, **keys},
                              [*x[b], *d[b]]))
                nonce += 1
            twin.update(t, x, d)
        else:
            _, t, axis, index, counts = op
            beats.append(({"mode": PulseMode.ROW if axis == "row" else PulseMode.COL,
                           "tile": t, "n_in": s.shapes[t][0], "n_out": s.shapes[t][1],
                           "index": index, "key_row": 0, "key_col": 0,
                           "key_c2c": prng.op_key(seed, prng.DOMAIN_C2C, nonce)}, list(counts)))
            nonce += 1
            twin.pulse(t, axis, index, counts)
    devs = [(t, j, i) for t in range(cfg.tiles) for j in range(cfg.cols) for i in range(cfg.rows)]
    got = {}

    async def tb(ctx):
        ctx.set(pe.bl, s.bl)
        ctx.set(pe.dw_std, s.dw_std)
        w = np.clip(w0, dm.wmin, dm.wmax)
        await send(ctx, arr.prog, [_prog(cfg, ProgCmd.STATE, *dv, w[dv]) for dv in devs])
        for start, codes in beats:
            await send(ctx, pe.start, [start])
            await send(ctx, pe.codes, [int(c) for c in codes], rng, 0.6)
            await ctx.tick().until(~pe.busy & arr.idle)
        await send(ctx, arr.prog, [_prog(cfg, ProgCmd.READ, *dv) for dv in devs])

    async def mon(ctx):
        got["out"] = await recv(ctx, arr.prog_out, len(devs), rng, 0.8)

    run(bench, tb, mon, max_cycles=100_000)
    hw = np.array([p.state for p in got["out"]]).reshape(twin.weights.shape)
    assert (twin.weights != np.clip(w0, dm.wmin, dm.wmax)).sum() > 0.2 * w0.size
    np.testing.assert_array_equal(hw, twin.weights)
