"""The TileController's ADVANCE and its temperature inputs (docs/numerics.md §11) bit-exact with
the twin: drift and decay of every device, reads, updates and pulses at 350 K in the linear
and a table mode."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.emulator import physics
from ohmflow.emulator.config import PRESETS, ChipConfig, DeviceModel, Settings, adc_gain_shift
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.tile.tile_io import Op, op_cycles

from .tilebench import Script, check, execute

ODD = ChipConfig(tiles=2, rows=3, cols=5, lanes=2, name="three-by-five")
SPREAD = {"drift_nu": physics.drift_nu_code(0.08),
          "drift_nu_dtod": physics.dtod_code("drift_nu_dtod", 0.03),
          "decay_rate": physics.decay_rate_code(3600 * 24 * 20),
          "decay_dtod": physics.dtod_code("decay_dtod", 0.2)}
DAY = 24 * 3600 * 1000


@pytest.mark.parametrize("cfg", [PRESETS["tiny"], ODD], ids=lambda c: c.name)
def test_advance_drifts_and_decays_every_device_as_the_twin(cfg):
    rng = np.random.default_rng(5)
    power_up = fabricate(cfg, DeviceModel.soft_bounds(dw_min=0.04), seed=3)
    twin = Twin(cfg, device_map=power_up)
    sc = Script(cfg, twin)
    for t in range(cfg.tiles):
        sc.program(t, rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(cfg.cols, cfg.rows)))
    before = twin.weights.copy()
    sc.set_physics(device_key=0xC0FFEE, temperature=350, **SPREAD)
    for dt in (1000, 3600 * 1000, 30 * DAY):
        sc.advance(dt)
        for t in range(cfg.tiles):
            sc.read(t)
    sc.program(1, twin.read(1))  # tile 1's age restarts: within t0 it only decays
    sc.set_physics(decay_rate=0)
    sc.advance(15_000)
    sc.read(0)
    sc.read(1)
    results, spans = execute(cfg, power_up, sc.steps, rng, p_valid=0.8, p_ready=0.7,
                             max_cycles=3_000_000)
    check(cfg, sc.steps, results)
    assert (np.abs(twin.weights) < np.abs(before)).mean() > 0.5  # the states did move
    for st, span in zip(sc.steps, spans, strict=True):
        if st.op == Op.ADVANCE:  # stalls of data_in add to the word phase only
            assert span >= op_cycles(cfg, st.settings, Op.ADVANCE, table=True)


def test_advance_takes_its_cycle_count():
    cfg = ODD
    twin = Twin(cfg)
    sc = Script(cfg, twin)
    sc.set_physics(device_key=7, temperature=400, **SPREAD)
    sc.advance(DAY)
    sc.advance(0)
    _, spans = execute(cfg, None, sc.steps, np.random.default_rng(0))
    # at 400 K the linear mode runs as the table mode `bottom` (§11.4)
    assert spans == [op_cycles(cfg, st.settings, Op.ADVANCE, table=True) for st in sc.steps]
    assert op_cycles(cfg, Settings.default(cfg), Op.ADVANCE) == 27 + 78 * 15


@pytest.mark.parametrize("table", [False, True], ids=["linear", "table"])
def test_reads_updates_and_pulses_at_350_kelvin_match_the_twin(table):
    cfg = ODD
    rng = np.random.default_rng(8 + table)
    shape = step_shape(DeviceModel(model="PowStep")) if table else None
    power_up = fabricate(cfg, DeviceModel.soft_bounds(dw_min=0.05), seed=4)
    fg, fs = adc_gain_shift(cfg, 2.0, cfg.out_bits, cfg.in_bits)
    s = Settings.default(cfg).replace(cfg, fwd_gain=fg, fwd_shift=fs, bwd_gain=fg, bwd_shift=fs,
                                      fwd_sigma=900, bwd_sigma=700, bl=12, dw_std=3000)
    twin = Twin(cfg, s, power_up, step_shape=shape)
    sc = Script(cfg, twin)
    sc.seed(99)
    pm, im = cfg.p_max, cfg.in_max
    for temperature in (350, 300, 451 - 1):
        sc.set_physics(temperature=temperature)
        for t in range(cfg.tiles):
            sc.program(t, rng.integers(-400, 400, size=(cfg.cols, cfg.rows)))
            sc.forward(t, rng.integers(-im, im + 1, size=(2, cfg.rows)))
            sc.forward(t, rng.integers(-im, im + 1, size=(2, cfg.cols)), backward=True)
            sc.update(t, rng.integers(-pm, pm + 1, size=(2, cfg.rows)),
                      rng.integers(-pm, pm + 1, size=(2, cfg.cols)))
            sc.pulse(t, "row", 1, rng.integers(-9, 10, size=cfg.cols))
            sc.pulse(t, "col", 2, rng.integers(-9, 10, size=cfg.rows))
            sc.read(t)
    results, _ = execute(cfg, power_up, sc.steps, rng, shape=shape, max_cycles=1_000_000)
    check(cfg, sc.steps, results)
