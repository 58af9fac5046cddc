"""The stochastic pulse update (docs/numerics.md §5.2–§5.4) visiting only the devices that pulse.

`ohmflow.emulator.kernels.update` checks every (column, live row) pair of a sample for a
coincidence of their pulse trains. Most pairs have none (a training sample of the digits MLP
pulses about 2 % of its devices), so this kernel first files the rows by the slots they fire in
(one bit per row and slot), then, for each column, ORs the row sets of the slots the column
fires in: the set bits are exactly the rows whose trains meet the column's. Each such device gets
the same coincidence count, random word and response as in `kernels.update`, in the same order
(columns ascending, rows ascending), so the states and the pulse total are the same bits; the
work per sample is the pulses and the slot bits instead of n_out x n_in pairs.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros  # cttz; numba is pinned exactly
from ohmflow.emulator.kernels import _hash, _nonce_key, _outside, _popcount, _pulse_device

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_LOW6 = np.uint64(63)
_BYTE = np.uint64(255)
_TWO, _THREE = np.uint64(2), np.uint64(3)
_S8, _S16, _S24 = np.uint64(8), np.uint64(16), np.uint64(24)


@njit(cache=True, inline="always")
def _trains(codes, n, key, bl, out):
    """`kernels._train` without branches, so the hashes of all lines vectorise: a line of code 0
    fires in no slot (no byte is below 0) and one of |code| >= 256 in every slot (every byte is
    below it), as `kernels._train` sets them."""
    full = (_ONE << np.uint64(bl)) - _ONE if bl < 64 else ~_ZERO
    for line in range(n):
        out[line] = _ZERO
    for g in range((bl + 3) // 4):
        s = np.uint64(4 * g)
        for line in range(n):
            p = np.uint64(abs(codes[line]))
            word = _hash(key ^ np.uint64((line << 4) | g))
            mask = np.uint64((word & _BYTE) < p)
            mask |= np.uint64(((word >> _S8) & _BYTE) < p) << _ONE
            mask |= np.uint64(((word >> _S16) & _BYTE) < p) << _TWO
            mask |= np.uint64((word >> _S24) < p) << _THREE
            out[line] |= mask << s
    for line in range(n):
        out[line] &= full  # slots from BL on never fire


@njit(cache=True)
def update(w, x, d, p_max, bl, row_base, col_base, c2c_base, nonce0, rows, dw_std, sqrt,
           su, sd, ku, kd, wmax, wmin, mode, table, rinv, w_bits):
    """`kernels.update` without the coincidence counts (the same arguments but ``counts`` and
    ``want_counts``): the same device states and return value (the pulses, or -1 with nothing
    changed if a code lies outside ±``p_max``)."""
    if _outside(x, p_max) or _outside(d, p_max):
        return -1
    n_in = x.shape[1]
    n_out = d.shape[1]
    words = (n_in + 63) >> 6
    r_tr = np.empty(n_in, dtype=np.uint64)
    c_tr = np.empty(n_out, dtype=np.uint64)
    #: bit i of by_slot[s, i >> 6] (i & 63): row i fires in slot s
    by_slot = np.zeros((max(bl, 1), words), dtype=np.uint64)
    pulses = 0
    for b in range(x.shape[0]):
        _trains(x[b], n_in, _nonce_key(row_base, nonce0, b), bl, r_tr)
        _trains(d[b], n_out, _nonce_key(col_base, nonce0, b), bl, c_tr)
        by_slot[:] = _ZERO
        for i in range(n_in):
            t = r_tr[i]
            bit = _ONE << (np.uint64(i) & _LOW6)
            while t != _ZERO:
                by_slot[np.int64(trailing_zeros(t)), i >> 6] |= bit
                t &= t - _ONE
        c2c = _nonce_key(c2c_base, nonce0, b)
        for j in range(n_out):
            cj = c_tr[j]
            if cj == _ZERO:
                continue
            d_neg = d[b, j] < 0
            for wd in range(words):
                met = _ZERO  # rows of this word whose train meets column j's
                t = cj
                while t != _ZERO:
                    met |= by_slot[np.int64(trailing_zeros(t)), wd]
                    t &= t - _ONE
                while met != _ZERO:
                    i = (wd << 6) + np.int64(trailing_zeros(met))
                    met &= met - _ONE
                    n = _popcount(r_tr[i] & cj)
                    pulses += n
                    _pulse_device(w, j, i, n, d_neg != (x[b, i] < 0), c2c, rows, su, sd, ku,
                                  kd, wmin, wmax, dw_std, sqrt, mode, table, rinv, w_bits)
    return pulses
