"""``ohmflow fit-device``: fit a device model to a measured pulse response.

The measurement is a CSV file (docs/devices.md): a header, then one row per reading with the
columns ``pulse`` (pulses applied so far in the sweep, an integer), ``direction`` (``up`` or
``down``), one of ``weight`` (weight units) or ``conductance`` (any unit; mapped linearly so the
readings span [-1, 1]) and optionally ``cycle`` (an integer naming the sweep). Rows with the same
(cycle, direction) form one sweep, in file order, with strictly increasing pulse numbers.

Each model is fitted to the steps between consecutive readings: a step of m pulses from state w
is m times the model's step at w. ConstantStep and LinearStep have hard bounds at the extreme
readings (steps into a bound are left out of the fit); SoftBounds puts each bound where its
direction's fitted step reaches zero. The fit error is the RMS distance between the readings and
the model's noise-free response replayed from each sweep's first reading, relative to the
readings' span; the cycle-to-cycle noise ``dw_min_std`` is the spread of the single-pulse steps
around the model (where the model's step is at least a quarter of its step at w = 0).
Without ``--model`` the simplest model within 10 % of the best error is chosen
(ConstantStep, then SoftBounds, then LinearStep).
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ohmflow.emulator.config import SLOPE_MODELS, DeviceModel, get_config
from ohmflow.emulator.presets import device_config_toml, representation_notes

VALUE_COLUMNS = ("weight", "conductance")
#: models in order of simplicity; the chooser prefers the earlier of two near-equal fits
ORDER = ("ConstantStep", "SoftBounds", "LinearStep")
CHOICE_MARGIN = 1.10  #: a simpler model is chosen if its error is at most 10 % above the best


@dataclass
class Sweep:
    cycle: int
    up: bool
    pulses: np.ndarray  #: pulse numbers, strictly increasing
    w: np.ndarray  #: readings in weight units
    line: int  #: file line of the sweep's first reading


@dataclass(frozen=True)
class Measurement:
    path: Path
    sweeps: tuple[Sweep, ...]
    unit: str  #: "weight" or "conductance"
    g_offset: float = 0.0  #: conductance = g_offset + g_scale * weight
    g_scale: float = 1.0


def read_measurement(path: str | Path) -> Measurement:
    """Parse and check a pulse-response CSV; raises ValueError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read measurement {path}: {e.strerror or e}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header with pulse, direction and "
                         "weight or conductance")
    header = [h.strip().lower() for h in rows[0]]
    values = [c for c in VALUE_COLUMNS if c in header]
    missing = [c for c in ("pulse", "direction") if c not in header]
    if missing or len(values) != 1:
        need = "pulse, direction and exactly one of weight or conductance (cycle optional)"
        raise ValueError(f"{path}:1: header {rows[0]} lacks columns: needs {need}")
    col = {name: header.index(name) for name in header}
    unit = values[0]
    groups: dict[tuple[int, bool], list[tuple[int, float, int]]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}:{n}: {len(row)} cells, the header has {len(header)}")
        cell = {name: row[i].strip() for name, i in col.items()}
        try:
            pulse = int(cell["pulse"])
        except ValueError:
            raise ValueError(f"{path}:{n}: pulse must be an integer, got {cell['pulse']!r}") \
                from None
        try:
            value = float(cell[unit])
        except ValueError:
            raise ValueError(f"{path}:{n}: {unit} must be a number, got {cell[unit]!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{path}:{n}: {unit} must be finite, got {cell[unit]!r}")
        direction = cell["direction"].lower()
        if direction not in ("up", "down"):
            raise ValueError(f"{path}:{n}: direction must be up or down, got "
                             f"{cell['direction']!r}")
        cycle = 0
        if "cycle" in cell:
            try:
                cycle = int(cell["cycle"])
            except ValueError:
                raise ValueError(f"{path}:{n}: cycle must be an integer, got "
                                 f"{cell['cycle']!r}") from None
        g = groups.setdefault((cycle, direction == "up"), [])
        if g and pulse <= g[-1][0]:
            raise ValueError(f"{path}:{n}: pulse {pulse} does not follow pulse {g[-1][0]} of "
                             f"cycle {cycle} {direction}: pulse numbers must increase within a "
                             "sweep")
        if pulse < 0:
            raise ValueError(f"{path}:{n}: pulse must be >= 0, got {pulse}")
        g.append((pulse, value, n))
    for (cycle, up), g in groups.items():
        if len(g) < 2:
            raise ValueError(f"{path}:{g[0][2]}: cycle {cycle} {'up' if up else 'down'} has a "
                             "single reading; a sweep needs at least two")
    for up in (True, False):
        if not any(k[1] == up for k in groups):
            raise ValueError(f"{path}: no {'up' if up else 'down'} sweep; a fit needs both "
                             "directions")
    allv = np.array([v for g in groups.values() for _, v, _ in g])
    offset, scale = 0.0, 1.0
    if unit == "conductance":
        lo, hi = float(allv.min()), float(allv.max())
        if not hi > lo:
            raise ValueError(f"{path}: every conductance reading is {lo}: nothing to fit")
        offset, scale = (hi + lo) / 2, (hi - lo) / 2
    sweeps = tuple(
        Sweep(cycle, up, np.array([p for p, _, _ in g]),
              (np.array([v for _, v, _ in g]) - offset) / scale, g[0][2])
        for (cycle, up), g in groups.items())
    return Measurement(path, sweeps, unit, offset, scale)


@dataclass(frozen=True)
class Fit:
    """One model fitted to a measurement; ``error`` is inf and ``reason`` says why if it failed."""

    model: str
    device: DeviceModel | None
    error: float  #: RMS(replay - readings) / span of the readings
    rms: float  #: RMS(replay - readings), weight units
    reason: str = ""


def _steps(sweeps, up: bool):
    """(state before, mean step per pulse, pulses, ends at a bound) of every reading pair."""
    w0, dw, m, end = [], [], [], []
    for s in sweeps:
        if s.up != up:
            continue
        w0.append(s.w[:-1])
        m.append(np.diff(s.pulses))
        dw.append(np.diff(s.w) / m[-1])
        end.append(s.w[1:])
    return (np.concatenate(w0), np.concatenate(dw), np.concatenate(m), np.concatenate(end))


def _replay(device_fn, lo: float, hi: float, sweeps) -> tuple[float, float]:
    """RMS of the model's noise-free response replayed from each sweep's first reading."""
    err = []
    for s in sweeps:
        w = float(s.w[0])
        sim = [w]
        for m in np.diff(s.pulses):
            for _ in range(int(m)):
                w = min(hi, max(lo, w + device_fn(w, s.up)))
            sim.append(w)
        err.append(np.asarray(sim) - s.w)
    e = np.concatenate(err)
    return float(np.sqrt(np.mean(e**2))), float(np.abs(e).max())


def fit_model(meas: Measurement, model: str) -> Fit:
    """Fit ``model`` (one of SLOPE_MODELS) to ``meas``."""
    sweeps = meas.sweeps
    allw = np.concatenate([s.w for s in sweeps])
    w_hi, w_lo = float(allw.max()), float(allw.min())
    span = w_hi - w_lo
    lines = {}
    for up in (True, False):
        w0, dw, m, end = _steps(sweeps, up)
        mag = dw if up else -dw
        typical = float(np.median(np.abs(mag))) if len(mag) else 0.0
        if model == "SoftBounds":
            keep = np.ones(len(w0), dtype=bool)
        else:  # hard bounds: leave out steps that end at (or start beyond) the bound
            bound = w_hi if up else w_lo
            keep = np.abs(end - bound) > 0.5 * typical
            keep &= np.abs(w0 - bound) > 0.5 * typical
        if keep.sum() < 2:
            return Fit(model, None, math.inf, math.inf, f"fewer than two {'up' if up else 'down'}"
                       " steps away from the bounds")
        if model == "ConstantStep":
            c0, c1 = float(np.mean(mag[keep])), 0.0
        else:
            c1, c0 = (float(v) for v in np.polyfit(w0[keep], mag[keep], 1, w=np.sqrt(m[keep])))
        if c0 <= 0:
            return Fit(model, None, math.inf, math.inf,
                       f"the fitted {'up' if up else 'down'} step at w = 0 is not positive")
        lines[up] = (c0, c1, w0[keep], mag[keep], m[keep])
    (cu, su, *_), (cd, sd, *_) = lines[True], lines[False]
    if model == "SoftBounds":
        if su >= 0 or sd <= 0:
            return Fit(model, None, math.inf, math.inf,
                       "the steps do not shrink toward a bound in both directions")
        hi, lo = -cu / su, -cd / sd
        if not lo < 0 < hi:
            return Fit(model, None, math.inf, math.inf,
                       f"the fitted bounds [{lo:.4g}, {hi:.4g}] do not enclose w = 0")
        gu, gd = 1 / hi, -1 / lo
    else:
        hi, lo = w_hi, w_lo
        if not lo < 0 < hi:
            return Fit(model, None, math.inf, math.inf,
                       f"the readings span [{lo:.4g}, {hi:.4g}], which does not enclose w = 0; "
                       "measure conductances (normalized to [-1, 1]) or shift the weights")
        gu, gd = -su / cu, sd / cd
        if model == "LinearStep" and (gu < 0 or gd < 0):
            d, g = ("up", gu * hi) if gu < 0 else ("down", gd * -lo)
            return Fit(model, None, math.inf, math.inf,
                       f"the {d} step grows toward its bound (gamma_{d} {g:.3g}), which "
                       "LinearStep on the chip does not model (aihwkit's allow_increasing)")

    def step(w: float, up: bool) -> float:
        return max(0.0, cu * (1 - gu * w)) if up else -max(0.0, cd * (1 + gd * w))

    rms, _ = _replay(step, lo, hi, sweeps)
    # cycle-to-cycle spread: relative residual of each step around the model, x sqrt(pulses),
    # over the steps at least a quarter of the step at w = 0 (tiny steps near a soft bound are
    # dominated by the readings' resolution)
    rel = []
    for up, (c0, _c1, w0, mag, m) in lines.items():
        pred = np.array([abs(step(float(w), up)) for w in w0])
        ok = pred >= 0.25 * c0
        rel.append((mag[ok] - pred[ok]) / pred[ok] * np.sqrt(m[ok]))
    std = float(np.std(np.concatenate(rel)))
    kw = dict(model=model, dw_min=(cu + cd) / 2, up_down=(cu - cd) / (cu + cd), w_max=hi,
              w_min=lo, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
              gamma_up_dtod=0.0, gamma_down_dtod=0.0, dw_min_std=std)
    if model == "LinearStep":
        kw.update(gamma_up=gu * hi, gamma_down=gd * -lo)
    try:
        device = DeviceModel(**kw)
    except ValueError as e:
        return Fit(model, None, math.inf, math.inf, f"the fitted parameters are invalid: {e}")
    return Fit(model, device, rms / span, rms)


def choose(fits: list[Fit]) -> Fit:
    """The simplest fit within `CHOICE_MARGIN` of the best error."""
    ok = [f for f in fits if f.device is not None]
    if not ok:
        raise ValueError("no model fits: " + "; ".join(f"{f.model}: {f.reason}" for f in fits))
    best = min(f.error for f in ok)
    return next(f for f in sorted(ok, key=lambda f: ORDER.index(f.model))
                if f.error <= best * CHOICE_MARGIN + 1e-12)


# ----- the command -----
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="measured pulse response, CSV (docs/devices.md)")
    p.add_argument("--model", choices=SLOPE_MODELS,
                   help="fit this model (default: the simplest of the best fits)")
    p.add_argument("--out", metavar="TOML",
                   help="device config to write (default: FILE's name with .device.toml, in "
                   "the current directory); ohmflow train --device-config takes it")
    p.add_argument("--config", default="default",
                   help="chip config the device must fit (default: default)")


def run(args) -> int:
    meas = read_measurement(args.file)
    models = [args.model] if args.model else list(ORDER)
    fits = [fit_model(meas, m) for m in models]
    chosen = choose(fits)
    n = sum(len(s.w) for s in meas.sweeps)
    print(f"{meas.path}: {len(meas.sweeps)} sweeps, {n} readings ({meas.unit}"
          + (f"; weight = (conductance - {meas.g_offset:.6g}) / {meas.g_scale:.6g}"
             if meas.unit == "conductance" else "") + ")")
    g = meas.unit == "conductance"
    print(f"{'model':<13} {'RMS (weight)':>12}" + (f" {'RMS (cond.)':>12}" if g else "")
          + f" {'relative':>9}")
    for f in fits:
        if f.device is None:
            print(f"{f.model:<13} {'—':>12}" + (f" {'—':>12}" if g else "") + f" {'—':>9}  "
                  f"not fitted: {f.reason}")
        else:
            mark = "  <- chosen" if f is chosen else ""
            print(f"{f.model:<13} {f.rms:>12.4g}" + (f" {f.rms * meas.g_scale:>12.4g}" if g
                                                     else "") + f" {f.error:>9.2%}{mark}")
    d = chosen.device
    cfg = get_config(args.config)
    notes = representation_notes(cfg, d)
    for note in notes:
        print(f"note: {note}")
    out = Path(args.out) if args.out else Path(Path(args.file).stem + ".device.toml")
    out = out.expanduser().resolve()
    fit = {"source": str(Path(args.file).resolve().name), "model": chosen.model,
           "rms_error": chosen.rms, "relative_error": chosen.error, "unit": meas.unit,
           "g_offset": meas.g_offset, "g_scale": meas.g_scale}
    out.write_text(device_config_toml(d, fit, comments=(
        f"device config written by ohmflow fit-device from {Path(args.file).name}",
        "one device's response carries no device-to-device spread: the *_dtod values are 0;",
        "set them here or with ohmflow train --dw-min-dtod ... to model a whole chip")))
    print(f"{chosen.model}: dw_min {d.dw_min:.6g}, up_down {d.up_down:+.4f}, w_max {d.w_max:.5g}"
          f", w_min {d.w_min:.5g}" + (f", gamma_up {d.gamma_up:.4g}, gamma_down "
                                     f"{d.gamma_down:.4g}" if d.model == "LinearStep" else "")
          + f", dw_min_std {d.dw_min_std:.3g}")
    print(f"device config: {out} (ohmflow train --device-config {out})")
    return 0
