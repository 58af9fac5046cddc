"""Fabrication: per-device parameters of a chip, drawn from a seed or loaded from a measured map.

A `DeviceMap` holds six integer arrays of shape ``(tiles, cols, rows)`` (indexed like the weights,
``[t, j, i]``), in the formats of docs/numerics.md §7:

- ``su``, ``sd``: step per up / down pulse at w = 0, unsigned, in weight LSBs;
- ``ku``, ``kd``: signed slopes, step = s + rnd(k * w / 2**SLOPE_FRAC) (LinearStep, SoftBounds);
- ``wmax``, ``wmin``: the device's bounds, ``wmin <= 0 <= wmax``, ``wmin < wmax``.

The map is uploaded to the chip and stays fixed, like a manufactured device.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ohmflow.emulator.config import SLOPE_FRAC, ChipConfig, DeviceModel

#: the device map's fields, in their wire order, with their element kind (emulator/protocol.py)
FIELD_KINDS = {"su": "step", "sd": "step", "ku": "slope", "kd": "slope", "wmax": "w", "wmin": "w"}
FIELDS = tuple(FIELD_KINDS)
NPZ_FORMAT = "ohmflow-devicemap-1"
CSV_COLUMNS = ("tile", "j", "i", "dw_up", "dw_down", "w_max", "w_min", "gamma_up", "gamma_down")


@dataclass(frozen=True, eq=False)
class DeviceMap:
    """Per-device parameters of a whole chip (all tiles), as integer codes."""

    su: np.ndarray
    sd: np.ndarray
    ku: np.ndarray
    kd: np.ndarray
    wmax: np.ndarray
    wmin: np.ndarray

    def validate(self, cfg: ChipConfig) -> DeviceMap:
        """Check shapes and ranges against ``cfg``; raises ValueError naming the field."""
        shape = (cfg.tiles, cfg.cols, cfg.rows)
        ranges = {
            "su": (0, cfg.step_max), "sd": (0, cfg.step_max),
            "ku": (-cfg.slope_max, cfg.slope_max), "kd": (-cfg.slope_max, cfg.slope_max),
            "wmax": (0, cfg.w_max_code), "wmin": (cfg.w_min_code, 0),
        }
        for name in FIELDS:
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != shape:
                got = getattr(a, "shape", type(a).__name__)
                raise ValueError(f"device map field {name!r} must have shape {shape}, got {got}")
            if a.dtype.kind not in "iu":
                raise ValueError(f"device map field {name!r} must be integer, got dtype {a.dtype}")
            lo, hi = ranges[name]
            if a.size and (a.min() < lo or a.max() > hi):
                raise ValueError(
                    f"device map field {name!r} must lie in [{lo}, {hi}], "
                    f"got [{int(a.min())}, {int(a.max())}]"
                )
        crossed = self.wmin >= self.wmax
        if crossed.any():
            t, j, i = (int(v) for v in np.argwhere(crossed)[0])
            raise ValueError(
                f"device bounds crossed at tile {t}, j={j}, i={i}: wmin={int(self.wmin[t, j, i])} "
                f"must be below wmax={int(self.wmax[t, j, i])}"
            )
        return self

    def tile(self, t: int) -> DeviceMap:
        """The map of one tile, as arrays of shape (1, cols, rows)."""
        return DeviceMap(**{f: getattr(self, f)[t : t + 1] for f in FIELDS})

    def copy(self) -> DeviceMap:
        return DeviceMap(**{f: getattr(self, f).copy() for f in FIELDS})

    def equals(self, other: DeviceMap) -> bool:
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in FIELDS)

    # ----- files -----
    def save_npz(self, path: str | Path) -> None:
        """Write the integer map; the file is complete or absent (atomic rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, format=np.array(NPZ_FORMAT), **{k: getattr(self, k) for k in FIELDS})
        tmp.replace(path)

    @classmethod
    def load_npz(cls, path: str | Path, cfg: ChipConfig) -> DeviceMap:
        """Load a map written by `save_npz` and validate it against ``cfg``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                fmt = str(z["format"]) if "format" in z else None
                if fmt != NPZ_FORMAT:
                    raise ValueError(f"{path}: not an ohmflow device map (format {fmt!r}, "
                                     f"expected {NPZ_FORMAT!r})")
                missing = [k for k in FIELDS if k not in z]
                if missing:
                    raise ValueError(f"{path}: device map lacks field(s) {missing}")
                arrays = {k: np.array(z[k], dtype=np.int64) for k in FIELDS}
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"{path}: cannot read device map: {e}") from None
        return cls(**arrays).validate(cfg)

    def save_csv(self, path: str | Path, cfg: ChipConfig) -> None:
        """Write the map in physical units (the measured-map format, docs/numerics.md §7.3)."""
        phys = self.to_physical(cfg)
        t, j, i = np.indices(self.su.shape)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            cols = [t.ravel(), j.ravel(), i.ravel()] + [phys[k].ravel() for k in CSV_COLUMNS[3:]]
            for row in zip(*cols, strict=True):
                w.writerow([int(v) for v in row[:3]] + [repr(float(v)) for v in row[3:]])

    @classmethod
    def load_csv(cls, path: str | Path, cfg: ChipConfig) -> DeviceMap:
        """Load a measured map in physical units: one line per device, every device once."""
        text = Path(path).read_text()
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or set(CSV_COLUMNS) - set(reader.fieldnames):
            need = ", ".join(CSV_COLUMNS)
            raise ValueError(
                f"{path}: a device map CSV needs the columns {need}; got {reader.fieldnames}"
            )
        shape = (cfg.tiles, cfg.cols, cfg.rows)
        phys = {k: np.full(shape, np.nan) for k in CSV_COLUMNS[3:]}
        seen = np.zeros(shape, dtype=bool)
        for n, row in enumerate(reader, start=2):
            try:
                t, j, i = int(row["tile"]), int(row["j"]), int(row["i"])
                vals = {k: float(row[k]) for k in CSV_COLUMNS[3:]}
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{n}: not a number in {row}") from None
            if not (0 <= t < cfg.tiles and 0 <= j < cfg.cols and 0 <= i < cfg.rows):
                raise ValueError(f"{path}:{n}: device (tile {t}, j {j}, i {i}) outside the chip "
                                 f"(tiles {cfg.tiles}, cols {cfg.cols}, rows {cfg.rows})")
            if seen[t, j, i]:
                raise ValueError(f"{path}:{n}: device (tile {t}, j {j}, i {i}) given twice")
            bad = [k for k, v in vals.items() if not np.isfinite(v)]
            if bad:
                raise ValueError(f"{path}:{n}: {bad} must be finite numbers")
            seen[t, j, i] = True
            for k, v in vals.items():
                phys[k][t, j, i] = v
        if not seen.all():
            t, j, i = (int(v) for v in np.argwhere(~seen)[0])
            raise ValueError(f"{path}: {int((~seen).sum())} device(s) missing, first tile {t}, "
                             f"j {j}, i {i}; every device of the chip must be listed")
        return from_physical(cfg, **phys)

    def to_physical(self, cfg: ChipConfig) -> dict[str, np.ndarray]:
        """Steps, bounds (weight units) and slopes (per weight unit) of every device."""
        unit = 2.0**cfg.w_frac
        su = self.su.astype(float)
        sd = self.sd.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            gu = np.where(su > 0, -self.ku * unit / (su * 2.0**SLOPE_FRAC), 0.0)
            gd = np.where(sd > 0, self.kd * unit / (sd * 2.0**SLOPE_FRAC), 0.0)
        return {"dw_up": su / unit, "dw_down": sd / unit, "w_max": self.wmax / unit,
                "w_min": self.wmin / unit, "gamma_up": gu, "gamma_down": gd}


def from_physical(
    cfg: ChipConfig, dw_up, dw_down, w_max, w_min, gamma_up, gamma_down
) -> DeviceMap:
    """Integer codes from physical per-device values (docs/numerics.md §7.2).

    Up step at weight w: ``dw_up * (1 - gamma_up * w)``; down step magnitude:
    ``dw_down * (1 + gamma_down * w)`` (so positive gammas make steps shrink towards the bound
    in their direction; SoftBounds is gamma_up = 1/w_max, gamma_down = 1/|w_min|).
    Values outside what the codes can hold are clipped.
    """
    unit = 2.0**cfg.w_frac
    arrays = [np.asarray(a, dtype=float) for a in (dw_up, dw_down, w_max, w_min, gamma_up,
                                                   gamma_down)]
    for name, a in zip(("dw_up", "dw_down", "w_max", "w_min", "gamma_up", "gamma_down"), arrays,
                       strict=True):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must be finite for every device")
    dw_up, dw_down, w_max, w_min, gamma_up, gamma_down = arrays
    su = np.clip(np.rint(dw_up * unit), 0, cfg.step_max).astype(np.int64)
    sd = np.clip(np.rint(dw_down * unit), 0, cfg.step_max).astype(np.int64)
    wmax = np.clip(np.rint(w_max * unit), 1, cfg.w_max_code).astype(np.int64)
    wmin = np.clip(np.rint(w_min * unit), cfg.w_min_code, -1).astype(np.int64)
    scale = 2.0**SLOPE_FRAC / unit
    ku = np.clip(np.rint(-su * gamma_up * scale), -cfg.slope_max, cfg.slope_max).astype(np.int64)
    kd = np.clip(np.rint(sd * gamma_down * scale), -cfg.slope_max, cfg.slope_max).astype(np.int64)
    return DeviceMap(su=su, sd=sd, ku=ku, kd=kd, wmax=wmax, wmin=wmin).validate(cfg)


def nominal(cfg: ChipConfig, model: DeviceModel | None = None) -> DeviceMap:
    """The map of a chip without device-to-device variation (every device at the mean values)."""
    m = (model or DeviceModel()).replace(
        dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
        gamma_up_dtod=0.0, gamma_down_dtod=0.0,
    )
    return fabricate(cfg, m, seed=0)


def fabricate(cfg: ChipConfig, model: DeviceModel, seed: int) -> DeviceMap:
    """Draw every device's parameters from ``seed`` (numpy PCG64), as aihwkit initializes devices.

    Six standard-normal arrays of shape (tiles, cols, rows) are drawn in this order: step, up/down
    bias, upper bound, lower bound, up slope, down slope (docs/numerics.md §7.1).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"fabrication seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    shape = (cfg.tiles, cfg.cols, cfg.rows)
    xi_dw, xi_ud, xi_max, xi_min, xi_gu, xi_gd = (rng.standard_normal(shape) for _ in range(6))
    beta = model.up_down + model.up_down_dtod * xi_ud
    base = 1.0 + model.dw_min_dtod * xi_dw
    dw_up = np.maximum(model.dw_min * (base + beta), 0.0)
    dw_down = np.maximum(model.dw_min * (base - beta), 0.0)
    b_max = np.maximum(model.w_max * (1.0 + model.w_max_dtod * xi_max), 0.0)
    b_min = np.minimum(model.w_min * (1.0 + model.w_min_dtod * xi_min), 0.0)
    unit = 2.0**cfg.w_frac
    if model.model == "ConstantStep" or model.is_table:
        # table models: the step's shape is the chip's step-shape table (emulator/step_shape.py)
        gu = gd = np.zeros(shape)
    elif model.model == "LinearStep":
        # aihwkit, mean_bound_reference: gamma_ij = |gamma + dtod * xi| / mean bound
        gu = np.abs(model.gamma_up + model.gamma_up_dtod * xi_gu) / model.w_max
        gd = np.abs(model.gamma_down + model.gamma_down_dtod * xi_gd) / -model.w_min
    else:  # SoftBounds: the step reaches zero exactly at the device's own (integer) bound
        wmax_code = np.clip(np.rint(b_max * unit), 1, cfg.w_max_code)
        wmin_code = np.clip(np.rint(b_min * unit), cfg.w_min_code, -1)
        gu = unit / wmax_code
        gd = unit / -wmin_code
    return from_physical(cfg, dw_up, dw_down, b_max, b_min, gu, gd)
