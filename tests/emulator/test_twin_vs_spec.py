"""The vectorised twin against the scalar spec model on randomized chips, settings and data."""

import numpy as np
import pytest
from ohmflow.emulator.config import ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin

from tests.emulator import spec_model as spec

MODELS = [
    DeviceModel(),
    DeviceModel(model="LinearStep", gamma_up=0.5, gamma_down=0.3, up_down=0.1),
    DeviceModel.soft_bounds(w_max=0.3, w_min=-0.2, dw_min=0.01),
    DeviceModel(model="ExpStep", dw_min=0.01, A_up=-1.18445, A_down=-0.081404, a=-0.5, b=-0.5,
                gamma_up=5.0, gamma_down=5.0, up_down=0.259359),
    DeviceModel(model="PowStep", dw_min=0.02, pow_gamma=1.7, pow_up_down=-0.3),
    DeviceModel(model="PiecewiseStep", dw_min=0.02, piecewise_up=(1.5, 1.0, 0.7, 0.2, 0.0),
                piecewise_down=(0.0, 0.4, 0.9, 1.0, 1.3)),
]


def chip(cfg, settings, model, seed):
    """A twin and the spec model of one fabricated chip, with the model's step shape."""
    dmap = fabricate(cfg, model, seed=seed)
    shape = step_shape(model)
    return (Twin(cfg, settings, dmap, step_shape=shape),
            spec.SpecChip(cfg, settings, dmap, shape if model.is_table else None))


def random_settings(cfg, rng, tiles_shapes):
    s = Settings.default(cfg)
    return s.replace(
        cfg,
        in_bits=int(rng.integers(2, cfg.in_bits + 1)),
        out_bits=int(rng.integers(2, cfg.out_bits + 1)),
        fwd_gain=int(rng.integers(0, 2**16)), fwd_shift=int(rng.integers(16, 40)),
        bwd_gain=int(rng.integers(0, 2**16)), bwd_shift=int(rng.integers(16, 40)),
        fwd_sigma=int(rng.integers(0, 5000)), bwd_sigma=int(rng.integers(0, 5000)),
        bl=int(rng.integers(1, cfg.bl_max + 1)), dw_std=int(rng.integers(0, 20000)),
        seed=int(rng.integers(0, 2**32)), shapes=tiles_shapes,
    )


@pytest.mark.parametrize("case", range(18))
def test_twin_equals_spec(case):
    rng = np.random.default_rng(1000 + case)
    cfg = ChipConfig(tiles=2, rows=int(rng.integers(1, 9)), cols=int(rng.integers(1, 9)),
                     lanes=1, bl_max=int(rng.choice([7, 31, 63])), name="rand")
    shapes = [(int(rng.integers(1, cfg.rows + 1)), int(rng.integers(1, cfg.cols + 1)))
              for _ in range(cfg.tiles)]
    settings = random_settings(cfg, rng, shapes)
    tw, ref = chip(cfg, settings, MODELS[case % len(MODELS)], case)
    for t, (n_in, n_out) in enumerate(shapes):
        w = rng.integers(-12000, 12000, size=(n_out, n_in))
        tw.program(t, w)
        ref.program(t, w)
    for _ in range(6):
        t = int(rng.integers(0, cfg.tiles))
        n_in, n_out = shapes[t]
        op = rng.choice(["fwd", "bwd", "upd", "pulse"])
        b = int(rng.integers(1, 4))
        if op == "fwd":
            x = rng.integers(-cfg.in_max, cfg.in_max + 1, size=(b, n_in))
            y, sat = tw.forward(t, x)
            for k in range(b):
                assert (y[k].tolist(), int(sat[k])) == ref.forward(t, x[k].tolist())
        elif op == "bwd":
            d = rng.integers(-cfg.in_max, cfg.in_max + 1, size=(b, n_out))
            y, sat = tw.backward(t, d)
            for k in range(b):
                assert (y[k].tolist(), int(sat[k])) == ref.backward(t, d[k].tolist())
        elif op == "upd":
            x = rng.integers(-cfg.p_max, cfg.p_max + 1, size=(b, n_in))
            d = rng.integers(-cfg.p_max, cfg.p_max + 1, size=(b, n_out))
            n = tw.update(t, x, d)
            for k in range(b):
                assert n[k].tolist() == ref.update(t, x[k].tolist(), d[k].tolist())
        else:
            axis = str(rng.choice(["row", "col"]))
            index = int(rng.integers(0, n_in if axis == "row" else n_out))
            length = n_out if axis == "row" else n_in
            c = rng.integers(-cfg.bl_max, cfg.bl_max + 1, size=length)
            tw.pulse(t, axis, index, c)
            ref.pulse(t, axis, index, c.tolist())
        for tt, (ni, no) in enumerate(shapes):
            assert tw.read(tt).tolist() == [row[:ni] for row in ref.w[tt][:no]]
        assert tw.nonce == ref.nonce


@pytest.mark.parametrize("case", range(12))
def test_pulse_lines_equal_the_spec_pulses_one_after_another(case):
    """Twin.pulse_lines (one compiled call) against the spec's PULSE ops in the same order: ops
    alternate between tiles of different windows, on rows or on columns, with repeated lines."""
    rng = np.random.default_rng(2000 + case)
    cfg = ChipConfig(tiles=3, rows=int(rng.integers(2, 9)), cols=int(rng.integers(2, 9)),
                     lanes=1, bl_max=int(rng.choice([7, 31, 63])), name="rand")
    shapes = [(int(rng.integers(1, cfg.rows + 1)), int(rng.integers(1, cfg.cols + 1)))
              for _ in range(cfg.tiles)]
    settings = random_settings(cfg, rng, shapes)
    tw, ref = chip(cfg, settings, MODELS[case % len(MODELS)], case)
    tw.nonce = ref.nonce = 2**32 - 3  # the nonces wrap inside the batch
    for t, (n_in, n_out) in enumerate(shapes):
        w = rng.integers(-12000, 12000, size=(n_out, n_in))
        tw.program(t, w)
        ref.program(t, w)
    axis = ("row", "col")[case % 2]
    tiles, indices, counts = [], [], []
    for _ in range(int(rng.integers(1, 12))):
        t = int(rng.integers(0, cfg.tiles))
        n_in, n_out = shapes[t]
        tiles.append(t)
        indices.append(int(rng.integers(0, n_in if axis == "row" else n_out)))
        counts.append(rng.integers(-cfg.bl_max, cfg.bl_max + 1,
                                   size=n_out if axis == "row" else n_in))
    before = [dict(c) for c in tw.counters]
    tw.pulse_lines(axis, tiles, indices, counts)
    for t, i, c in zip(tiles, indices, counts, strict=True):
        ref.pulse(t, axis, i, c.tolist())
    for t, (ni, no) in enumerate(shapes):
        assert tw.read(t).tolist() == [row[:ni] for row in ref.w[t][:no]]
        ops = [k for k, tt in enumerate(tiles) if tt == t]
        assert tw.counters[t]["pulse_ops"] - before[t]["pulse_ops"] == len(ops)
        assert tw.counters[t]["pulses"] - before[t]["pulses"] == sum(
            int(np.abs(counts[k]).sum()) for k in ops)
    assert tw.nonce == ref.nonce


def test_same_seed_same_run_and_other_seed_differs():
    cfg = ChipConfig(tiles=1, rows=16, cols=8, lanes=1, name="s")
    rng = np.random.default_rng(5)
    x = rng.integers(-63, 64, (20, 16))
    px = rng.integers(-120, 121, (20, 16))
    pd = rng.integers(-120, 121, (20, 8))

    def run(seed):
        tw = Twin(cfg, device_map=fabricate(cfg, DeviceModel(), 3))
        tw.set(seed=seed)
        tw.program(0, np.full((8, 16), 500))
        y, _ = tw.forward(0, x)
        tw.update(0, px, pd)
        return y, tw.read(0)

    y1, w1 = run(11)
    y2, w2 = run(11)
    y3, w3 = run(12)
    assert np.array_equal(y1, y2) and np.array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    assert not np.array_equal(y1, y3)
