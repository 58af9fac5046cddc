"""Compiled loops of the host's floating-point periphery (numba): the read and update
management of `ohmflow.host.analog_tile`, the block sums of `ohmflow.host.layers` and the loss of
`ohmflow.host.mlp`, and the managed twin reads and pulse updates of `ohmflow.host.device.TwinDevice`
(the periphery and the twin's kernel in one compiled call).

Each loop does, element by element, the floating-point operations of the numpy expression it
stands for (noted beside it), in the same order and with no fused or reordered arithmetic, so the
results are the same bits; they only save the numpy calls and temporaries of a small batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from ohmflow.emulator import coincidence, kernels


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


@njit(cache=True)
def managed_dac_codes(x, noise_management, in_max):
    """Noise-managed DAC codes of the rows of ``x``: ``scale`` is ``row_abs_max(x, 0.0)`` (ones
    without noise management), ``inv`` is 1 / scale (0 for an all-zero row) and the codes are
    ``dac_codes(x, inv, in_max)``. Returns (codes, scale, inv)."""
    scale = row_abs_max(x, 0.0) if noise_management else np.ones(x.shape[0])
    inv = np.empty(x.shape[0])
    for b in range(x.shape[0]):
        inv[b] = 1.0 / scale[b] if scale[b] > 0 else 0.0
    return dac_codes(x, inv, in_max), scale, inv


@njit(cache=True)
def scale_rows(y, lsb, scale):
    """``y * (lsb * scale)[:, None]``: integer ADC codes (B, n) as floats, row b times
    ``lsb * scale[b]``."""
    out = np.empty(y.shape)
    for b in range(y.shape[0]):
        s = lsb * scale[b]
        for k in range(y.shape[1]):
            out[b, k] = np.float64(y[b, k]) * s
    return out


@njit(cache=True)
def update_codes(x, d, lr, dw_min, bl_max, bl_management, update_management, p_max, ux, ud):
    """AnalogTile.update_codes after the uniform draws ``ux`` (x's) and ``ud`` (d's): the signed
    probability codes of x and d and the pulse-train length BL, each step the float operations
    of its numpy expression in order (see `AnalogTile.update_codes`):

    ``xm, dm = row_abs_max(x, dw_min**2), row_abs_max(d, dw_min**2)``; with BL management
    ``bl = int(min(max(np.ceil(lr * xm * dm / dw_min).max(), 1.0), bl_max))``, else ``bl_max``;
    ``a = sqrt(lr / (dw_min * bl))``; ``cx, cd = a * sqrt(dm / xm), a * sqrt(xm / dm)`` (both
    ``a`` without update management); ``signed_codes(x, cx, p_max, ux)`` and ``(d, cd, p_max,
    ud)``.
    """
    reg = dw_min * dw_min
    xm = row_abs_max(x, reg)
    dm = row_abs_max(d, reg)
    bl = bl_max
    if bl_management:
        need = -np.inf
        for b in range(x.shape[0]):
            v = np.ceil(lr * xm[b] * dm[b] / dw_min)
            if v > need:
                need = v
        top = 1.0 if 1.0 > need else need  # Python's max(need, 1.0)
        bl = np.int64(bl_max if bl_max < top else top)  # min(top, bl_max), then int()
    a = math.sqrt(lr / (dw_min * bl))
    cx = np.empty(x.shape[0])
    cd = np.empty(x.shape[0])
    for b in range(x.shape[0]):
        if update_management:
            cx[b] = a * math.sqrt(dm[b] / xm[b])
            cd[b] = a * math.sqrt(xm[b] / dm[b])
        else:
            cx[b] = a
            cd[b] = a
    return signed_codes(x, cx, p_max, ux), signed_codes(d, cd, p_max, ud), bl


@njit(cache=True)
def live_samples(xc, dc):
    """``(xc != 0).any(axis=1) & (dc != 0).any(axis=1)`` and its count: the samples with a
    nonzero code on both sides."""
    live = np.zeros(xc.shape[0], dtype=np.bool_)
    n = 0
    for b in range(xc.shape[0]):
        on = False
        for i in range(xc.shape[1]):
            if xc[b, i] != 0:
                on = True
                break
        if on:
            on = False
            for j in range(dc.shape[1]):
                if dc[b, j] != 0:
                    on = True
                    break
        live[b] = on
        n += on
    return live, n


@njit(cache=True)
def plus_bias(y, bias):
    """``(0.0 + y) + bias``: a layer's output of one block (added to zeros as the blocks' sum
    is), plus the bias broadcast over the rows."""
    out = np.empty(y.shape)
    for b in range(y.shape[0]):
        for k in range(y.shape[1]):
            out[b, k] = (0.0 + y[b, k]) + bias[k]
    return out


@njit(cache=True)
def all_finite(a):
    """``np.isfinite(a).all()`` for a 2-D float array."""
    for b in range(a.shape[0]):
        for i in range(a.shape[1]):
            if not math.isfinite(a[b, i]):
                return False
    return True


@njit(cache=True)
def minus_row_max(a):
    """``a - a.max(axis=1, keepdims=True)`` and ``a.argmax(axis=1)`` of a 2-D float array (a
    NaN is the maximum of its row and the first NaN its argmax, as in numpy)."""
    out = np.empty(a.shape)
    arg = np.empty(a.shape[0], dtype=np.int64)
    for b in range(a.shape[0]):
        m = a[b, 0]
        k = 0
        for i in range(1, a.shape[1]):
            v = a[b, i]
            if not math.isnan(m) and (math.isnan(v) or v > m):
                m = v
                k = i
        for i in range(a.shape[1]):
            out[b, i] = a[b, i] - m
        arg[b] = k
    return out, arg


@njit(cache=True)
def xent_grad(e, s, y, arg):
    """``p = e / s[:, None]``; returns ``np.maximum(p[arange(n), y], 1e-300)``, the gradient
    ``(p - onehot(y)) / n`` and the count of ``arg == y`` (labels index as numpy does: -k
    counts from the last class)."""
    n, c = e.shape
    grad = np.empty(e.shape)
    pick = np.empty(n)
    correct = 0
    for b in range(n):
        for i in range(c):
            grad[b, i] = e[b, i] / s[b]
        k = y[b]
        if k < -c or k >= c:
            raise IndexError("a label is not a class index of the logits")
        correct += arg[b] == k
        if k < 0:
            k += c
        v = grad[b, k]
        pick[b] = v if v >= 1e-300 or math.isnan(v) else 1e-300
        grad[b, k] -= 1.0
    for b in range(n):
        for i in range(c):
            grad[b, i] /= n
    return pick, grad, correct


@njit(cache=True)
def managed_read(x, noise_management, dac_max, lsb, w, transpose, n_in, n_out, in_max, clip_to,
                 gain, shift, sigma, out_max, base, nonce0):
    """One managed read in one call: ``codes, scale, inv = managed_dac_codes(x,
    noise_management, dac_max)``, the twin's read kernel on the codes (the arguments from ``w``
    on are `Twin.read_args`'), then ``scale_rows(y, lsb, scale)``. Returns (out, sat, total,
    scale, inv); total is -1 (nothing read) if a code lies outside ±``in_max``, -2 (nothing
    read) if x holds NaN or inf."""
    if not all_finite(x):
        return (np.empty((0, 0)), np.empty(0, dtype=np.int64), -2, np.empty(0), np.empty(0))
    codes, scale, inv = managed_dac_codes(x, noise_management, dac_max)
    b = x.shape[0]
    y = np.empty((b, n_in if transpose else n_out), dtype=np.int64)
    sat = np.empty(b, dtype=np.int64)
    total = kernels.read(w, codes, transpose, n_in, n_out, in_max, clip_to, gain, shift, sigma,
                         out_max, base, nonce0, y, sat)
    return scale_rows(y, lsb, scale), sat, total, scale, inv


@njit(cache=True)
def live_update(xc, dc, live, n_live, w, p_max, bl, row_base, col_base, c2c_base, nonce0, rows,
                dw_std, sqrt, su, sd, ku, kd, wmax, wmin, mode, table, rinv, w_bits):
    """The twin's pulse update (`coincidence.update`: the states of `kernels.update`) on the live
    samples ``xc[live]``, ``dc[live]`` (in order; ``n_live`` of them, `live_samples`), in one
    call; the arguments from ``w`` on are `Twin.update_args`'. Returns the pulses, or -1 (nothing
    changed) if a code lies outside ±``p_max``."""
    if n_live < xc.shape[0]:
        xl = np.empty((n_live, xc.shape[1]), dtype=np.int64)
        dl = np.empty((n_live, dc.shape[1]), dtype=np.int64)
        k = 0
        for b in range(xc.shape[0]):
            if live[b]:
                xl[k] = xc[b]
                dl[k] = dc[b]
                k += 1
    else:
        xl = np.ascontiguousarray(xc)
        dl = np.ascontiguousarray(dc)
    return coincidence.update(w, xl, dl, p_max, bl, row_base, col_base, c2c_base, nonce0, rows,
                              dw_std, sqrt, su, sd, ku, kd, wmax, wmin, mode, table, rinv, w_bits)


@njit(cache=True)
def coded_update(x, d, lr, dw_min, bl_max, bl_management, update_management, u, w, p_max,
                 row_base, col_base, c2c_base, nonce0, rows, dw_std, sqrt, su, sd, ku, kd, wmax,
                 wmin, mode, table, rinv, w_bits):
    """A whole managed pulse update in one call: ``update_codes`` of the float x (B, n_in) and
    d (B, n_out) with the uniform draws ``u`` (x's B * n_in first, then d's B * n_out, in one
    flat array), `live_samples`, and the twin's pulse update kernel of the live samples at the
    BL just chosen. The arguments from ``w`` on are `Twin.update_args`' but its BL. Returns
    (pulses, live samples, BL); nothing changes when no sample is live, and pulses is -1
    (nothing changed) if a code lies outside ±``p_max``, -2 or -3 if x or d holds NaN or inf."""
    if not all_finite(x):
        return -2, 0, 0
    if not all_finite(d):
        return -3, 0, 0
    nx = x.shape[0] * x.shape[1]
    ux = u[:nx].reshape(x.shape)
    ud = u[nx:nx + d.shape[0] * d.shape[1]].reshape(d.shape)
    xc, dc, bl = update_codes(x, d, lr, dw_min, bl_max, bl_management, update_management, p_max,
                              ux, ud)
    live, n_live = live_samples(xc, dc)
    if n_live == 0:
        return 0, 0, bl
    pulses = live_update(xc, dc, live, n_live, w, p_max, bl, row_base, col_base, c2c_base, nonce0,
                         rows, dw_std, sqrt, su, sd, ku, kd, wmax, wmin, mode, table, rinv,
                         w_bits)
    return pulses, n_live, bl
