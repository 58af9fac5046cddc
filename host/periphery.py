"""Compiled loops of the host's update management (numba), for `ohmflow.host.analog_tile`.

Each loop does, element by element, the floating-point operations of the numpy expression it
stands for (noted beside it), in the same order and with no fused or reordered arithmetic, so the
results are the same bits; they only save the numpy calls and temporaries of a small batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def row_abs_max(a, floor):
    """``np.maximum(np.abs(a).max(axis=1), floor)`` for a 2-D float array ``a``."""
    out = np.empty(a.shape[0])
    for b in range(a.shape[0]):
        m = 0.0
        for i in range(a.shape[1]):
            v = abs(a[b, i])
            if v > m:
                m = v
        out[b] = m if m > floor else floor
    return out


@njit(cache=True)
def signed_codes(v, c, p_max, u):
    """``np.sign(v).astype(int64) * floor(np.minimum(c[:, None] * |v|, 1.0) * p_max + u)``:
    the signed probability codes of the rows of ``v``, stochastically rounded with the uniform
    draws ``u`` (same shape as ``v``)."""
    out = np.empty(v.shape, dtype=np.int64)
    for b in range(v.shape[0]):
        cb = c[b]
        for i in range(v.shape[1]):
            x = v[b, i]
            p = min(cb * abs(x), 1.0) * p_max
            r = np.int64(math.floor(p + u[b, i]))
            out[b, i] = r if x > 0 else (-r if x < 0 else 0)
    return out


@njit(cache=True)
def dac_codes(x, scale, in_max):
    """``np.rint(np.clip(x * scale[:, None], -1.0, 1.0) * in_max).astype(int64)``: each row of
    ``x`` at its scale, clipped to [-1, 1], as DAC codes (halves round to even)."""
    out = np.empty(x.shape, dtype=np.int64)
    for b in range(x.shape[0]):
        s = scale[b]
        for i in range(x.shape[1]):
            v = min(max(x[b, i] * s, -1.0), 1.0)
            out[b, i] = np.int64(np.rint(v * in_max))
    return out
