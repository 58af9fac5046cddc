"""The bit-exact software twin of the chip (docs/numerics.md), in vectorised integer numpy.

`Twin` holds what the chip holds: device states, the device map, run-time settings, the PRNG nonce
and per-tile counters. Its operations take and return the integer codes the hardware sees; the
floating-point periphery (scaling, bias, activations, update management) belongs to the host.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from ohmflow.emulator import prng
from ohmflow.emulator.config import (
    C2C_FRAC,
    C2C_SHIFT,
    COUNTERS,
    NOISE_FRAC,
    SLOPE_FRAC,
    SQRT_FRAC,
    ChipConfig,
    Settings,
)
from ohmflow.emulator.fabrication import FIELDS, DeviceMap, nominal


def rnd_shift(x: np.ndarray, s: int) -> np.ndarray:
    """Round half up, then shift right: floor((x + 2**(s-1)) / 2**s); identity for s = 0."""
    if s == 0:
        return x
    return (x + (1 << (s - 1))) >> s


def sqrt_table(bl_max: int) -> np.ndarray:
    """SQRT[n] = floor(sqrt(n) * 2**SQRT_FRAC), n = 0..bl_max, in exact integer arithmetic."""
    return np.array([math.isqrt(n << (2 * SQRT_FRAC)) for n in range(bl_max + 1)], dtype=np.int64)


def _int_array(name: str, a, ndim: int, lo: int, hi: int) -> np.ndarray:
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
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(
            f"{name} codes must lie in [{lo}, {hi}], got [{int(arr.min())}, {int(arr.max())}]"
        )
    return arr


@functools.lru_cache(maxsize=64)
def _train_index(n_in: int, n_out: int, groups: int) -> np.ndarray:
    """Draw indices ``(line << 4) | group`` of the rows, then of the columns (read-only)."""
    g = np.arange(groups, dtype=np.uint32)[None, :]
    idx = np.concatenate([((np.arange(n, dtype=np.uint32)[:, None] << np.uint32(4)) | g).ravel()
                          for n in (n_in, n_out)])
    idx.flags.writeable = False
    return idx


class Twin:
    """The chip in software: same config, same settings, same integer results as the gateware."""

    def __init__(self, cfg: ChipConfig, settings: Settings | None = None,
                 device_map: DeviceMap | None = None):
        if cfg.acc_bits + 16 > 62:
            raise ValueError(f"config accumulator ({cfg.acc_bits} bits) too wide for the twin")
        self.cfg = cfg
        self._sqrt = sqrt_table(cfg.bl_max)
        self._map_cache: dict = {}
        self._settings_cache: dict = {}
        self.device_map = (device_map or nominal(cfg)).copy().validate(cfg)
        self.weights = np.zeros((cfg.tiles, cfg.cols, cfg.rows), dtype=np.int64)
        self.reset(settings)

    # ----- state -----
    def reset(self, settings: Settings | None = None) -> None:
        """Weights to 0, settings to default (or given), nonce and counters to 0; keeps the map."""
        self.settings = (settings or Settings.default(self.cfg)).validated(self.cfg)
        self.weights[...] = 0
        self.nonce = 0
        self.counters = [dict.fromkeys(COUNTERS, 0) for _ in range(self.cfg.tiles)]

    def set(self, **kw) -> Settings:
        """Change run-time settings (validated); a new seed restarts the nonce at 0."""
        try:  # training toggles between a few settings (BL per layer): reuse validated ones
            key = (self.settings, tuple(sorted(kw.items())))
            new = self._settings_cache.get(key)
        except TypeError:  # unhashable values (lists): validate afresh
            key, new = None, None
        if new is None:
            new = self.settings.replace(self.cfg, **kw)
            if key is not None and len(self._settings_cache) < 256:
                self._settings_cache[key] = new
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

    def _window_map(self, tile: int, n_in: int, n_out: int):
        """Per-device parameters of a tile's window, flat, as the update needs them (cached)."""
        key = (tile, n_in, n_out)
        hit = self._map_cache.get(key)
        if hit is None:
            dm = self.device_map
            win = (tile, slice(0, n_out), slice(0, n_in))
            slopes = np.stack((dm.kd[win].ravel(), dm.ku[win].ravel()))
            hit = (np.stack((dm.sd[win].ravel(), dm.su[win].ravel())), slopes,
                   dm.wmin[win].ravel(), dm.wmax[win].ravel(), bool(slopes.any()))
            self._map_cache[key] = hit
        return hit

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
    def _adc(self, acc: np.ndarray, gain: int, shift: int, sigma: int, domain: int):
        b, n = acc.shape
        keys = prng.nonce_keys(self.settings.seed, domain, self._take_nonces(b), b)
        g = prng.gauss(prng.draw_keys(keys, np.arange(n, dtype=np.uint32)))
        v = ((acc * gain) >> (shift - NOISE_FRAC)) + g * sigma + (1 << (NOISE_FRAC - 1))
        q = v >> NOISE_FRAC
        m = 2 ** (self.settings.out_bits - 1) - 1
        code = np.clip(q, -m, m)
        return code, (q != code).sum(axis=1)

    def _dac(self, name: str, x, n: int) -> np.ndarray:
        x = _int_array(name, x, 2, -self.cfg.in_max, self.cfg.in_max)
        if x.shape[1] != n or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (batch >= 1, {n}), got {x.shape}")
        m = 2 ** (self.settings.in_bits - 1) - 1
        return np.clip(x, -m, m)

    @staticmethod
    def _mvm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # Exact: every partial sum is an integer below 2**53 (acc_bits <= 46), so float64 BLAS
        # adds without rounding; the result is converted back to int64.
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)

    def forward(self, tile: int, x) -> tuple[np.ndarray, np.ndarray]:
        """y = ADC(W . DAC(x) + noise) for a batch of DAC codes x (B, n_in).

        Returns the ADC codes (B, n_out) and the number of saturated outputs per vector (B,).
        """
        n_in, n_out = self._tile(tile)
        x = self._dac("forward input", x, n_in)
        s = self.settings
        acc = self._mvm(x, self.weights[tile, :n_out, :n_in].T)
        y, sat = self._adc(acc, s.fwd_gain, s.fwd_shift, s.fwd_sigma, prng.DOMAIN_FWD)
        self._count(tile, x.shape[0], n_in, n_out, sat, "fwd_vectors")
        return y, sat

    def backward(self, tile: int, d) -> tuple[np.ndarray, np.ndarray]:
        """dx = ADC(W^T . DAC(d) + noise): the transposed read, d (B, n_out) -> (B, n_in)."""
        n_in, n_out = self._tile(tile)
        d = self._dac("backward input", d, n_out)
        s = self.settings
        acc = self._mvm(d, self.weights[tile, :n_out, :n_in])
        y, sat = self._adc(acc, s.bwd_gain, s.bwd_shift, s.bwd_sigma, prng.DOMAIN_BWD)
        self._count(tile, d.shape[0], n_out, n_in, sat, "bwd_vectors")
        return y, sat

    def _count(self, tile, b, n_dac, n_adc, sat, kind):
        c = self.counters[tile]
        c[kind] += b
        c["macs"] += b * n_dac * n_adc
        c["dac_conversions"] += b * n_dac
        c["adc_conversions"] += b * n_adc
        c["adc_saturations"] += int(sat.sum())

    # ----- writes -----
    def _trains(self, x: np.ndarray, d: np.ndarray, nonce0: int) -> tuple[np.ndarray, np.ndarray]:
        """Pulse trains of the rows (codes x, domain ROW) and the columns (codes d, domain COL)
        as uint64 bit masks (bit t = slot t; bits from BL on are zero), line-major: shapes
        (n_in, B) and (n_out, B), C-contiguous; both in one pass."""
        bl = self.settings.bl
        groups = (bl + 3) // 4
        b, n_in = x.shape
        n = n_in + d.shape[1]
        keys = np.empty((b, n * groups), dtype=np.uint32)  # rows: the ROW key, columns: COL
        keys[:, : n_in * groups] = prng.nonce_keys(self.settings.seed, prng.DOMAIN_ROW, nonce0,
                                                   b)[:, None]
        keys[:, n_in * groups :] = prng.nonce_keys(self.settings.seed, prng.DOMAIN_COL, nonce0,
                                                   b)[:, None]
        keys ^= _train_index(n_in, d.shape[1], groups)
        words = prng.lowbias32_np(keys)
        u = words.view(np.uint8).reshape(b, n, groups * 4)[:, :, :bl]
        fire = u < np.abs(np.concatenate((x, d), axis=1))[:, :, None]
        packed = np.zeros((b, n, 8), dtype=np.uint8)
        packed[:, :, : (bl + 7) // 8] = np.packbits(fire, axis=2, bitorder="little")
        trains = np.ascontiguousarray(packed.view("<u8")[:, :, 0].T)
        return trains[:n_in], trains[n_in:]

    def update(self, tile: int, x, d, *, counts: bool = True) -> np.ndarray | None:
        """Stochastic pulse update with signed probability codes x (B, n_in), d (B, n_out).

        Sample by sample, device (j, i) gets n = popcount(row_i & col_j) coincidences and moves
        up if x_i and d_j have opposite signs, down otherwise (W += -lr d x^T). Returns the
        coincidence counts (B, n_out, n_in), or None with ``counts=False``.
        """
        n_in, n_out = self._tile(tile)
        pm = self.cfg.p_max
        x = _int_array("update x codes", x, 2, -pm, pm)
        d = _int_array("update d codes", d, 2, -pm, pm)
        if x.shape[1] != n_in or d.shape[1] != n_out or x.shape[0] != d.shape[0] or not len(x):
            raise ValueError(f"update codes must have shapes (B, {n_in}) and (B, {n_out}) with the "
                             f"same B >= 1, got {x.shape} and {d.shape}")
        b = x.shape[0]
        nonce0 = self._take_nonces(b)
        rows, cols = self._trains(x, d, nonce0)
        # counts device-major (j, i, sample), the order _apply walks them in; C order, so the
        # reshapes below are views
        n_dev = np.bitwise_count(cols[:, None, :] & rows[None, :, :])
        xneg, dneg = x < 0, d < 0
        pulses = self._apply(tile, n_dev.reshape(n_out * n_in, b),
                             lambda hb, j, i: dneg[hb, j] != xneg[hb, i], nonce0)
        c = self.counters[tile]
        c["update_samples"] += b
        c["pulses"] += pulses
        return n_dev.transpose(2, 0, 1).astype(np.int64) if counts else None

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
                       else counts, 2, -bl, bl)
        if c.shape != (1, length):
            raise ValueError(f"pulse counts on a {axis} must have length {length}, got "
                             f"{np.shape(counts)}")
        n = np.zeros((n_out, n_in), dtype=np.int64)
        up = np.zeros((n_out, n_in), dtype=bool)
        if axis == "row":
            n[:, index] = np.abs(c[0])
            up[:, index] = c[0] > 0
        else:
            n[index, :] = np.abs(c[0])
            up[index, :] = c[0] > 0
        self._apply(tile, n.reshape(-1, 1), lambda hb, j, i: up[j, i], self._take_nonces(1))
        cnt = self.counters[tile]
        cnt["pulse_ops"] += 1
        cnt["pulses"] += int(n.sum())

    def _apply(self, tile: int, n: np.ndarray, up_of, nonce0: int) -> int:
        """Apply n pulses per device, sample after sample (docs/numerics.md §5.4); returns the
        number of pulses applied.

        ``n`` is (devices of the window, samples), device j * n_in + i; ``up_of(b, j, i)`` gives
        the direction of the hits.

        Exact fast path: a device whose steps do not depend on its state (slope 0) and whose
        running sum never leaves its bounds ends at start + sum of its changes; only the other
        devices are stepped sample by sample.
        """
        n_in, n_out = self.settings.shapes[tile]
        b = n.shape[1]
        # hits in device-major order, samples in order within a device
        flat = np.flatnonzero(n.reshape(-1) != 0)  # a bool mask first: numpy's fast path
        if not len(flat):
            return 0
        dev_l, hit_b = np.divmod(flat, b)
        cnt = n.reshape(-1)[flat].astype(np.int64)
        hit_j, hit_i = np.divmod(dev_l, n_in)
        dirs = up_of(hit_b, hit_j, hit_i)
        keys = prng.nonce_keys(self.settings.seed, prng.DOMAIN_C2C, nonce0, b)
        words = prng.lowbias32_np(keys[hit_b] ^ (hit_j * self.cfg.rows + hit_i).astype(np.uint32))
        g = prng.gauss(words)
        t = rnd_shift(rnd_shift(g * self.settings.dw_std, C2C_SHIFT) * self._sqrt[cnt], SQRT_FRAC)
        win = (tile, slice(0, n_out), slice(0, n_in))
        pick = dirs.astype(np.intp)  # 1 = up
        steps, slopes, lo_w, hi_w, has_slope = self._window_map(tile, n_in, n_out)
        s_all = steps[pick, dev_l]
        sign = 2 * pick - 1
        state = self.weights[win].reshape(-1)  # a copy unless the window is the whole tile

        # fast path: per device, the running sum of slope-free changes
        delta = s_all * t
        delta += 1 << (C2C_FRAC - 1)
        delta >>= C2C_FRAC
        delta += cnt * s_all
        delta *= sign
        first = np.ones(len(dev_l), dtype=bool)
        first[1:] = dev_l[1:] != dev_l[:-1]
        starts = np.flatnonzero(first)
        seg_len = np.diff(np.append(starts, len(dev_l)))
        csum = np.cumsum(delta)
        path = csum - np.repeat(csum[starts] - delta[starts], seg_len)
        path += state[dev_l]
        ok_hit = (path >= lo_w[dev_l]) & (path <= hi_w[dev_l])
        if has_slope:
            ok_hit &= slopes[pick, dev_l] == 0
        ok_dev = np.logical_and.reduceat(ok_hit, starts)
        ends = starts + seg_len - 1
        state[dev_l[ends[ok_dev]]] = path[ends[ok_dev]]

        if not ok_dev.all():
            slow = np.flatnonzero(~np.repeat(ok_dev, seg_len))  # device-major, samples in order
            if not has_slope:
                # A hit's change does not depend on the state, only its clip does, and devices
                # are independent: step the k-th hit of every device at once (k = 0, 1, ...).
                fl, moved = dev_l[slow], delta[slow]
                lo_s, hi_s = lo_w[fl], hi_w[fl]
                new_dev = np.ones(len(fl), dtype=bool)
                new_dev[1:] = fl[1:] != fl[:-1]
                first = np.flatnonzero(new_dev)
                rank = np.arange(len(fl)) - np.repeat(first, np.diff(np.append(first, len(fl))))
                order = np.argsort(rank, kind="stable")
                edges = np.searchsorted(rank[order], np.arange(rank.max() + 2))
                for k in range(len(edges) - 1):
                    h = order[edges[k]:edges[k + 1]]
                    f = fl[h]
                    state[f] = np.clip(state[f] + moved[h], lo_s[h], hi_s[h])
            else:
                slow = slow[np.argsort(hit_b[slow], kind="stable")]  # back to sample order
                hb, fl = hit_b[slow], dev_l[slow]
                s_s, k_s, t_s, c_s = s_all[slow], slopes[pick[slow], fl], t[slow], cnt[slow]
                sg, lo_s, hi_s = sign[slow], lo_w[fl], hi_w[fl]
                bounds = np.searchsorted(hb, np.arange(b + 1))
                for smp in range(b):
                    lo, hi = bounds[smp], bounds[smp + 1]
                    if lo == hi:
                        continue
                    f = fl[lo:hi]
                    w0 = state[f]
                    step = np.maximum(s_s[lo:hi] + rnd_shift(k_s[lo:hi] * w0, SLOPE_FRAC), 0)
                    total = c_s[lo:hi] * step + rnd_shift(step * t_s[lo:hi], C2C_FRAC)
                    state[f] = np.clip(w0 + sg[lo:hi] * total, lo_s[lo:hi], hi_s[lo:hi])
        self.weights[win] = state.reshape(n_out, n_in)
        return int(cnt.sum())
