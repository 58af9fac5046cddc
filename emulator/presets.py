"""Device presets under aihwkit's names and values, and device config files.

Each `Preset` is one of aihwkit's single-device RPU configs (``aihwkit.simulator.presets``):
its device (``presets/devices.py``, e.g. ``ReRamSBPresetDevice``) mapped onto a `DeviceModel`
with aihwkit's parameter values, and its periphery (``PresetIOParameters``: out_bound 20,
out_noise 0.1, 7-bit DAC, 9-bit ADC; ``PresetUpdateParameters``: desired_bl 31). What the chip
cannot model exactly is listed in the preset's ``approximations``, and a preset the chip cannot
model honestly is kept in the table with the reason it is refused (docs/devices.md).

`representation_notes` says what a chip config does to any device model (step rounding, bounds
beyond the state format, steps that round to zero) and refuses what the chip cannot hold at all.
`load_device_config` / `device_config_toml` read and write the device config files that
``ohmflow fit-device`` writes and ``ohmflow train --device-config`` takes.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ohmflow.emulator.config import SLOPE_FRAC, ChipConfig, DeviceModel
from ohmflow.emulator.step_shape import step_shape

#: aihwkit's ``PresetIOParameters`` and ``PresetUpdateParameters`` (presets/utils.py)
PRESET_OUT_BOUND = 20.0
PRESET_OUT_NOISE = 0.1
PRESET_DESIRED_BL = 31

#: thresholds above which `representation_notes` reports an effect of the state format
STEP_ROUNDING_NOTE = 0.05  #: relative rounding error of a nominal step
FRACTION_NOTE = 1e-4  #: expected fraction of devices affected


@dataclass(frozen=True)
class Preset:
    """One aihwkit preset: its device as a `DeviceModel`, its periphery, and its provenance.

    ``refused`` is empty for a usable preset; otherwise it is the message `get_preset` raises.
    ``approximations`` lists, one sentence each, what of aihwkit's device the chip leaves out or
    models differently.
    """

    name: str
    aihwkit_device: str
    aihwkit_model: str
    source: str
    device: DeviceModel
    approximations: tuple[str, ...] = ()
    refused: str = ""
    out_bound: float = PRESET_OUT_BOUND
    out_noise: float = PRESET_OUT_NOISE
    desired_bl: int = PRESET_DESIRED_BL


# ----- ExpStep (ReRamESPresetDevice) and its best linear approximation -----
#: ReRamESPresetDevice (aihwkit presets/devices.py): ExpStepDevice parameters
RERAM_ES = {"dw_min": 0.00135, "up_down": 0.259359, "w_max": 1.0, "w_min": -1.0, "a": -0.5,
            "b": -0.5, "gamma_up": 5.0, "gamma_down": 5.0, "A_up": -1.18445,
            "A_down": -0.081404, "dw_min_dtod": 0.2, "up_down_dtod": 0.05, "w_max_dtod": 0.3,
            "w_min_dtod": 0.3, "dw_min_std": 5.0, "write_noise_std": 75.0}


def exp_step_steps(p: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Up and down step magnitudes of aihwkit's ExpStepDevice at states ``w`` (nominal device).

    z = 2 a w / (w_max - w_min) + b; up = dw_min (1 + up_down) max(0, 1 - A_up e^(gamma_up z));
    down = dw_min (1 - up_down) max(0, 1 - A_down e^(-gamma_down z)) (rpu_expstep_device.cpp).
    """
    w = np.asarray(w, dtype=np.float64)
    z = 2.0 * p["a"] * w / (p["w_max"] - p["w_min"]) + p["b"]
    up = p["dw_min"] * (1 + p["up_down"]) * np.maximum(0.0, 1 - p["A_up"] * np.exp(p["gamma_up"]
                                                                                   * z))
    down = p["dw_min"] * (1 - p["up_down"]) * np.maximum(
        0.0, 1 - p["A_down"] * np.exp(-p["gamma_down"] * z))
    return up, down


@dataclass(frozen=True)
class LinearFit:
    """A LinearStep approximation of a step curve and how far it is from the curve."""

    model: DeviceModel
    rms_rel: tuple[float, float]  #: RMS of (fit - curve) / curve over the range, (up, down)
    max_rel: tuple[float, float]  #: largest |fit - curve| / curve, (up, down)
    symmetry: tuple[float, float]  #: symmetry point (up step = down step): (curve, fit)


def linear_step_fit(p: dict, points: int = 2001) -> LinearFit:
    """Least-squares LinearStep fit of an ExpStep curve, relative errors weighted equally.

    The chip's LinearStep step is dw_up (1 - g_up w) up and dw_down (1 + g_down w) down, clamped
    at zero; each direction is fitted on ``points`` states evenly spread over [w_min, w_max]
    minimizing the relative residual (fit - curve) / curve.
    """
    w = np.linspace(p["w_min"], p["w_max"], points)
    up, down = exp_step_steps(p, w)
    lines = []
    for curve in (up, down):
        slope, c0 = np.polyfit(w, curve, 1, w=1.0 / curve)
        lines.append((c0, slope))
    (cu, su), (cd, sd) = ((float(a), float(b)) for a, b in lines)
    fit_up = np.maximum(0.0, cu + su * w)
    fit_down = np.maximum(0.0, cd + sd * w)
    rel = [(fit_up - up) / up, (fit_down - down) / down]
    model = DeviceModel(
        model="LinearStep", dw_min=(cu + cd) / 2, up_down=(cu - cd) / (cu + cd),
        w_max=p["w_max"], w_min=p["w_min"], gamma_up=-su / cu * p["w_max"],
        gamma_down=sd / cd * -p["w_min"], gamma_up_dtod=0.0, gamma_down_dtod=0.0,
        dw_min_dtod=p["dw_min_dtod"], up_down_dtod=p["up_down_dtod"],
        w_max_dtod=p["w_max_dtod"], w_min_dtod=p["w_min_dtod"], dw_min_std=p["dw_min_std"])
    return LinearFit(
        model=model,
        rms_rel=tuple(float(np.sqrt(np.mean(r**2))) for r in rel),
        max_rel=tuple(float(np.abs(r).max()) for r in rel),
        symmetry=(float(w[np.argmin(np.abs(up - down))]),
                  float(w[np.argmin(np.abs(fit_up - fit_down))])),
    )


# ----- the table -----
_WRITE_NOISE = ("write_noise_std {v} (the read sees the weight plus a Gaussian of std {v} dw_min "
                "= {a:.3g}, redrawn whenever the device is written) is not modelled: the chip has "
                "no write noise")


def _device(model: str, **kw) -> DeviceModel:
    return DeviceModel(model=model, **kw)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="ReRamESPreset", aihwkit_device="ReRamESPresetDevice", aihwkit_model="ExpStepDevice",
        source="Gong et al., Nat. Commun. 2018",
        device=_device("ExpStep", **{k: v for k, v in RERAM_ES.items()
                                     if k != "write_noise_std"}),
        approximations=(
            "the step shape is the chip's 129-node table of aihwkit's exponential curve, within "
            "0.4 % of a step over the nominal range (docs/numerics.md §5.4.1)",
            _WRITE_NOISE.format(v=75, a=75 * 0.00135),
            "ExpStep devices run on the twin backend only (the gateware and firmware engines "
            "have no step-shape tables yet)",
        )),
    Preset(
        name="ReRamSBPreset", aihwkit_device="ReRamSBPresetDevice",
        aihwkit_model="SoftBoundsReferenceDevice", source="Gong et al., Nat. Commun. 2018",
        device=_device("SoftBounds", dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75,
                       dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25,
                       w_min_dtod=0.3 / 0.75, dw_min_std=3.75),
        approximations=(
            "cycle-to-cycle noise is additive in aihwkit (mult_noise False: sigma = "
            "dw_min_std * dw, whatever the state) and multiplicative on the chip (sigma = "
            "dw_min_std * step(w)): equal at w = 0, half at half the bound, zero at the bound",
            _WRITE_NOISE.format(v=56, a=56 * 0.002),
            "the reference device is zero (reference_mean 0, reference_std 0, "
            "subtract_symmetry_point False): exact",
        )),
    Preset(
        name="CapacitorPreset", aihwkit_device="CapacitorPresetDevice",
        aihwkit_model="LinearStepDevice", source="Li et al., VLSI 2018",
        device=_device("LinearStep", dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0,
                       gamma_up=0.05, gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06,
                       w_max_dtod=0.07, w_min_dtod=0.07, gamma_up_dtod=0.01,
                       gamma_down_dtod=0.01, dw_min_std=0.3),
        approximations=(
            "cycle-to-cycle noise is additive in aihwkit (mult_noise False) and multiplicative "
            "on the chip; with gamma 0.05 the step, and so the chip's noise, stays within 5 % "
            "of its value at w = 0 over the whole range",
            "leakage (lifetime 1e6 mini-batches, lifetime_dtod 0.3: w decays toward the reset "
            "value 0 by 1/lifetime per mini-batch) is not set by the preset: on the twin "
            "backend add --lifetime 1000 --lifetime-dtod 0.3 (1e6 batches of the default "
            "--batch-time 1 ms; the chip spreads the rate, aihwkit the lifetime, equal to first "
            "order; docs/numerics.md §11); over a 30-epoch digits run (1,350 mini-batches) it "
            "shrinks the weights by 0.14 % on average",
        )),
    Preset(
        name="EcRamPreset", aihwkit_device="EcRamPresetDevice", aihwkit_model="LinearStepDevice",
        source="Tang et al., IEDM 2018",
        device=_device("LinearStep", dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276,
                       gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01,
                       w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05,
                       gamma_down_dtod=0.05, dw_min_std=0.3)),
    Preset(
        name="EcRamMOPreset", aihwkit_device="EcRamMOPresetDevice",
        aihwkit_model="LinearStepDevice", source="Kim et al., IEDM 2019",
        device=_device("LinearStep", dw_min=2.8214e-4, up_down=0.0, w_max=1.1714,
                       w_min=-0.8286, gamma_up=0.4152, gamma_down=0.7342, dw_min_dtod=0.1,
                       up_down_dtod=0.01, w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05,
                       gamma_down_dtod=0.05, dw_min_std=2.0)),
    Preset(
        name="IdealizedPreset", aihwkit_device="IdealizedPresetDevice",
        aihwkit_model="ConstantStepDevice",
        source="Gokmen & Vlasov, Front. Neurosci. 2016; Rasch et al., IEEE D&T 2019",
        device=_device("ConstantStep", dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3,
                       up_down=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.3,
                       w_min_dtod=0.3)),
    Preset(
        name="GokmenVlasovPreset", aihwkit_device="GokmenVlasovPresetDevice",
        aihwkit_model="ConstantStepDevice", source="Gokmen & Vlasov, Front. Neurosci. 2016",
        device=_device("ConstantStep", dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3,
                       up_down=0.0, up_down_dtod=0.01, w_max=1.0, w_min=-1.0, w_max_dtod=0.3,
                       w_min_dtod=0.3)),
)}


def get_preset(name: str) -> Preset:
    """The preset ``name``; raises ValueError naming the usable presets, or why it is refused."""
    if name not in PRESETS:
        usable = ", ".join(n for n, p in PRESETS.items() if not p.refused)
        raise ValueError(f"unknown device preset {name!r}: expected one of {usable}")
    p = PRESETS[name]
    if p.refused:
        raise ValueError(p.refused)
    return p


# ----- what a chip config does to a device model -----
def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _fraction_between(mean: float, sd: float, lo: float, hi: float) -> float:
    """P(lo < mean * (1 + sd * xi) < hi) for a standard normal xi (mean > 0)."""
    if sd == 0:
        return float(lo < mean < hi)
    a = (lo / mean - 1) / sd
    b = (hi / mean - 1) / sd
    return max(0.0, _phi(b) - _phi(a))


def zero_step_fraction(cfg: ChipConfig, model: DeviceModel, up: bool) -> float:
    """Expected fraction of fabricated devices whose step is positive but rounds to 0 (§7.2)."""
    s = model.dw_min * (1 + model.up_down if up else 1 - model.up_down)
    sd = math.hypot(model.dw_min_dtod, model.up_down_dtod) * model.dw_min / s
    return _fraction_between(s, sd, 0.0, 0.5 / 2.0**cfg.w_frac)


def bound_clip_fraction(cfg: ChipConfig, model: DeviceModel, upper: bool) -> float:
    """Expected fraction of fabricated devices whose bound lies beyond the state format."""
    b, dtod = (model.w_max, model.w_max_dtod) if upper else (-model.w_min, model.w_min_dtod)
    return _fraction_between(b, dtod, (cfg.w_max_code + 0.5) / 2.0**cfg.w_frac, math.inf)


def representation_notes(cfg: ChipConfig, model: DeviceModel) -> list[str]:
    """What ``cfg``'s integer formats (numerics §2, §7.2) do to ``model``, one sentence each.

    Raises ValueError if the nominal device cannot be held at all: a step below one state LSB
    or above the step format, a bound beyond the state format, a slope beyond the slope format.
    Notes report a nominal step rounded by 5 % or more and device-to-device tails (at least
    0.01 % of devices expected) whose steps round to zero or whose bounds are clipped.
    """
    unit = 2.0**cfg.w_frac
    lsb = 1.0 / unit
    w_top = cfg.w_max_code / unit
    notes: list[str] = []
    steps = {"up": model.dw_min * (1 + model.up_down), "down": model.dw_min * (1 - model.up_down)}
    for d, s in steps.items():
        if s * unit < 1.0:
            raise ValueError(
                f"the {d} step dw_min * (1 {'+' if d == 'up' else '-'} up_down) = {s:.4g} is "
                f"below one state LSB of config {cfg.name!r} (2^-{cfg.w_frac} = {lsb:.4g}); a "
                "chip config with more fractional weight bits (w_frac) can hold it")
        if s * unit > cfg.step_max:
            raise ValueError(f"the {d} step {s:.4g} exceeds the step format of config "
                             f"{cfg.name!r} ({cfg.step_max} LSBs = {cfg.step_max * lsb:.4g})")
        code = round(s * unit)
        err = code / (s * unit) - 1
        if abs(err) >= STEP_ROUNDING_NOTE:
            notes.append(f"the nominal {d} step {s:.4g} is {s * unit:.2f} state LSBs and becomes "
                         f"{code} ({err:+.1%}) on config {cfg.name!r}")
        zero = zero_step_fraction(cfg, model, d == "up")
        if zero >= FRACTION_NOTE:
            notes.append(f"{zero:.2%} of devices are expected to have a positive {d} step below "
                         f"half an LSB (dw_min_dtod {model.dw_min_dtod}), which rounds to 0: "
                         f"those devices do not move {d}")
    for name, b, dtod in (("w_max", model.w_max, model.w_max_dtod),
                          ("w_min", -model.w_min, model.w_min_dtod)):
        if b > w_top:
            raise ValueError(f"{name} {getattr(model, name)} is beyond the state format "
                             f"of config {cfg.name!r} (|w| <= {w_top:.6g})")
        over = bound_clip_fraction(cfg, model, name == "w_max")
        if over >= FRACTION_NOTE:
            notes.append(f"{over:.2%} of devices are expected to have {name} beyond the state "
                         f"format ({name}_dtod {dtod:.3g}; |w| <= {w_top:.6g} on config "
                         f"{cfg.name!r}); their bounds are clipped to it")
    if model.is_table:
        step_shape(model)  # raises if a node of the shape is beyond the table's format
    if model.model == "LinearStep":
        for d, g, b in (("up", model.gamma_up, model.w_max), ("down", model.gamma_down,
                                                               -model.w_min)):
            k = round(steps[d] * unit) * abs(g) / b * 2.0 ** (SLOPE_FRAC - cfg.w_frac)
            if k > cfg.slope_max:
                raise ValueError(f"gamma_{d} {g} gives a slope code {k:.0f} beyond the slope "
                                 f"format of config {cfg.name!r} (|k| <= {cfg.slope_max})")
    return notes


# ----- device config files -----
DEVICE_TABLE = "device"
INFO_TABLE = "fit"  #: informative provenance written by fit-device; read back, not used


def device_config_toml(model: DeviceModel, fit: dict | None = None,
                       comments: tuple[str, ...] = ()) -> str:
    """A device config file: ``[device]`` with every `DeviceModel` field, then ``[fit]``."""
    lines = [f"# {c}" for c in comments]
    lines.append(f"[{DEVICE_TABLE}]")
    for f in dataclasses.fields(model):
        lines.append(f"{f.name} = {_toml_value(getattr(model, f.name))}")
    if fit:
        lines += ["", f"[{INFO_TABLE}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in fit.items()]
    return "\n".join(lines) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(float(v))


def load_device_config(path: str | Path) -> DeviceModel:
    """The `DeviceModel` of a device config file; raises ValueError naming the file and field."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read device config {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not a TOML file: {e}") from None
    extra = set(data) - {DEVICE_TABLE, INFO_TABLE}
    if extra or not isinstance(data.get(DEVICE_TABLE), dict):
        raise ValueError(f"{path}: a device config has a [{DEVICE_TABLE}] table (and optionally "
                         f"[{INFO_TABLE}]); got {sorted(data)}")
    table = data[DEVICE_TABLE]
    names = {f.name for f in dataclasses.fields(DeviceModel)}
    unknown = set(table) - names
    if unknown:
        raise ValueError(f"{path}: unknown device parameter(s) {sorted(unknown)}; known: "
                         f"{sorted(names)}")
    try:
        return DeviceModel(**table)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
