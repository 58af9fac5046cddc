"""TileController end to end: every operation bit-exact with the twin, on several geometries."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.emulator.config import (
    PRESETS,
    ChipConfig,
    DeviceModel,
    Settings,
    adc_gain_shift,
    dw_std_code,
    sigma_code,
)
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.twin import Twin

from .tilebench import Script, check, execute

MODELS = {
    "const": DeviceModel(dw_min=0.02),
    "linear": DeviceModel(model="LinearStep", dw_min=0.03, gamma_up=0.5, gamma_down=0.3,
                          up_down=0.1),
    "soft": DeviceModel.soft_bounds(dw_min=0.04, w_max=0.5, w_min=-0.4),
}


def random_settings(cfg: ChipConfig, rng, shapes) -> Settings:
    in_bits = int(rng.integers(2, cfg.in_bits + 1))
    out_bits = int(rng.integers(2, cfg.out_bits + 1))
    fg, fs = adc_gain_shift(cfg, float(rng.uniform(0.3, 4.0)), out_bits, in_bits)
    bg, bs = adc_gain_shift(cfg, float(rng.uniform(0.3, 4.0)), out_bits, in_bits)
    return Settings.default(cfg).replace(
        cfg, in_bits=in_bits, out_bits=out_bits, fwd_gain=fg, fwd_shift=fs, bwd_gain=bg,
        bwd_shift=bs, fwd_sigma=sigma_code(float(rng.uniform(0, 3))),
        bwd_sigma=sigma_code(float(rng.uniform(0, 3))), bl=int(rng.integers(1, cfg.bl_max + 1)),
        dw_std=dw_std_code(float(rng.uniform(0, 1))), shapes=shapes)


def scenario(cfg: ChipConfig, model: str, seed: int, batch: int = 2):
    """A randomized sequence of every operation on every tile; returns (map, steps)."""
    rng = np.random.default_rng(seed)
    power_up = fabricate(cfg, MODELS[model], seed=seed)
    shapes = tuple((int(rng.integers(1, cfg.rows + 1)), int(rng.integers(1, cfg.cols + 1)))
                   for _ in range(cfg.tiles))
    shapes = ((cfg.rows, cfg.cols),) + shapes[1:]  # tile 0 uses the full array
    twin = Twin(cfg, random_settings(cfg, rng, shapes), power_up)
    sc = Script(cfg, twin)
    sc.seed(int(rng.integers(0, 2**32)))
    pm, im = cfg.p_max, cfg.in_max
    other = fabricate(cfg, MODELS[model], seed=seed + 1)
    for t in range(cfg.tiles):
        n_in, n_out = shapes[t]
        sc.load_map(t, other.tile(t)) if t % 2 == 0 else None
        w = rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(n_out, n_in)) // 8
        sc.program(t, w)
        sc.read(t)
        for rep in range(2):
            sc.set(**{k: getattr(random_settings(cfg, rng, shapes), k) for k in
                      ("in_bits", "out_bits", "fwd_gain", "fwd_shift", "bwd_gain", "bwd_shift",
                       "fwd_sigma", "bwd_sigma", "bl", "dw_std")})
            x = rng.integers(-im, im + 1, size=(batch, n_in))
            d = rng.integers(-im, im + 1, size=(batch, n_out))
            sc.forward(t, x)
            sc.forward(t, d, backward=True)
            xu = rng.integers(-pm, pm + 1, size=(batch, n_in))
            du = rng.integers(-pm, pm + 1, size=(batch, n_out))
            xu[:, 0] = pm * (1 - 2 * rep)
            sc.update(t, xu, du)
            axis = ("row", "col")[rep]
            length, limit = (n_out, n_in) if axis == "row" else (n_in, n_out)
            sc.pulse(t, axis, int(rng.integers(0, limit)),
                     rng.integers(-cfg.bl_max, cfg.bl_max + 1, size=length))
        sc.read(t)
        sc.counters(t)
    sc.read_map(cfg.tiles - 1)
    return power_up, sc.steps, twin


CASES = [
    (PRESETS["tiny"], "const", 1),
    (ChipConfig(tiles=2, rows=3, cols=4, lanes=1, bl_max=16, name="one-lane"), "soft", 2),
    (ChipConfig(tiles=3, rows=6, cols=5, lanes=4, in_bits=5, out_bits=7, name="four-lanes"),
     "linear", 3),
]


def _run_and_check(cfg, model, seed, batch=2):
    dm, steps, twin = scenario(cfg, model, seed, batch)
    # the scenario reaches saturation and device bounds, so both are compared
    assert sum(c["adc_saturations"] for c in twin.counters) > 0
    at_bound = (twin.weights == twin.device_map.wmax) | (twin.weights == twin.device_map.wmin)
    assert at_bound.any()
    results, _ = execute(cfg, dm, steps, np.random.default_rng(seed), p_valid=0.7, p_ready=0.6,
                         max_cycles=2_000_000)
    check(cfg, steps, results)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0].name for c in CASES])
def test_all_operations_match_twin(case):
    _run_and_check(*CASES[case])


def test_thirteen_by_eleven_five_lanes_matches_twin():
    cfg = ChipConfig(tiles=2, rows=13, cols=11, lanes=5, bl_max=40, name="13x11")
    _run_and_check(cfg, "soft", 11, batch=3)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_larger_tiles_match_twin(model):
    cfg = ChipConfig(tiles=3, rows=24, cols=20, lanes=6, name="24x20")
    _run_and_check(cfg, model, 12, batch=4)
