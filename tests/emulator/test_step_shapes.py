"""ExpStep, PowStep and PiecewiseStep (numerics §5.4 step shapes): the twin against aihwkit's float
formulas within the contract's stated bound, the numpy reference against the compiled kernels,
and bad values refused."""

import numpy as np
import pytest
from ohmflow.emulator.config import SHAPE_NODES, ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import (
    POS_BITS,
    StepShape,
    error_bound,
    error_profile,
    float_steps,
    linear_shape,
    positions,
    shape_steps,
    step_shape,
)
from ohmflow.emulator.twin import Twin

#: an odd geometry: every lane count and window edge is exercised by the tile tests elsewhere
CFG = ChipConfig(tiles=2, rows=9, cols=7, lanes=1, name="shapes")
RERAM_ES = dict(dw_min=0.00135, A_up=-1.18445, A_down=-0.081404, a=-0.5, b=-0.5, gamma_up=5.0,
                gamma_down=5.0, up_down=0.259359, dw_min_dtod=0.2, up_down_dtod=0.05)
MODELS = {
    "exp_default": DeviceModel(model="ExpStep", dw_min=0.004),
    "exp_reram": DeviceModel(model="ExpStep", **RERAM_ES),
    "pow_default": DeviceModel(model="PowStep", dw_min=0.004),
    "pow_sqrt": DeviceModel(model="PowStep", dw_min=0.004, pow_gamma=0.5),
    "pow_biased": DeviceModel(model="PowStep", dw_min=0.004, pow_gamma=2.5, pow_up_down=0.3),
    "piecewise_5": DeviceModel(model="PiecewiseStep", dw_min=0.004,
                               piecewise_up=(1.5, 1.0, 0.7, 0.2, 0.0),
                               piecewise_down=(0.0, 0.4, 0.9, 1.0, 1.3)),
    "piecewise_7": DeviceModel(model="PiecewiseStep", dw_min=0.004,
                               piecewise_up=(1.5, 1.2, 1.0, 0.7, 0.4, 0.2, 0.1),
                               piecewise_down=(0.1, 0.4, 0.6, 0.9, 1.0, 1.2, 1.3)),
}


def one_pulse_steps(model, seed):
    """Each device of both tiles at a random state gets one noise-free pulse up, then (from the
    same states) one down, through the twin's PULSE; returns states, map and the steps seen."""
    dmap = fabricate(CFG, model, seed)
    settings = Settings.default(CFG).replace(CFG, dw_std=0)
    tw = Twin(CFG, settings, dmap, step_shape=step_shape(model))
    rng = np.random.default_rng(seed)
    lo, hi = dmap.wmin, dmap.wmax
    w0 = rng.integers(lo, hi + 1)
    w0[:, 0, 0], w0[:, 1, 0] = lo[:, 0, 0], hi[:, 1, 0]  # both bounds are reached
    out = {}
    for up in (True, False):
        for t in range(CFG.tiles):
            tw.program(t, w0[t])
            for j in range(CFG.cols):
                tw.pulse(t, "col", j, np.full(CFG.rows, 1 if up else -1))
        out[up] = np.stack([tw.read(t) for t in range(CFG.tiles)])
    return dmap, w0, out


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("seed", [1, 2])
def test_twin_step_is_aihwkit_float_step_within_the_stated_bound(name, seed):
    """|step - s G(x)| <= s E[pos] + 1/2 LSB (numerics §5.4), clipped to the device's bounds
    like aihwkit (clipping never widens the gap); the numpy reference is bit-exact with the
    twin, and the shape really shapes (the steps are not all s)."""
    model = MODELS[name]
    shape = step_shape(model)
    prof = error_profile(model, shape)
    dmap, w0, after = one_pulse_steps(model, seed)
    lo, hi = dmap.wmin, dmap.wmax
    pos = positions(CFG, shape.mode, w0, lo, hi)
    for up, (s, k) in ((True, (dmap.su, dmap.ku)), (False, (dmap.sd, dmap.kd))):
        sign = 1 if up else -1
        ref = shape_steps(CFG, shape, up, w0, s, k, lo, hi)
        assert np.array_equal(after[up], np.clip(w0 + sign * ref, lo, hi))
        exact = np.clip(w0 + sign * float_steps(model, up, w0, s, lo, hi), lo, hi)
        bound = s * prof[0 if up else 1][pos] + 0.5
        gap = np.abs(after[up] - exact)
        assert (gap <= bound + 1e-9).all(), (name, up, float((gap - bound).max()))
        assert not np.array_equal(ref, s)


@pytest.mark.parametrize("name,central", [
    ("exp_default", (0.0012, 0.0017)), ("exp_reram", (0.004, 0.03)),
    ("pow_default", (0.0004, 0.0003)), ("pow_sqrt", (0.0005, 0.0005)),
    ("piecewise_5", (0.0006, 0.0006)), ("piecewise_7", (0.0016, 0.0013)),
])
def test_stated_bounds_over_the_central_half(name, central):
    """The bounds docs/numerics.md states for positions 0.25 … 0.75 (a device's nominal range for
    ExpStep; the middle of the range for the others), in units of the device's scale s."""
    up, down = error_bound(MODELS[name], span=(0.25, 0.75))
    assert up <= central[0] and down <= central[1]


def test_exact_when_the_nodes_divide_the_table():
    """Piecewise nodes that fall on table nodes are interpolated exactly as aihwkit does: the
    only error is the node rounding (2^-13) and the position's floor."""
    up, down = error_bound(MODELS["piecewise_5"])
    assert max(up, down) < 1.5 / 4096 + 2 * 0.5 * 4 / 2**POS_BITS


def test_powstep_gamma_one_is_soft_bounds_shape():
    """pow_gamma 1 (aihwkit: 'reduces essentially to SoftBoundsDevice'): G_up = 1 - x exactly at
    the nodes."""
    shape = step_shape(DeviceModel(model="PowStep"))
    k = np.arange(SHAPE_NODES)
    assert np.array_equal(shape.up, np.rint((1 - k / (SHAPE_NODES - 1)) * 4096).astype(int))
    assert np.array_equal(shape.down, shape.up[::-1])


def test_existing_models_have_the_linear_shape_and_unchanged_results():
    """ConstantStep/LinearStep/SoftBounds build the linear shape; a twin with it loaded explicitly
    computes what the default twin computes."""
    for m in ("ConstantStep", "LinearStep", "SoftBounds"):
        assert step_shape(DeviceModel(model=m)).equals(linear_shape())
    dmap = fabricate(CFG, DeviceModel.soft_bounds(dw_min=0.01), 4)
    a, b = Twin(CFG, device_map=dmap), Twin(CFG, device_map=dmap, step_shape=linear_shape())
    rng = np.random.default_rng(3)
    x = rng.integers(-256, 257, (5, CFG.rows))
    d = rng.integers(-256, 257, (5, CFG.cols))
    for tw in (a, b):
        tw.program(0, np.full((CFG.cols, CFG.rows), 300))
        tw.update(0, x, d)
    assert np.array_equal(a.read(0), b.read(0))


def test_aihwkit_defaults_by_name():
    m = DeviceModel(model="ExpStep")
    assert (m.A_up, m.A_down, m.gamma_up, m.gamma_down, m.a, m.b) == (
        0.00081, 0.36833, 12.44625, 12.78785, 0.244, 0.2425)
    assert DeviceModel(model="LinearStep").gamma_up == 0.0
    p = DeviceModel(model="PowStep")
    assert (p.pow_gamma, p.pow_up_down) == (1.0, 0.0)
    assert DeviceModel(model="PiecewiseStep").piecewise_up == (1.0,)


@pytest.mark.parametrize("kw,word", [
    ({"model": "PowStep", "pow_gamma_dtod": 0.1}, "pow_gamma_dtod must be 0"),
    ({"model": "PowStep", "pow_up_down_dtod": 0.2}, "pow_up_down_dtod must be 0"),
    ({"model": "PowStep", "pow_gamma": -1.0}, "pow_gamma"),
    ({"model": "PiecewiseStep", "piecewise_up": (1, 2), "piecewise_down": (1,)},
     "same number of nodes"),
    ({"model": "PiecewiseStep", "piecewise_up": (1.0,) * 130, "piecewise_down": (1.0,) * 130},
     "1 to 129 nodes"),
    ({"model": "PiecewiseStep", "piecewise_up": (1.0, -0.5), "piecewise_down": (1.0, 1.0)},
     r"piecewise_up\[1\]"),
    ({"model": "PiecewiseStep", "piecewise_up": "1,2"}, "list of numbers"),
    ({"model": "ExpStep", "A_up": float("nan")}, "A_up"),
])
def test_bad_model_values_refused(kw, word):
    with pytest.raises(ValueError, match=word):
        DeviceModel(**kw)


def test_shape_beyond_the_node_format_refused():
    with pytest.raises(ValueError, match="down step shape reaches .* at most 255.9998"):
        step_shape(DeviceModel(model="ExpStep", A_down=-100.0, gamma_down=10.0))


def test_bad_tables_refused_by_the_twin():
    tw = Twin(CFG)
    good = step_shape(MODELS["pow_default"])
    with pytest.raises(ValueError, match="must have 129 nodes"):
        tw.load_step_shape(StepShape("bottom", good.up[:-1], good.down))
    with pytest.raises(ValueError, match=r"nodes must lie in \[0, 1048575\]"):
        tw.load_step_shape(StepShape("bottom", good.up - 5000, good.down))
    with pytest.raises(ValueError, match="mode must be one of linear, bottom, centered"):
        tw.load_step_shape(StepShape("top", good.up, good.down))
    with pytest.raises(ValueError, match="linear step shape has every node at 1.0"):
        tw.load_step_shape(StepShape("linear", good.up, good.down))
    with pytest.raises(ValueError, match="must be a StepShape"):
        tw.load_step_shape("PowStep")
    assert tw.read_step_shape().equals(linear_shape())  # nothing changed
