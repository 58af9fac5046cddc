"""The bit-exact software twin of the chip (docs/numerics.md): integer numpy and compiled loops.

`Twin` holds what the chip holds: device states, the device map, run-time settings, the PRNG nonce
and per-tile counters. Its operations take and return the integer codes the hardware sees; the
floating-point periphery (scaling, bias, activations, update management) belongs to the host.
`Twin` checks arguments and keeps counters; the reads and pulse updates run in
`ohmflow.emulator.kernels`, one compiled call per batch.
"""

from __future__ import annotations

import math

import numpy as np
from ohmflow.emulator import kernels, physics, prng
from ohmflow.emulator.config import (
    COUNTERS,
    DT_BITS,
    SHAPE_MODES,
    SQRT_FRAC,
    T_REF,
    ChipConfig,
    Settings,
)
from ohmflow.emulator.fabrication import FIELDS, DeviceMap, nominal
from ohmflow.emulator.step_shape import StepShape, linear_shape, range_reciprocal


def rnd_shift(x: np.ndarray, s: int) -> np.ndarray:
    """Round half up, then shift right: floor((x + 2**(s-1)) / 2**s); identity for s = 0."""
    if s == 0:
        return x
    return (x + (1 << (s - 1))) >> s


def sqrt_table(bl_max: int) -> np.ndarray:
    """SQRT[n] = floor(sqrt(n) * 2**SQRT_FRAC), n = 0..bl_max, in exact integer arithmetic."""
    return np.array([math.isqrt(n << (2 * SQRT_FRAC)) for n in range(bl_max + 1)], dtype=np.int64)


def _int_array(name: str, a, ndim: int, lo: int, hi: int, check: bool = True) -> np.ndarray:
    """``a`` as a C-contiguous int64 array of ``ndim`` dimensions, or a ValueError saying why not.

    With ``check=False`` the range [lo, hi] is left to the caller (a kernel that checks it in
    the pass it makes anyway, then `_range_error`).
    """
    arr = a
    if (type(arr) is np.ndarray and arr.dtype == np.int64 and arr.ndim == ndim
            and arr.flags.c_contiguous):  # the common case: already what the kernels take
        if check and arr.size and (arr.min() < lo or arr.max() > hi):
            raise _range_error(name, arr, lo, hi)
        return arr
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf; expected integer codes in [{lo}, {hi}]")
        if not np.array_equal(arr, np.rint(arr)):
            raise ValueError(f"{name} must hold integer codes in [{lo}, {hi}], got fractions")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if check and arr.size and (arr.min() < lo or arr.max() > hi):
        raise _range_error(name, arr, lo, hi)
    return arr


#: the kernel's ``counts`` argument when the counts are not wanted (never written)
_NO_COUNTS = np.zeros((0, 0, 0), dtype=np.int64)


def _range_error(name: str, arr: np.ndarray, lo: int, hi: int) -> ValueError:
    return ValueError(
        f"{name} codes must lie in [{lo}, {hi}], got [{int(arr.min())}, {int(arr.max())}]"
    )


class Twin:
    """The chip in software: same config, same settings, same integer results as the gateware."""

    def __init__(self, cfg: ChipConfig, settings: Settings | None = None,
                 device_map: DeviceMap | None = None, step_shape: StepShape | None = None):
        if cfg.acc_bits + 17 > 62:  # the gain with its factor of temperature (§11.4) < 2**17
            raise ValueError(f"config accumulator ({cfg.acc_bits} bits) too wide for the twin")
        self.cfg = cfg
        self._sqrt = sqrt_table(cfg.bl_max)
        self._map_cache: dict = {}
        self._settings_cache: dict = {}
        self._interned: dict = {}
        self.device_key = 0  #: the chip's key of per-device drift and decay (§11.2)
        self.device_map = (device_map or nominal(cfg)).copy().validate(cfg)
        self.load_step_shape(step_shape or linear_shape())
        self.weights = np.zeros((cfg.tiles, cfg.cols, cfg.rows), dtype=np.int64)
        self.reset(settings)

    # ----- state -----
    def reset(self, settings: Settings | None = None) -> None:
        """Weights to 0, settings to default (or given), nonce and counters to 0; keeps the map."""
        self.settings = (settings or Settings.default(self.cfg)).validated(self.cfg)
        self.weights[...] = 0
        self.nonce = 0
        self.time = 0  #: chip time in ms (§11)
        self.ages = [0] * self.cfg.tiles  #: per-tile drift age in ms at T0
        self.counters = [dict.fromkeys(COUNTERS, 0) for _ in range(self.cfg.tiles)]

    def set(self, **kw) -> Settings:
        """Change run-time settings (validated); a new seed restarts the nonce at 0."""
        # training toggles between a few settings (BL per layer): reuse validated ones, found by
        # the identity of the current settings and the changes with their types (True is not a
        # valid 1); new settings are interned by value, so the same settings are the same object
        old = self.settings
        try:
            if len(kw) == 1:
                ((k, v),) = kw.items()
                key = (id(old), ((k, type(v), v),))
            else:
                key = (id(old), tuple(sorted((k, type(v), v) for k, v in kw.items())))
            hit = self._settings_cache.get(key)
        except TypeError:  # unhashable values (lists): validate afresh
            key, hit = None, None
        if hit is not None and hit[0] is old:
            new = hit[1]
        else:
            if len(kw) == 1:  # old is valid: check the one change only
                ((k, v),) = kw.items()
                new = old.changed(self.cfg, k, v)
            else:
                new = old.replace(self.cfg, **kw)
            if key is not None:
                if len(self._settings_cache) >= 4096:  # bounded: drop them all, then refill
                    self._settings_cache.clear()
                    self._interned.clear()
                new = self._interned.setdefault(new, new)
                self._settings_cache[key] = (old, new)
        self.settings = new
        if "seed" in kw:
            self.nonce = 0
        return self.settings

    def _tile(self, tile: int) -> tuple[int, int]:
        if isinstance(tile, bool) or not isinstance(tile, int | np.integer) or not (
            0 <= tile < self.cfg.tiles
        ):
            raise ValueError(f"tile must be an integer in [0, {self.cfg.tiles - 1}], got {tile!r}")
        return self.settings.shapes[tile]

    def program(self, tile: int, w) -> None:
        """Write states of the active window (n_out, n_in), clipped to each device's bounds."""
        n_in, n_out = self._tile(tile)
        c = self.cfg
        w = _int_array("weights", w, 2, c.w_min_code, c.w_max_code)
        if w.shape != (n_out, n_in):
            raise ValueError(f"weights for tile {tile} must have shape (n_out, n_in) = "
                             f"{(n_out, n_in)}, got {w.shape}")
        dm = self.device_map
        self.weights[tile, :n_out, :n_in] = np.clip(
            w, dm.wmin[tile, :n_out, :n_in], dm.wmax[tile, :n_out, :n_in]
        )
        self.ages[tile] = 0  # the tile was programmed now: its drift age restarts (§11.3)

    def read(self, tile: int) -> np.ndarray:
        """States of the active window, shape (n_out, n_in)."""
        n_in, n_out = self._tile(tile)
        return self.weights[tile, :n_out, :n_in].copy()

    def load_device_map(self, dmap: DeviceMap, tile: int | None = None) -> None:
        """Replace the map of the whole chip, or of one tile (arrays of shape (1, cols, rows)).

        Device states are clipped into the new bounds, as a physical device would be.
        """
        if tile is None:
            dmap.validate(self.cfg)
            self.device_map = dmap.copy()
            sl = slice(None)
        else:
            self._tile(tile)
            one = ChipConfig(**{**self.cfg.to_dict(), "tiles": 1})
            dmap.validate(one)
            for f in FIELDS:
                getattr(self.device_map, f)[tile] = getattr(dmap, f)[0]
            sl = slice(tile, tile + 1)
        dm = self.device_map
        self._map_cache.clear()
        self.weights[sl] = np.clip(self.weights[sl], dm.wmin[sl], dm.wmax[sl])

    def load_step_shape(self, shape: StepShape) -> None:
        """Replace the chip's step-shape tables (numerics §5.4); states and the map are kept."""
        if not isinstance(shape, StepShape):
            raise ValueError(f"a step shape must be a StepShape, got {type(shape).__name__}")
        shape.validate()
        self.step_shape = StepShape(shape.mode, shape.up.astype(np.int64),
                                    shape.down.astype(np.int64))
        self._shape_args = (shape.code, self.step_shape.table())
        self._shape_at: dict = {}

    def read_step_shape(self) -> StepShape:
        s = self.step_shape
        return StepShape(s.mode, s.up.copy(), s.down.copy())

    def read_device_map(self, tile: int | None = None) -> DeviceMap:
        if tile is None:
            return self.device_map.copy()
        self._tile(tile)
        return self.device_map.tile(tile).copy()

    def _take_nonces(self, count: int) -> int:
        n0 = self.nonce
        self.nonce = (self.nonce + count) & prng.MASK32
        return n0

    # ----- reads -----
    def read_args(self, tile: int, transpose: bool) -> tuple:
        """The arguments of `kernels.read` after ``x`` (up to ``nonce0``) for a read of ``tile``
        now; ``tile`` must be valid (checked by the caller). With `count_read` after the
        kernel, the same read as `forward` / `backward` (a caller that fuses its own work with
        the kernel's in one compiled call)."""
        n_in, n_out = self.settings.shapes[tile]
        s = self.settings
        gain, shift, sigma, domain = ((s.bwd_gain, s.bwd_shift, s.bwd_sigma, prng.DOMAIN_BWD)
                                      if transpose else
                                      (s.fwd_gain, s.fwd_shift, s.fwd_sigma, prng.DOMAIN_FWD))
        gain = physics.scaled_gain(gain, s.temperature)
        sigma = physics.scaled_sigma(sigma, s.temperature)
        return (self.weights[tile], transpose, n_in, n_out, self.cfg.in_max,
                2 ** (s.in_bits - 1) - 1, gain, shift, sigma, 2 ** (s.out_bits - 1) - 1,
                prng.domain_base(s.seed, domain), self.nonce)

    def count_read(self, tile: int, transpose: bool, batch: int, saturations: int) -> None:
        """Take the nonces and count the read of ``batch`` vectors that `read_args` set up."""
        n_in, n_out = self.settings.shapes[tile]
        n_dac, n_adc = (n_out, n_in) if transpose else (n_in, n_out)
        self._take_nonces(batch)
        c = self.counters[tile]
        c["bwd_vectors" if transpose else "fwd_vectors"] += batch
        c["macs"] += batch * n_dac * n_adc
        c["dac_conversions"] += batch * n_dac
        c["adc_conversions"] += batch * n_adc
        c["adc_saturations"] += saturations

    def _read(self, tile: int, x, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
        n_in, n_out = self._tile(tile)
        n_dac, n_adc = (n_out, n_in) if transpose else (n_in, n_out)
        name = "backward input" if transpose else "forward input"
        x = _int_array(name, x, 2, -self.cfg.in_max, self.cfg.in_max, check=False)
        if x.shape[1] != n_dac or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (batch >= 1, {n_dac}), got {x.shape}")
        b = x.shape[0]
        y = np.empty((b, n_adc), dtype=np.int64)
        sat = np.empty(b, dtype=np.int64)
        w, *args = self.read_args(tile, transpose)
        total = kernels.read(w, x, *args, y, sat)
        if total < 0:
            raise _range_error(name, x, -self.cfg.in_max, self.cfg.in_max)
        self.count_read(tile, transpose, b, total)
        return y, sat

    def forward(self, tile: int, x) -> tuple[np.ndarray, np.ndarray]:
        """y = ADC(W . DAC(x) + noise) for a batch of DAC codes x (B, n_in).

        Returns the ADC codes (B, n_out) and the number of saturated outputs per vector (B,).
        """
        return self._read(tile, x, False)

    def backward(self, tile: int, d) -> tuple[np.ndarray, np.ndarray]:
        """dx = ADC(W^T . DAC(d) + noise): the transposed read, d (B, n_out) -> (B, n_in)."""
        return self._read(tile, d, True)

    # ----- writes -----
    def _tile_map(self, tile: int) -> tuple[np.ndarray, ...]:
        """The tile's device map as C-contiguous int64 arrays (cols, rows), in FIELDS order."""
        hit = self._map_cache.get(tile)
        if hit is None:
            dm = self.device_map
            hit = tuple(np.ascontiguousarray(getattr(dm, f)[tile], dtype=np.int64)
                        for f in FIELDS)
            self._map_cache[tile] = hit
        return hit

    def _chip_map(self) -> tuple[np.ndarray, ...]:
        """The whole chip's device map as C-contiguous int64 arrays, in FIELDS order."""
        hit = self._map_cache.get("chip")
        if hit is None:
            dm = self.device_map
            hit = tuple(np.ascontiguousarray(getattr(dm, f), dtype=np.int64) for f in FIELDS)
            self._map_cache["chip"] = hit
        return hit

    def _rinv(self) -> np.ndarray:
        """Every device's range reciprocal (tiles, cols, rows), derived from the map (§5.4)."""
        hit = self._map_cache.get("rinv")
        if hit is None:
            dm = self.device_map
            hit = np.ascontiguousarray(range_reciprocal(self.cfg, dm.wmax, dm.wmin))
            self._map_cache["rinv"] = hit
        return hit

    def _shape(self, tile: int | None) -> tuple:
        """The kernels' step-shape arguments: mode code, table, rinv (of a tile, or the chip)."""
        rinv = self._rinv() if tile is None else self._rinv()[tile]
        return (*self._shape_args_at(self.settings.temperature), rinv, self.cfg.w_bits)

    def _shape_args_at(self, temperature: int) -> tuple:
        """Mode code and table with the step factor of T (§11.4): the nodes scaled, and the
        linear mode as the `bottom` mode with every node CS[T]; as loaded at T0."""
        if temperature == T_REF:
            return self._shape_args
        hit = self._shape_at.get(temperature)
        if hit is None:
            code, table = self._shape_args
            if SHAPE_MODES[code] == "linear":
                code = SHAPE_MODES.index("bottom")
            hit = (code, np.ascontiguousarray(physics.scaled_nodes(table, temperature)))
            self._shape_at[temperature] = hit
        return hit

    # ----- time (§11) -----
    def load_device_key(self, key: int) -> None:
        """Set the chip's device key (per-device drift exponents and decay rates, §11.2); like
        the map, RESET keeps it."""
        self.device_key = physics.check_device_key(key)

    def device_nu(self, tile: int) -> np.ndarray:
        """Every device's drift exponent code nu_d of a tile (cols, rows) under the settings."""
        self._tile(tile)
        return physics.device_nu(self.cfg, self.device_key, tile, self.settings)

    def device_rate(self, tile: int) -> np.ndarray:
        """Every device's decay rate code rt_d of a tile (cols, rows), Python ints."""
        self._tile(tile)
        return physics.device_rate(self.cfg, self.device_key, tile, self.settings)

    def advance(self, dt: int) -> int:
        """ADVANCE: time passes by ``dt`` ms at the set temperature; every device of every
        tile drifts and decays (§11.3). Returns the new chip time in ms."""
        if isinstance(dt, bool) or not isinstance(dt, int | np.integer) or not (
                0 <= dt < 2**DT_BITS):
            raise ValueError(f"ADVANCE's step must be an integer number of ms in [0, "
                             f"2**{DT_BITS} - 1], got {dt!r}")
        dt, s = int(dt), self.settings
        time = physics.check_time(self.time + dt, "chip time")
        step = physics.age_step(dt, s.temperature)
        ages = [physics.check_time(a + step, f"tile {t}'s drift age")
                for t, a in enumerate(self.ages)]
        for t in range(self.cfg.tiles):
            dl = physics.drift_log(self.ages[t], ages[t])
            drift = dl > 0 and s.drift_nu + s.drift_nu_dtod > 0
            decay = dt > 0 and s.decay_rate > 0
            if not (drift or decay):
                continue
            nu = self.device_nu(t) if drift else np.zeros((self.cfg.cols, self.cfg.rows),
                                                           dtype=np.int64)
            rate = self.device_rate(t) if decay else None
            self.weights[t] = physics.advance_tile(self.weights[t], nu, rate, dl, dt)
        self.time, self.ages = time, ages
        return self.time

    def update(self, tile: int, x, d, *, counts: bool = True) -> np.ndarray | None:
        """Stochastic pulse update with signed probability codes x (B, n_in), d (B, n_out).

        Sample by sample, device (j, i) gets n = popcount(row_i & col_j) coincidences and moves
        up if x_i and d_j have opposite signs, down otherwise (W += -lr d x^T). Returns the
        coincidence counts (B, n_out, n_in), or None with ``counts=False``.
        """
        n_in, n_out = self._tile(tile)
        pm = self.cfg.p_max
        x = _int_array("update x codes", x, 2, -pm, pm, check=False)
        d = _int_array("update d codes", d, 2, -pm, pm, check=False)
        if x.shape[1] != n_in or d.shape[1] != n_out or x.shape[0] != d.shape[0] or not len(x):
            raise ValueError(f"update codes must have shapes (B, {n_in}) and (B, {n_out}) with the "
                             f"same B >= 1, got {x.shape} and {d.shape}")
        b = x.shape[0]
        out = np.zeros((b, n_out, n_in), dtype=np.int64) if counts else _NO_COUNTS
        w, *args = self.update_args(tile)
        pulses = kernels.update(w, x, d, *args, out, counts)
        if pulses < 0:
            bad = ("update x codes", x) if np.abs(x).max() > pm else ("update d codes", d)
            raise _range_error(*bad, -pm, pm)
        self.count_update(tile, b, pulses)
        return out if counts else None

    def update_args(self, tile: int) -> tuple:
        """The arguments of `kernels.update` but x, d and the counts (``w`` first) for an update
        of ``tile`` now; ``tile`` must be valid. With `count_update` after the kernel, the same
        update as `update` (for a caller that fuses its own work with the kernel's)."""
        s = self.settings
        return (self.weights[tile], self.cfg.p_max, s.bl,
                prng.domain_base(s.seed, prng.DOMAIN_ROW),
                prng.domain_base(s.seed, prng.DOMAIN_COL),
                prng.domain_base(s.seed, prng.DOMAIN_C2C), self.nonce, self.cfg.rows, s.dw_std,
                self._sqrt, *self._tile_map(tile), *self._shape(tile))

    def count_update(self, tile: int, samples: int, pulses: int) -> None:
        """Take the nonces and count an update of ``samples`` that `update_args` set up."""
        self._take_nonces(samples)
        c = self.counters[tile]
        c["update_samples"] += samples
        c["pulses"] += pulses

    def pulse(self, tile: int, axis: str, index: int, counts) -> None:
        """Deterministic pulses on one line of devices: counts > 0 up, < 0 down.

        axis "row": devices (j, index) for j < n_out, counts of length n_out;
        axis "col": devices (index, i) for i < n_in, counts of length n_in.
        """
        n_in, n_out = self._tile(tile)
        if axis not in ("row", "col"):
            raise ValueError(f"axis must be 'row' or 'col', got {axis!r}")
        limit = n_in if axis == "row" else n_out
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not (
            0 <= index < limit
        ):
            raise ValueError(f"{axis} index must be in [0, {limit - 1}], got {index!r}")
        length = n_out if axis == "row" else n_in
        bl = self.cfg.bl_max
        c = _int_array("pulse counts", np.asarray(counts)[None, :] if np.ndim(counts) == 1
                       else counts, 2, -bl, bl, check=False)
        if c.shape != (1, length):
            if c.size and (c.min() < -bl or c.max() > bl):
                raise _range_error("pulse counts", c, -bl, bl)
            raise ValueError(f"pulse counts on a {axis} must have length {length}, got "
                             f"{np.shape(counts)}")
        s = self.settings
        pulses = kernels.pulse_line(self.weights[tile], axis == "row", index, c[0], bl,
                                    prng.domain_base(s.seed, prng.DOMAIN_C2C), self.nonce,
                                    self.cfg.rows, s.dw_std, self._sqrt, *self._tile_map(tile),
                                    *self._shape(tile))
        if pulses < 0:
            raise _range_error("pulse counts", c, -bl, bl)
        self._take_nonces(1)
        cnt = self.counters[tile]
        cnt["pulse_ops"] += 1
        cnt["pulses"] += pulses

    def pulse_lines(self, axis: str, tiles, indices, counts) -> None:
        """Several `pulse` operations in order, one nonce each: op k puts ``counts[k]`` on line
        ``indices[k]`` of tile ``tiles[k]`` (every line along ``axis``).

        The same as calling `pulse` for each op in turn, except that bad input is refused before
        any op runs.
        """
        if axis not in ("row", "col"):
            raise ValueError(f"axis must be 'row' or 'col', got {axis!r}")
        if not len(tiles) == len(indices) == len(counts):
            raise ValueError(f"pulse_lines needs as many tiles, indices and counts, got "
                             f"{len(tiles)}, {len(indices)} and {len(counts)}")
        if not len(tiles):
            return
        row = axis == "row"
        starts = np.zeros(len(tiles) + 1, dtype=np.int64)
        for k, (tile, index, c) in enumerate(zip(tiles, indices, counts, strict=True)):
            n_in, n_out = self._tile(tile)
            limit, length = (n_in, n_out) if row else (n_out, n_in)
            if isinstance(index, bool) or not isinstance(index, int | np.integer) or not (
                0 <= index < limit
            ):
                raise ValueError(f"{axis} index must be in [0, {limit - 1}], got {index!r}")
            if np.ndim(c) != 1 or len(c) != length:
                raise ValueError(f"pulse counts on a {axis} of tile {tile} must have length "
                                 f"{length}, got {np.shape(c)}")
            starts[k + 1] = starts[k] + length
        bl = self.cfg.bl_max
        flat = _int_array("pulse counts", np.concatenate(counts)[None, :], 2, -bl, bl,
                          check=False)[0]
        tiles_a = np.asarray(tiles, dtype=np.int64)
        sent = np.empty(len(tiles), dtype=np.int64)
        s = self.settings
        total = kernels.pulse_lines(self.weights, tiles_a, row,
                                    np.asarray(indices, dtype=np.int64), flat, starts, bl,
                                    prng.domain_base(s.seed, prng.DOMAIN_C2C), self.nonce,
                                    self.cfg.rows, s.dw_std, self._sqrt, *self._chip_map(), sent,
                                    *self._shape(None))
        if total < 0:
            raise _range_error("pulse counts", flat, -bl, bl)
        self._take_nonces(len(tiles))
        for t in np.unique(tiles_a):
            cnt = self.counters[int(t)]
            on = tiles_a == t
            cnt["pulse_ops"] += int(on.sum())
            cnt["pulses"] += int(sent[on].sum())
