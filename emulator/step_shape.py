"""Step-shape tables: aihwkit's ExpStep, PowStep and PiecewiseStep on the chip (numerics §5.4).

The three devices share one form: the step of one pulse is the device's own scale s (``su`` or
``sd``, drawn at fabrication with aihwkit's ``dw_min``, ``up_down`` and their ``*_dtod``) times a
shape G(x) of the device's normalized position x in its own range [wmin, wmax]. G is the same for
every device of the chip, so the chip holds it once per direction as a table of `SHAPE_NODES`
fixed-point nodes and interpolates linearly between them.

`StepShape` is that table; `step_shape` builds it from a `DeviceModel`; `shape_steps` is the
contract's integer step in numpy (the compiled kernels compute the same); `float_steps` is
aihwkit's float formula; `error_profile` is the largest |G_chip - G_float| the table allows at
each position, so that |step - s G_float| <= s * E[pos] + 1/2 state LSB for every device and
state, and `error_bound` its maximum over a span of positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ohmflow.emulator.config import (
    RINV_EXTRA,
    SHAPE_BITS,
    SHAPE_FRAC,
    SHAPE_MODES,
    SHAPE_NODES,
    SHAPE_POS_FRAC,
    SHAPE_SEG_BITS,
    SHAPE_SEGS,
    SLOPE_FRAC,
    ChipConfig,
    DeviceModel,
)

ONE = 1 << SHAPE_FRAC  #: G = 1.0
NODE_MAX = 2**SHAPE_BITS - 1
POS_BITS = SHAPE_SEG_BITS + SHAPE_POS_FRAC  #: the position runs over 0 .. 2**POS_BITS
#: each model's indexing of its table (config.SHAPE_MODES)
MODEL_MODES = {"ExpStep": "centered", "PowStep": "bottom", "PiecewiseStep": "bottom"}


@dataclass(frozen=True, eq=False)
class StepShape:
    """A chip's step-shape tables: indexing ``mode`` and node values (SHAPE_FRAC) per direction."""

    mode: str
    up: np.ndarray
    down: np.ndarray

    def validate(self) -> StepShape:
        """Check the mode, the node count and the node format; raises ValueError naming them."""
        if self.mode not in SHAPE_MODES:
            raise ValueError(f"step-shape mode must be one of {', '.join(SHAPE_MODES)}, "
                             f"got {self.mode!r}")
        for name in ("up", "down"):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != (SHAPE_NODES,):
                got = getattr(a, "shape", type(a).__name__)
                raise ValueError(f"step-shape table {name!r} must have {SHAPE_NODES} nodes, "
                                 f"got {got}")
            if a.dtype.kind not in "iu":
                raise ValueError(f"step-shape table {name!r} must be integer, got {a.dtype}")
            if a.min() < 0 or a.max() > NODE_MAX:
                raise ValueError(f"step-shape table {name!r} nodes must lie in [0, {NODE_MAX}] "
                                 f"(G < {2 ** (SHAPE_BITS - SHAPE_FRAC)} at {SHAPE_FRAC} "
                                 f"fractional bits), got [{int(a.min())}, {int(a.max())}]")
        if self.mode == "linear" and not (np.all(self.up == ONE) and np.all(self.down == ONE)):
            raise ValueError(f"the linear step shape has every node at 1.0 ({ONE})")
        return self

    @property
    def code(self) -> int:
        return SHAPE_MODES.index(self.mode)

    def table(self) -> np.ndarray:
        """Both directions as one C-contiguous int64 array (2, SHAPE_NODES): up, then down."""
        return np.ascontiguousarray(np.stack([self.up, self.down]), dtype=np.int64)

    def equals(self, other: StepShape) -> bool:
        return (self.mode == other.mode and np.array_equal(self.up, other.up)
                and np.array_equal(self.down, other.down))


def linear_shape() -> StepShape:
    """The shape of a chip without a table: G = 1 (the step of §5.4 is s + k w)."""
    ones = np.full(SHAPE_NODES, ONE, dtype=np.int64)
    return StepShape("linear", ones, ones.copy())


def _piecewise(nodes: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """aihwkit's piecewise interpolation of ``nodes`` at u = (w - w_min) / range."""
    v = np.asarray(nodes, dtype=np.float64)
    sections = len(v) - 1
    if sections <= 0:
        return np.full_like(u, v[0])
    scaled = np.maximum(u * sections, 0.0)
    idx = np.minimum(np.floor(scaled).astype(np.int64), sections - 1)
    t = np.minimum(scaled - idx, 1.0)
    return (1.0 - t) * v[idx] + t * v[idx + 1]


def _pow_gammas(model: DeviceModel) -> tuple[float, float]:
    """PowStep's exponents without device-to-device variation (rpu_powstep_device.cpp)."""
    ud = model.pow_up_down
    up_bias = 0.0 if ud > 0 else ud
    down_bias = -ud if ud > 0 else 0.0
    return abs((1.0 + up_bias) * model.pow_gamma), abs((1.0 + down_bias) * model.pow_gamma)


def shape_curves(model: DeviceModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aihwkit's float shapes G_up(x), G_down(x) of a table model at table positions x in [0, 1].

    ExpStep (centered, w / range = 2x - 1): z = 2a (2x - 1) + b, G_up = max(0, 1 - A_up e^(γ_up z)),
    G_down = max(0, 1 - A_down e^(-γ_down z)); PowStep (bottom): G_up = (1 - x)^γ_up,
    G_down = x^γ_down; PiecewiseStep (bottom): the nodes interpolated at x.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if model.model == "ExpStep":
            z = 2.0 * model.a * (2.0 * x - 1.0) + model.b
            up = np.maximum(1.0 - model.A_up * np.exp(model.gamma_up * z), 0.0)
            down = np.maximum(1.0 - model.A_down * np.exp(-model.gamma_down * z), 0.0)
        elif model.model == "PowStep":
            gu, gd = _pow_gammas(model)
            up = np.power(np.maximum(1.0 - x, 0.0), gu)
            down = np.power(np.maximum(x, 0.0), gd)
        elif model.model == "PiecewiseStep":
            up = _piecewise(model.piecewise_up, x)
            down = _piecewise(model.piecewise_down, x)
        else:
            raise ValueError(f"{model.model} has no step-shape table (its step is s + k w)")
    return up, down


def step_shape(model: DeviceModel) -> StepShape:
    """The chip's tables for ``model``: node k holds round(G(k / SHAPE_SEGS) · 2^SHAPE_FRAC).

    The linear shape for ConstantStep, LinearStep and SoftBounds. A node beyond the format
    (G >= 256, or not finite) is refused with the parameters that produce it.
    """
    if not model.is_table:
        return linear_shape()
    x = np.arange(SHAPE_NODES) / SHAPE_SEGS
    tables = []
    for name, g in zip(("up", "down"), shape_curves(model, x), strict=True):
        bad = ~np.isfinite(g) | (np.rint(g * ONE) > NODE_MAX)
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(
                f"{model.model}: the {name} step shape reaches {g[k]:.4g} times the device's step "
                f"at table position {k}/{SHAPE_SEGS} of its range; the chip holds at most "
                f"{NODE_MAX / ONE:.4f} (docs/numerics.md §5.4). Check "
                + ("A_up/A_down, gamma_up/gamma_down, a, b" if model.model == "ExpStep"
                   else "the node values"))
        tables.append(np.rint(g * ONE).astype(np.int64))
    return StepShape(MODEL_MODES[model.model], tables[0], tables[1]).validate()


def range_reciprocal(cfg: ChipConfig, wmax: np.ndarray, wmin: np.ndarray) -> np.ndarray:
    """rinv = floor(2^(w_bits + RINV_EXTRA) / (wmax - wmin)) per device (derived from the map)."""
    span = np.asarray(wmax, dtype=np.int64) - np.asarray(wmin, dtype=np.int64)
    return (np.int64(1) << (cfg.w_bits + RINV_EXTRA)) // span


def positions(cfg: ChipConfig, mode: str, w, wmin, wmax) -> np.ndarray:
    """The table position 0 .. 2^POS_BITS of states w (within [wmin, wmax]), §5.4."""
    w, wmin, wmax = (np.asarray(a, dtype=np.int64) for a in (w, wmin, wmax))
    rinv = range_reciprocal(cfg, wmax, wmin)
    if mode == "centered":
        return ((w - (wmin - wmax)) * rinv) >> (cfg.w_bits + 1)
    return ((w - wmin) * rinv) >> cfg.w_bits


def shape_gain(table: np.ndarray, pos) -> np.ndarray:
    """g = rnd(T[idx] (2^POS_FRAC - f) + T[idx + 1] f, POS_FRAC): the interpolated node value."""
    pos = np.asarray(pos, dtype=np.int64)
    table = np.asarray(table, dtype=np.int64)
    idx = np.minimum(pos >> SHAPE_POS_FRAC, SHAPE_SEGS - 1)
    f = pos - (idx << SHAPE_POS_FRAC)
    acc = table[idx] * ((1 << SHAPE_POS_FRAC) - f) + table[idx + 1] * f
    return (acc + (1 << (SHAPE_POS_FRAC - 1))) >> SHAPE_POS_FRAC


def shape_steps(cfg: ChipConfig, shape: StepShape, up: bool, w, s, k, wmin, wmax) -> np.ndarray:
    """The step of one pulse (§5.4): max(0, rnd(s g, SHAPE_FRAC) + rnd(k w, SLOPE_FRAC))."""
    w, s, k = (np.asarray(a, dtype=np.int64) for a in (w, s, k))
    if shape.mode == "linear":
        base = s
    else:
        g = shape_gain(shape.up if up else shape.down, positions(cfg, shape.mode, w, wmin, wmax))
        base = (s * g + (1 << (SHAPE_FRAC - 1))) >> SHAPE_FRAC
    return np.maximum(base + ((k * w + (1 << (SLOPE_FRAC - 1))) >> SLOPE_FRAC), 0)


def float_steps(model: DeviceModel, up: bool, w, s, wmin, wmax) -> np.ndarray:
    """aihwkit's float step of one pulse, in state LSBs, at the devices' own codes.

    ``s`` is the device's scale (``su``/``sd``), bounds and states are taken as they are
    (state LSBs), and the formulas are those of rpu_expstep_device.cpp,
    rpu_powstep_device.cpp and rpu_piecewisestep_device.cpp without noise.
    """
    w, s, wmin, wmax = (np.asarray(a, dtype=np.float64) for a in (w, s, wmin, wmax))
    span = wmax - wmin
    if model.model == "ExpStep":
        x = (w / span + 1.0) / 2.0  # z = 2a w / span + b = 2a (2x - 1) + b
    else:
        x = (w - wmin) / span
    g_up, g_down = shape_curves(model, x)
    return s * (g_up if up else g_down)


def error_profile(model: DeviceModel, shape: StepShape | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """E[pos] = max |g(pos) / 2^SHAPE_FRAC - G(x)| over the states that map to position pos.

    A state at exact position X (in units of 2^-POS_BITS of the table) gets pos with
    X - 2 < pos <= X (the floors of rinv and of the product, §5.4), so x runs over
    [pos, pos + 2) / 2^POS_BITS; G is sampled at 17 points of that interval (it is monotone
    or linear there). Returns (up, down), each of length 2^POS_BITS + 1.
    """
    shape = shape or step_shape(model)
    pos = np.arange((1 << POS_BITS) + 1)
    out = []
    for d, table in enumerate((shape.up, shape.down)):
        g = shape_gain(table, pos) / ONE
        worst = np.zeros(len(pos))
        for off in np.linspace(0.0, 2.0, 17):
            x = np.minimum((pos + off) / (1 << POS_BITS), 1.0)
            worst = np.maximum(worst, np.abs(g - shape_curves(model, x)[d]))
        out.append(worst)
    return out[0], out[1]


def error_bound(model: DeviceModel, shape: StepShape | None = None,
                span: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """The largest `error_profile` (up, down) over table positions x in ``span``.

    For every device and state at such positions, |step - s G(x)| <= s E + 1/2 state LSB.
    """
    up, down = error_profile(model, shape)
    x = np.arange(len(up)) / (len(up) - 1)
    on = (x >= span[0]) & (x <= span[1])
    return float(up[on].max()), float(down[on].max())
