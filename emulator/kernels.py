"""The twin's arithmetic as compiled loops (numba): reads and pulse updates, docs/numerics.md §4–§6.

Each kernel walks the operation in the order the contract defines it (vector after vector, sample
after sample) over int64 device states and codes, so one call does a whole batch with no
temporary arrays. Random numbers are computed where they are used from (domain base, nonce,
index), exactly as `ohmflow.emulator.prng` defines them; `Twin` checks the arguments and keeps the
counters, the kernels only compute.

Integer typing: numba turns a mix of signed and unsigned 64-bit integers into floats, so the hash
works on uint64 with uint64 constants only, and every value leaves it through an explicit int64
conversion. Shifts of int64 are arithmetic (floor), as the contract's ``>>``.

The constants imported from `ohmflow.emulator.config` are compiled into the cached kernels, and
numba's cache is keyed on this file only: after changing one of them, delete this module's
``__pycache__/kernels.*.nb*`` files.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from ohmflow.emulator.config import (
    C2C_FRAC,
    C2C_SHIFT,
    NOISE_FRAC,
    SHAPE_FRAC,
    SHAPE_POS_FRAC,
    SHAPE_SEGS,
    SLOPE_FRAC,
    SQRT_FRAC,
)
from ohmflow.emulator.prng import M1, M2, MASK32

_M1 = np.uint64(M1)
_M2 = np.uint64(M2)
_MASK = np.uint64(MASK32)
_S15 = np.uint64(15)
_S16 = np.uint64(16)
_BYTE = np.uint64(255)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@njit(cache=True, inline="always")
def _hash(x):
    """lowbias32 of a uint64 holding a 32-bit word."""
    x ^= x >> _S16
    x = (x * _M1) & _MASK
    x ^= x >> _S15
    x = (x * _M2) & _MASK
    x ^= x >> _S16
    return x


@njit(cache=True, inline="always")
def _gauss(word):
    """Sum of the four bytes of a word minus 510 (prng.gauss), as int64."""
    total = (word & _BYTE) + ((word >> np.uint64(8)) & _BYTE)
    total += ((word >> np.uint64(16)) & _BYTE) + (word >> np.uint64(24))
    return np.int64(total) - 510


@njit(cache=True, inline="always")
def _popcount(x):
    x = x - ((x >> _ONE) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always")
def _nonce_key(base, nonce0, k):
    """key(seed, domain, nonce0 + k) from the domain base lowbias32(lowbias32(seed) ^ domain)."""
    return _hash(np.uint64(base) ^ ((np.uint64(nonce0) + np.uint64(k)) & _MASK))


@njit(cache=True)
def _outside(a, bound):
    """True if any element of the 2-D array ``a`` lies outside [-bound, bound]."""
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            if a[r, c] > bound or a[r, c] < -bound:
                return True
    return False


@njit(cache=True, fastmath={"reassoc", "contract"})
def _exact_dot(a, k, b):
    """sum(a[k] * b) of float64 arrays holding integers whose products and partial sums all lie
    below 2**53: exact in any order, so the sum may be reassociated (vectorised) and fused."""
    s = 0.0
    for m in range(b.shape[0]):
        s += a[k, m] * b[m]
    return s


@njit(cache=True)
def read(w, x, transpose, n_in, n_out, in_max, clip_to, gain, shift, sigma, out_max, base, nonce0,
         y, sat):
    """Noisy ADC codes of a batch of reads (§4): forward (W x) or transposed (W^T x).

    ``w`` is a tile's states (cols, rows); ``x`` (B, n_dac) the DAC codes, which must lie within
    ±``in_max`` and are clipped to ±``clip_to`` (the run-time resolution); vector b uses nonce
    ``nonce0 + b`` under the domain ``base``. Writes ``y`` (B, n_adc) and the saturation counts
    ``sat`` (B,); returns their sum, or -1 (nothing written) if a code is out of range.
    """
    if _outside(x, in_max):
        return -1
    n_adc = n_in if transpose else n_out
    n_dac = n_out if transpose else n_in
    # The window as float64, one row per ADC output: every product and partial sum is an
    # integer below 2**53 (Twin checks acc_bits), so float64 sums exactly in any order, and each
    # output's sum over the DAC side vectorises (the CPU has no vector int64 multiply).
    wt = np.empty((n_adc, n_dac), dtype=np.float64)
    for k in range(n_adc):
        for m in range(n_dac):
            wt[k, m] = w[m, k] if transpose else w[k, m]
    xf = np.empty(n_dac, dtype=np.float64)
    acc = np.empty(n_adc, dtype=np.int64)
    total = 0
    pre = shift - NOISE_FRAC
    half = np.int64(1) << (NOISE_FRAC - 1)
    for b in range(x.shape[0]):
        for m in range(n_dac):
            xf[m] = min(max(x[b, m], -clip_to), clip_to)
        for k in range(n_adc):
            acc[k] = np.int64(_exact_dot(wt, k, xf))
        key = _nonce_key(base, nonce0, b)
        s = 0
        for k in range(n_adc):
            g = _gauss(_hash(key ^ np.uint64(k)))
            q = (((acc[k] * gain) >> pre) + g * sigma + half) >> NOISE_FRAC
            if q > out_max:
                y[b, k] = out_max
                s += 1
            elif q < -out_max:
                y[b, k] = -out_max
                s += 1
            else:
                y[b, k] = q
        sat[b] = s
        total += s
    return total


@njit(cache=True, inline="always")
def _train(codes, n, key, bl, out):
    """BL-bit pulse trains of ``n`` lines (§5.2): bit s of out[l] is slot s of line l."""
    groups = (bl + 3) // 4
    full = (_ONE << np.uint64(bl)) - _ONE if bl < 64 else ~_ZERO
    for line in range(n):
        p = np.uint64(abs(codes[line]))
        if p == _ZERO:
            out[line] = _ZERO
        elif p >= np.uint64(256):  # every byte is below 256: the train is full
            out[line] = full
        else:
            mask = _ZERO
            for g in range(groups):
                word = _hash(key ^ np.uint64((line << 4) | g))
                s = np.uint64(4 * g)
                mask |= np.uint64((word & _BYTE) < p) << s
                mask |= np.uint64(((word >> np.uint64(8)) & _BYTE) < p) << (s + _ONE)
                mask |= np.uint64(((word >> np.uint64(16)) & _BYTE) < p) << (s + np.uint64(2))
                mask |= np.uint64((word >> np.uint64(24)) < p) << (s + np.uint64(3))
            out[line] = mask & full  # slots from BL on never fire


@njit(cache=True, inline="always")
def _shape_base(s, w, lo, hi, up, mode, table, rinv, w_bits):
    """rnd(s g, SHAPE_FRAC): the device's scale times its interpolated shape node (§5.4)."""
    if mode == 1:  # bottom: x = (w - wmin) / range
        pos = ((w - lo) * rinv) >> w_bits
    else:  # centered: x = (w + range) / (2 range)
        pos = ((w - (lo - hi)) * rinv) >> (w_bits + 1)
    idx = min(pos >> SHAPE_POS_FRAC, SHAPE_SEGS - 1)
    f = pos - (idx << SHAPE_POS_FRAC)
    d = 0 if up else 1
    g = (table[d, idx] * ((np.int64(1) << SHAPE_POS_FRAC) - f) + table[d, idx + 1] * f
         + (np.int64(1) << (SHAPE_POS_FRAC - 1))) >> SHAPE_POS_FRAC
    return (s * g + (np.int64(1) << (SHAPE_FRAC - 1))) >> SHAPE_FRAC


@njit(cache=True, inline="always")
def _respond(w, n, up, s_up, s_dn, k_up, k_dn, lo, hi, word, dw_std, sqrt, mode, table, rinv,
             w_bits):
    """A device's state after n same-direction pulses from state w (§5.4).

    ``mode`` is the step-shape mode's code (0: linear, no table), ``table`` the (2, nodes) shape
    table and ``rinv`` the device's range reciprocal.
    """
    s = s_up if up else s_dn
    k = k_up if up else k_dn
    if mode != 0:
        s = _shape_base(s, w, lo, hi, up, mode, table, rinv, w_bits)
    step = s + ((k * w + (np.int64(1) << (SLOPE_FRAC - 1))) >> SLOPE_FRAC)
    if step < 0:
        step = 0
    e = (_gauss(word) * dw_std + (np.int64(1) << (C2C_SHIFT - 1))) >> C2C_SHIFT
    t = (e * sqrt[n] + (np.int64(1) << (SQRT_FRAC - 1))) >> SQRT_FRAC
    total = n * step + ((step * t + (np.int64(1) << (C2C_FRAC - 1))) >> C2C_FRAC)
    v = w + total if up else w - total
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@njit(cache=True, inline="always")
def _pulse_device(w, j, i, n, up, c2c, rows, su, sd, ku, kd, wmin, wmax, dw_std, sqrt, mode,
                  table, rinv, w_bits):
    """n same-direction pulses on device (j, i) of a tile's (cols, rows) arrays (§5.4), its
    cycle-to-cycle word drawn at index j · rows + i under the key ``c2c``."""
    word = _hash(c2c ^ np.uint64(j * rows + i))
    w[j, i] = _respond(w[j, i], n, up, su[j, i], sd[j, i], ku[j, i], kd[j, i], wmin[j, i],
                       wmax[j, i], word, dw_std, sqrt, mode, table, rinv[j, i], w_bits)


@njit(cache=True)
def update(w, x, d, p_max, bl, row_base, col_base, c2c_base, nonce0, rows, dw_std, sqrt,
           su, sd, ku, kd, wmax, wmin, mode, table, rinv, w_bits, counts, want_counts):
    """Stochastic pulse update of a batch (§5.2–§5.4), sample after sample; returns the pulses.

    ``w``, the map arrays (`fabrication.FIELDS` order) and ``rinv`` are a tile's (cols, rows);
    ``mode``, ``table`` the chip's step shape (`_respond`); x (B, n_in)
    and d (B, n_out) the signed probability codes; sample b uses nonce ``nonce0 + b``. With
    ``want_counts`` the coincidence counts go to ``counts`` (B, n_out, n_in), which must be zero.
    Returns -1 (nothing changed) if a code lies outside ±``p_max``.
    """
    if _outside(x, p_max) or _outside(d, p_max):
        return -1
    n_in = x.shape[1]
    n_out = d.shape[1]
    r_tr = np.empty(n_in, dtype=np.uint64)
    c_tr = np.empty(n_out, dtype=np.uint64)
    live = np.empty(n_in, dtype=np.int64)  # rows whose train fires at least once
    pulses = 0
    for b in range(x.shape[0]):
        _train(x[b], n_in, _nonce_key(row_base, nonce0, b), bl, r_tr)
        _train(d[b], n_out, _nonce_key(col_base, nonce0, b), bl, c_tr)
        n_live = 0
        for i in range(n_in):
            if r_tr[i] != _ZERO:
                live[n_live] = i
                n_live += 1
        c2c = _nonce_key(c2c_base, nonce0, b)
        for j in range(n_out):
            cj = c_tr[j]
            if cj == _ZERO:
                continue
            d_neg = d[b, j] < 0
            for li in range(n_live):
                i = live[li]
                hits = r_tr[i] & cj
                if hits == _ZERO:
                    continue
                n = _popcount(hits)
                pulses += n
                if want_counts:
                    counts[b, j, i] = n
                _pulse_device(w, j, i, n, d_neg != (x[b, i] < 0), c2c, rows, su, sd, ku, kd,
                              wmin, wmax, dw_std, sqrt, mode, table, rinv, w_bits)
    return pulses


@njit(cache=True)
def pulse_line(w, along_row, index, counts, bound, c2c_base, nonce, rows, dw_std, sqrt, su, sd,
               ku, kd, wmax, wmin, mode, table, rinv, w_bits):
    """Deterministic pulses (§5.5) on one line, one nonce: |counts[k]| pulses, up if > 0.

    ``along_row``: devices (k, index) (a row of inputs: one device per output k); otherwise
    devices (index, k). Returns the pulses sent, or -1 (nothing changed) if a count lies outside
    ±``bound``.
    """
    for k in range(counts.shape[0]):
        if counts[k] > bound or counts[k] < -bound:
            return -1
    c2c = _nonce_key(c2c_base, nonce, 0)
    total = 0
    for k in range(counts.shape[0]):
        c = counts[k]
        if c != 0:
            n = c if c > 0 else -c
            j = k if along_row else index
            i = index if along_row else k
            _pulse_device(w, j, i, n, c > 0, c2c, rows, su, sd, ku, kd, wmin, wmax, dw_std,
                          sqrt, mode, table, rinv, w_bits)
            total += n
    return total


@njit(cache=True)
def pulse_lines(w, tiles, along_row, indices, counts, starts, bound, c2c_base, nonce0, rows,
                dw_std, sqrt, su, sd, ku, kd, wmax, wmin, sent, mode, table, rinv, w_bits):
    """K deterministic line pulses (§5.5) in order, op k with nonce ``nonce0 + k``: as K calls of
    `pulse_line` on ``w[tiles[k]]`` (all tiles' states and maps: (tiles, cols, rows)).

    Op k's counts are ``counts[starts[k]:starts[k + 1]]``; ``sent[k]`` receives its pulses.
    Returns the pulses sent, or -1 (nothing changed) if a count lies outside ±``bound``.
    """
    for m in range(counts.shape[0]):
        if counts[m] > bound or counts[m] < -bound:
            return -1
    total = 0
    for k in range(tiles.shape[0]):
        t = tiles[k]
        index = indices[k]
        c2c = _nonce_key(c2c_base, nonce0, k)
        op = 0
        for m in range(starts[k], starts[k + 1]):
            c = counts[m]
            if c != 0:
                n = c if c > 0 else -c
                pos = m - starts[k]
                j = pos if along_row else index
                i = index if along_row else pos
                _pulse_device(w[t], j, i, n, c > 0, c2c, rows, su[t], sd[t], ku[t], kd[t],
                              wmin[t], wmax[t], dw_std, sqrt, mode, table, rinv[t], w_bits)
                op += n
        sent[k] = op
        total += op
    return total
