"""Cycle counts: every operation takes exactly `op_cycles` busy cycles without stalls, and the
per-tile ``cycles`` counter adds them up; RESET clears states, counters, seed and nonce."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS, ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate, nominal
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.tile.tile_io import Op, op_cycles

from .tilebench import Script, Step, check, execute

COUNTED = {Op.FORWARD, Op.BACKWARD, Op.UPDATE, Op.PULSE, Op.PROGRAM, Op.READ, Op.MAP_WRITE,
           Op.MAP_READ}
CFGS = [PRESETS["tiny"], ChipConfig(tiles=1, rows=3, cols=4, lanes=1, bl_max=16, name="one-lane"),
        ChipConfig(tiles=3, rows=9, cols=6, lanes=4, name="four-lanes")]


@pytest.mark.parametrize("k,table", [(k, False) for k in range(len(CFGS))] + [(2, True)],
                         ids=[c.name for c in CFGS] + ["four-lanes-table"])
def test_cycle_counts_follow_the_formulas(k, table):
    """Linear mode on three configs; a table mode (PowStep's tables) on one (§5.4.1)."""
    cfg = CFGS[k]
    rng = np.random.default_rng(70 + k)
    shape = step_shape(DeviceModel(model="PowStep")) if table else None
    twin = Twin(cfg, step_shape=shape) if table else Twin(cfg)
    sc = Script(cfg, twin)
    for trial in range(3):
        shapes = tuple((int(rng.integers(1, cfg.rows + 1)), int(rng.integers(1, cfg.cols + 1)))
                       for _ in range(cfg.tiles))
        sc.set(in_bits=int(rng.integers(2, cfg.in_bits + 1)),
               out_bits=int(rng.integers(2, cfg.out_bits + 1)),
               bl=int(rng.integers(1, cfg.bl_max + 1)), shapes=shapes)
        t = int(rng.integers(0, cfg.tiles))
        n_in, n_out = shapes[t]
        b = int(rng.integers(1, 4))
        if trial == 0:
            sc.seed(int(rng.integers(0, 2**32)))
            sc.load_map(t, nominal(cfg).tile(t))
            sc.read_map(t)
        sc.program(t, rng.integers(-300, 300, size=(n_out, n_in)))
        sc.read(t)
        sc.forward(t, rng.integers(-3, 4, size=(b, n_in)))
        sc.forward(t, rng.integers(-3, 4, size=(b, n_out)), backward=True)
        sc.update(t, rng.integers(-256, 257, size=(b, n_in)),
                  rng.integers(-256, 257, size=(b, n_out)))
        sc.pulse(t, "row", int(rng.integers(0, n_in)), rng.integers(-9, 10, size=n_out))
        sc.pulse(t, "col", int(rng.integers(0, n_out)), rng.integers(-9, 10, size=n_in))
        sc.counters(t)
    results, spans = execute(cfg, None, sc.steps, rng, shape=shape)
    check(cfg, sc.steps, results)
    total = [0] * cfg.tiles
    for st, span in zip(sc.steps, spans, strict=True):
        assert span == op_cycles(cfg, st.settings, st.op, st.tile, st.axis, st.count,
                                 table=table), st.op
        if st.op in COUNTED:
            total[st.tile] += span
        if st.op == Op.COUNTERS:
            assert st.meta["cycles"] == total[st.tile]


def test_reset_clears_everything_and_restarts_the_prng():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(80)
    dm = fabricate(cfg, DeviceModel(dw_min=0.05), seed=3)
    s = Settings.default(cfg).replace(cfg, fwd_sigma=20000, shapes=((5, 7), (4, 6)))
    twin = Twin(cfg, s, dm)
    sc = Script(cfg, twin)
    sc.seed(12345)
    for t in range(cfg.tiles):
        n_in, n_out = s.shapes[t]
        sc.program(t, rng.integers(-2000, 2000, size=(n_out, n_in)))
        sc.update(t, rng.integers(-256, 257, size=(2, n_in)),
                  rng.integers(-256, 257, size=(2, n_out)))
    sc.reset()
    for t in range(cfg.tiles):
        sc.read(t)
        sc.counters(t)
        assert not any(sc.steps[-1].expected)
    sc.read_map(1)  # the device map survives
    sc.forward(0, rng.integers(-60, 61, size=(2, 5)))  # noise of seed 0, nonce 0 again
    results, spans = execute(cfg, dm, sc.steps, rng, p_valid=0.8, p_ready=0.8)
    check(cfg, sc.steps, results)
    assert all(v == 0 for v in results[-4]) and all(v == 0 for v in results[-6])


def test_invalid_commands_complete_at_once_and_take_no_operands():
    cfg = CFGS[2]  # three tiles: tile 3 does not exist
    rng = np.random.default_rng(90)
    s = Settings.default(cfg).replace(cfg, shapes=((4, 3), (9, 6), (2, 2)))
    twin = Twin(cfg, s)
    sc = Script(cfg, twin)
    sc.program(0, rng.integers(-99, 99, size=(3, 4)))
    for op, kw in [(Op.NOP, {}), (Op.FORWARD, {"tile": 3, "count": 2}),
                   (Op.PULSE, {"tile": 0, "axis": 0, "index": 4}),
                   (Op.PULSE, {"tile": 2, "axis": 1, "index": 2}), (Op.READ, {"tile": 3})]:
        sc.steps.append(Step(op=op, settings=twin.settings, **kw))
    sc.read(0)
    results, spans = execute(cfg, None, sc.steps, rng)
    check(cfg, sc.steps, results)
    assert spans[1:6] == [0] * 5
