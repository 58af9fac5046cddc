"""Mixed precision (Nandakumar et al. 2020), aihwkit's ``MixedPrecisionCompound``.

The rank update is computed digitally into a float accumulator chi (n_out, n_in):
chi += -lr * d^T x (x and d optionally quantized to ``n_x_bins`` / ``n_d_bins`` levels of their
abs-max, stochastically rounded). Every ``transfer_every`` batches the rows of chi (``n_rows_per_
transfer`` at a time, -1: all) are programmed onto the weight array by deterministic PULSE
commands, one per output row that has work: n = trunc(transfer_lr * chi / eps) pulses per device
(eps: ``granularity``, 0 = the array's mean step dw_min measured on the device map), at most the
chip's ``bl_max`` per transfer; chi keeps the rest (chi -= n * eps / transfer_lr), so a clipped
count is carried to the next transfer, never lost. The transfer is open loop: a device whose step
differs from eps (device-to-device and cycle-to-cycle variation, soft bounds) moves by its own
steps.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from ohmflow.host.algorithms.base import (
    Algorithm,
    UpdateRule,
    chunk_reads,
    dw_min_of,
    pulse_outputs,
)
from ohmflow.host.analog_tile import stochastic_round


def quantize(v: np.ndarray, bins: int, stochastic: bool, rng) -> np.ndarray:
    """``v`` (B, n) on ``bins`` levels of each row's abs-max (0 bins: unchanged)."""
    if bins == 0:
        return v
    m = np.abs(v).max(axis=1, keepdims=True)
    scale = np.divide(bins, m, out=np.zeros_like(m), where=m > 0)
    q = v * scale
    q = stochastic_round(q, rng) if stochastic else np.rint(q)
    return np.divide(q, scale, out=np.zeros_like(v), where=scale > 0)


class MixedPrecisionRule(UpdateRule):
    def __init__(self, algo, weight, extra):
        super().__init__(algo, weight, extra)
        self.chi = np.zeros((weight.n_out, weight.n_in))
        self.credit = 0.0
        self.ptr = 0
        self.eps = algo.granularity or dw_min_of(weight)
        self.bl = weight.chips.config.bl_max

    def update(self, x, d, lr, rng, ledger=None) -> None:
        a = self.algo
        xq = quantize(x, a.n_x_bins, a.stoc_round_x, rng)
        dq = quantize(d, a.n_d_bins, a.stoc_round_d, rng)
        self.chi -= lr * (dq.T @ xq)
        events, self.credit = chunk_reads(self.credit, 1.0 / a.transfer_every)
        if not events:
            return
        n_out = self.weight.n_out
        rows = n_out if a.n_rows_per_transfer < 0 else min(a.n_rows_per_transfer, n_out)
        js = [(self.ptr + k) % n_out for k in range(rows)]
        self.ptr = (self.ptr + rows) % n_out
        self.count["transfers"] += 1
        # every row's counts at once (elementwise, as row by row); rows without work get no PULSE
        n = np.clip(np.trunc(a.transfer_lr * self.chi[js] / self.eps), -self.bl,
                    self.bl).astype(np.int64)
        live = n.any(axis=1)
        if not live.any():
            return
        live_rows = np.flatnonzero(live)
        self.count["transfer_pulse_ops"] += pulse_outputs(
            self.weight, [js[k] for k in live_rows], n[live_rows], ledger)
        self.count["transfer_pulses"] += int(np.abs(n).sum())
        self.chi[js] -= n * self.eps / a.transfer_lr

    def buffers(self):
        return {"chi": self.chi.copy(), "credit": np.array(self.credit), "ptr": np.array(self.ptr)}

    def load_buffers(self, st) -> None:
        self.chi = np.asarray(st["chi"], dtype=np.float64).copy()
        self.credit = float(st["credit"])
        self.ptr = int(st["ptr"])


@dataclasses.dataclass(frozen=True)
class MixedPrecision(Algorithm):
    """aihwkit's ``MixedPrecisionCompound`` with its defaults (transfer_every in batches)."""

    name: ClassVar[str] = "mixed-precision"
    aihwkit: ClassVar[str] = "MixedPrecisionCompound"
    limits: ClassVar[dict] = {"transfer_every": (int, 1, None, False),
                              "n_rows_per_transfer": (int, -1, None, False),
                              "granularity": (float, 0.0, None, False),
                              "transfer_lr": (float, 0.0, None, True),
                              "n_x_bins": (int, 0, None, False), "n_d_bins": (int, 0, None, False)}
    rule_class: ClassVar[type] = MixedPrecisionRule

    transfer_every: int = 1  #: batches between transfers
    n_rows_per_transfer: int = -1  #: output rows programmed per transfer (-1: all)
    granularity: float = 0.0  #: eps of a pulse (0: the array's dw_min)
    transfer_lr: float = 1.0
    n_x_bins: int = 0  #: quantization levels of x in the digital outer product (0: none)
    n_d_bins: int = 0
    stoc_round_x: bool = True
    stoc_round_d: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_rows_per_transfer == 0:
            raise ValueError("option n_rows_per_transfer must be -1 (all rows) or >= 1, got 0")
