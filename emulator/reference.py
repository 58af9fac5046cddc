"""Floating-point reference of the chip's operations: what the integer contract approximates.

These are the ideal (noise-free, unquantized, expected-value) counterparts of the twin's operations,
used by tests to check that the integer arithmetic means what docs/numerics.md says, and by the
host to turn real-valued vectors into codes (docs/numerics.md §10).
"""

from __future__ import annotations

import numpy as np
from ohmflow.emulator.config import ChipConfig, Settings


def states_to_weights(cfg: ChipConfig, states: np.ndarray) -> np.ndarray:
    """Device states (integers) as real weights."""
    return np.asarray(states, dtype=np.float64) / 2.0**cfg.w_frac


def weights_to_states(cfg: ChipConfig, w: np.ndarray) -> np.ndarray:
    """Real weights as the nearest device states (saturated to the state range)."""
    w = np.asarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError("weights contain NaN or inf")
    return np.clip(np.rint(w * 2.0**cfg.w_frac), cfg.w_min_code, cfg.w_max_code).astype(np.int64)


def adc_ideal(acc: np.ndarray, gain: int, shift: int) -> np.ndarray:
    """The ADC's transfer without noise, rounding or clipping: acc * gain / 2**shift (in codes)."""
    return np.asarray(acc, dtype=np.float64) * gain / 2.0**shift


def forward_ideal(settings: Settings, states: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Expected forward ADC output in (fractional) codes: no noise, no rounding, no clipping."""
    return adc_ideal(np.asarray(x, dtype=np.float64) @ np.asarray(states, np.float64).T,
                     settings.fwd_gain, settings.fwd_shift)


def backward_ideal(settings: Settings, states: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Expected backward ADC output in codes."""
    return adc_ideal(np.asarray(d, dtype=np.float64) @ np.asarray(states, np.float64),
                     settings.bwd_gain, settings.bwd_shift)


def expected_coincidences(cfg: ChipConfig, bl: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """E[n[j, i]] = BL * |p_i| / 2**p_bits * |q_j| / 2**p_bits for one sample."""
    pp = np.abs(np.asarray(p, dtype=np.float64)) / cfg.p_max
    qq = np.abs(np.asarray(q, dtype=np.float64)) / cfg.p_max
    return bl * np.outer(qq, pp)


def expected_update(cfg: ChipConfig, bl: int, p, q, su, sd) -> np.ndarray:
    """E[state change] of one sample for ConstantStep devices away from their bounds (LSBs)."""
    n = expected_coincidences(cfg, bl, p, q)
    up = (np.asarray(q)[:, None] < 0) != (np.asarray(p)[None, :] < 0)
    return np.where(up, n * su, -n * sd)


def update_codes(cfg: ChipConfig, bl: int, x: np.ndarray, d: np.ndarray, lr: float,
                 dw: float) -> tuple[np.ndarray, np.ndarray]:
    """Probability codes for E[dW] = -lr * d x^T with a per-pulse step of ``dw`` (weight units).

    aihwkit's update management: P_x = c_x |x|, P_d = c_d |d| with c_x c_d BL dw = lr and
    c_x max|x| = c_d max|d| (balanced), probabilities clipped to 1. Works row-wise on batches.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    if not (np.isfinite(x).all() and np.isfinite(d).all()):
        raise ValueError("update vectors contain NaN or inf")
    if not (lr >= 0 and dw > 0):
        raise ValueError(f"need lr >= 0 and dw > 0, got lr={lr}, dw={dw}")
    xm = np.abs(x).max(axis=1, keepdims=True)
    dm = np.abs(d).max(axis=1, keepdims=True)
    c = np.sqrt(lr / (bl * dw))
    ratio = np.sqrt(np.divide(dm, xm, out=np.ones_like(xm), where=xm > 0))
    ratio = np.where(dm > 0, ratio, 1.0)
    cx, cd = c * ratio, c / ratio
    px = np.clip(cx * np.abs(x), 0.0, 1.0)
    pd = np.clip(cd * np.abs(d), 0.0, 1.0)
    sx = np.where(x < 0, -1, 1)
    sd = np.where(d < 0, -1, 1)
    return (sx * np.rint(px * cfg.p_max)).astype(np.int64), (
        sd * np.rint(pd * cfg.p_max)
    ).astype(np.int64)
