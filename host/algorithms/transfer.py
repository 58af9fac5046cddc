"""The Tiki-Taka family: TTv1, TTv2, chopped TTv2 and AGAD, on two arrays per layer.

Each layer has a fast array A (``layer{k}.A``, receives the gradient by stochastic pulses) and the
weight array C (``layer{k}``, read forward and backward; aihwkit's ``gamma`` = 0). A transfer
reads columns of A (forward reads of one-hot inputs, `read_columns`) in sequence, wrapping at the
edge, and moves C by deterministic PULSE commands on the same inputs (`pulse_column`):

- TTv1 (`TransferCompound`, Gokmen & Haensch 2020): C += transfer_lr * A[:, i], as pulse counts
  stochastically rounded from transfer_lr * A[:, i] / dw_min(C), at most ``transfer_bl``;
- TTv2 (`BufferedTransferCompound`, Gokmen 2021): a digital buffer H (in pulses) accumulates
  transfer_lr * A[:, i] / (thres_scale * dw_min(A)); where |H| >= 1, trunc(H) pulses (at most
  ``transfer_bl``) go to C and H keeps ``momentum`` of itself (``forget_buffer``) or loses what
  was sent;
- c-TTv2 (`ChoppedTransferCompound`, Rasch et al. 2024): as TTv2, with a sign c_i per input
  (chopper) applied to x in A's update and to A's read-out; c_i flips after a read of column i
  with probability ``in_chop_prob`` (``in_chop_random``) or every 1/in_chop_prob reads;
- AGAD (`DynamicTransferCompound`, Rasch et al. 2024): the chopper flips regularly; the reads of
  a chopper period are averaged (later reads weighted up to ``tail_weightening`` times more) and
  at the flip H gains c_i * (mean of this period - mean of the previous one), so A's offset (its
  symmetry point) is subtracted by a reference measured on the fly instead of a reference array.
  aihwkit's significance test on the difference is not done.

Transfers are counted in batches (``units_in_mbatch``) or samples, as aihwkit; here they happen
after the batch's update of A (aihwkit interleaves them with the samples of a batch).
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
    pulse_column,
    pulse_inputs,
    read_columns,
)
from ohmflow.host.analog_tile import stochastic_round

_LR = (float, 0.0, None, True)
_NONNEG = (float, 0.0, None, False)
_BL = (int, 1, 63, False)


class TransferRule(UpdateRule):
    """The transfer schedule and chopper common to the family; `transfer_column` differs."""

    buffered = True

    def __init__(self, algo, weight, extra):
        super().__init__(algo, weight, extra)
        self.A = extra["A"]
        n_in, n_out = weight.n_in, weight.n_out
        self.ptr = 0
        self.credit = 0.0
        self.chop = np.ones(n_in, dtype=np.int64)
        self.H = np.zeros((n_out, n_in))
        self.dw_a = dw_min_of(self.A)
        self.dw_c = dw_min_of(weight)
        self._sends: tuple[list, list] | None = None  #: C's PULSE ops queued by a transfer

    def lrs(self, lr: float) -> tuple[float, float]:
        a = self.algo
        fast = a.fast_lr * lr if a.scale_fast_lr else a.fast_lr
        tr = a.transfer_lr * lr if a.scale_transfer_lr else a.transfer_lr
        return fast, tr

    def update(self, x, d, lr, rng, ledger=None) -> None:
        a = self.algo
        fast, tr = self.lrs(lr)
        xa = x * self.chop if self.algo.chopped else x
        self.A.update(xa, d, fast, rng, ledger)
        if a.transfer_every == 0:
            return
        per = 1.0 / a.transfer_every if a.units_in_mbatch else len(x) / a.transfer_every
        events, self.credit = chunk_reads(self.credit, per)
        reads = events * a.n_reads_per_transfer
        if not reads:
            return
        n_in = self.weight.n_in
        cols = [(self.ptr + k) % n_in for k in range(reads)]
        self.ptr = (self.ptr + reads) % n_in
        v = read_columns(self.A, cols, ledger)
        self.count["transfers"] += events
        self.count["transfer_reads"] += reads
        self._sends = ([], [])
        for k, i in enumerate(cols):
            self.transfer_column(i, v[:, k], tr, rng, ledger)
        # C's pulses change nothing the loop reads (A was read before it): they go out after it,
        # in the loop's order, each chip's in one device call
        sent, self._sends = self._sends, None
        if sent[0]:
            self.count["transfer_pulse_ops"] += pulse_inputs(self.weight, sent[0],
                                                             np.array(sent[1]), ledger)

    def send(self, i: int, counts: np.ndarray, ledger) -> None:
        """PULSE ``counts`` on C's input ``i`` (queued during `update`'s transfer loop)."""
        if counts.any():
            if self._sends is None:
                self.count["transfer_pulse_ops"] += pulse_column(self.weight, i, counts, ledger)
            else:
                self._sends[0].append(i)
                self._sends[1].append(counts)
            self.count["transfer_pulses"] += int(np.abs(counts).sum())

    def buffer_to_pulses(self, i: int, ledger) -> None:
        """Send trunc(H[:, i]) pulses (at most ``transfer_bl``) and settle the buffer."""
        a = self.algo
        h = self.H[:, i]
        n = np.clip(np.trunc(h), -a.transfer_bl, a.transfer_bl).astype(np.int64)
        if not n.any():
            return
        self.send(i, n, ledger)
        hit = n != 0
        if a.forget_buffer:
            h[hit] = a.momentum * h[hit]
        else:
            h[hit] -= (1.0 - a.momentum) * n[hit]

    def transfer_column(self, i, v, tr, rng, ledger) -> None:
        a = self.algo
        self.H[:, i] += self.chop[i] * tr * v / (a.thres_scale * a.buffer_granularity
                                                 * self.dw_a)
        self.buffer_to_pulses(i, ledger)
        if a.chopped:
            flip = (rng.random() < a.in_chop_prob) if a.in_chop_random else \
                self._regular_flip(i)
            if flip:
                self.chop[i] = -self.chop[i]

    def _regular_flip(self, i: int) -> bool:
        """Regular chopping: flip every ``max(2, round(1 / in_chop_prob))`` reads of column i."""
        self.reads_of[i] += 1
        if self.reads_of[i] >= self.period:
            self.reads_of[i] = 0
            return True
        return False

    @property
    def period(self) -> int:
        return max(2, int(round(1.0 / self.algo.in_chop_prob)))

    def buffers(self) -> dict[str, np.ndarray]:
        out = {"ptr": np.array(self.ptr), "credit": np.array(self.credit),
               "chop": self.chop.copy(), "H": self.H.copy()}
        if hasattr(self, "reads_of"):
            out["reads_of"] = self.reads_of.copy()
        return out

    def load_buffers(self, st) -> None:
        self.ptr = int(st["ptr"])
        self.credit = float(st["credit"])
        self.chop = np.asarray(st["chop"], dtype=np.int64).copy()
        self.H = np.asarray(st["H"], dtype=np.float64).copy()
        if hasattr(self, "reads_of"):
            self.reads_of = np.asarray(st["reads_of"], dtype=np.int64).copy()


class TTv1Rule(TransferRule):
    def transfer_column(self, i, v, tr, rng, ledger) -> None:
        a = self.algo
        counts = np.clip(stochastic_round(tr * v / self.dw_c, rng), -a.transfer_bl,
                         a.transfer_bl)
        self.send(i, counts, ledger)


class ChoppedRule(TransferRule):
    def __init__(self, algo, weight, extra):
        super().__init__(algo, weight, extra)
        self.reads_of = np.zeros(weight.n_in, dtype=np.int64)


class AGADRule(ChoppedRule):
    """Chopper periods averaged; the transfer at a flip is the difference of period means."""

    def __init__(self, algo, weight, extra):
        super().__init__(algo, weight, extra)
        n_in, n_out = weight.n_in, weight.n_out
        self.m_acc = np.zeros((n_out, n_in))
        self.w_acc = np.zeros(n_in)
        self.m_prev = np.zeros((n_out, n_in))
        self.has_prev = np.zeros(n_in, dtype=np.int64)

    def transfer_column(self, i, v, tr, rng, ledger) -> None:
        a = self.algo
        t = self.reads_of[i]
        w = 1.0 + (a.tail_weightening - 1.0) * t / max(self.period - 1, 1)
        self.m_acc[:, i] += w * v
        self.w_acc[i] += w
        if a.in_chop_random:
            flip = bool(rng.random() < a.in_chop_prob)
            self.reads_of[i] = 0 if flip else t + 1
        else:
            flip = self._regular_flip(i)
        if not flip:
            return
        m = self.m_acc[:, i] / self.w_acc[i]
        if self.has_prev[i]:
            self.H[:, i] += self.chop[i] * tr * (m - self.m_prev[:, i]) / (
                a.thres_scale * a.buffer_granularity * self.dw_a)
            self.buffer_to_pulses(i, ledger)
        self.m_prev[:, i] = m
        self.has_prev[i] = 1
        self.m_acc[:, i] = 0.0
        self.w_acc[i] = 0.0
        self.chop[i] = -self.chop[i]

    def buffers(self):
        out = super().buffers()
        out.update({"m_acc": self.m_acc.copy(), "w_acc": self.w_acc.copy(),
                    "m_prev": self.m_prev.copy(), "has_prev": self.has_prev.copy()})
        return out

    def load_buffers(self, st) -> None:
        super().load_buffers(st)
        for k in ("m_acc", "w_acc", "m_prev"):
            setattr(self, k, np.asarray(st[k], dtype=np.float64).copy())
        self.has_prev = np.asarray(st["has_prev"], dtype=np.int64).copy()


@dataclasses.dataclass(frozen=True)
class TTv1(Algorithm):
    """Tiki-Taka v1, aihwkit's ``TransferCompound`` (gamma 0) with its defaults."""

    name: ClassVar[str] = "ttv1"
    aihwkit: ClassVar[str] = "TransferCompound"
    extra_arrays: ClassVar[tuple[str, ...]] = ("A",)
    chopped: ClassVar[bool] = False
    limits: ClassVar[dict] = {"transfer_every": _NONNEG, "n_reads_per_transfer": (int, 1, None,
                              False), "transfer_lr": _LR, "fast_lr": _LR, "transfer_bl": _BL}
    rule_class: ClassVar[type] = TTv1Rule

    transfer_every: float = 1.0  #: transfers every n batches (units_in_mbatch) or samples
    units_in_mbatch: bool = True
    n_reads_per_transfer: int = 1  #: columns read and written per transfer
    transfer_lr: float = 1.0
    scale_transfer_lr: bool = True  #: transfer_lr relative to the SGD learning rate
    fast_lr: float = 1.0  #: A's learning rate
    scale_fast_lr: bool = True  #: fast_lr relative to the SGD learning rate
    transfer_bl: int = 31  #: most pulses per device and transfer (transfer_update.desired_bl)


@dataclasses.dataclass(frozen=True)
class TTv2(TTv1):
    """Tiki-Taka v2, aihwkit's ``BufferedTransferCompound``: a digital buffer H per weight."""

    name: ClassVar[str] = "ttv2"
    aihwkit: ClassVar[str] = "BufferedTransferCompound"
    limits: ClassVar[dict] = {**TTv1.limits, "thres_scale": _LR, "buffer_granularity": _LR,
                              "momentum": (float, 0.0, 1.0, False)}
    rule_class: ClassVar[type] = TransferRule

    transfer_bl: int = 1  #: transfer_update.desired_bl 1: one pulse per transfer
    thres_scale: float = 1.0  #: threshold of H, in units of A's dw_min
    buffer_granularity: float = 1.0
    momentum: float = 0.1  #: part of H kept after a transfer
    forget_buffer: bool = True


@dataclasses.dataclass(frozen=True)
class CTTv2(TTv2):
    """Chopped TTv2, aihwkit's ``ChoppedTransferCompound``."""

    name: ClassVar[str] = "c-ttv2"
    aihwkit: ClassVar[str] = "ChoppedTransferCompound"
    chopped: ClassVar[bool] = True
    limits: ClassVar[dict] = {**TTv2.limits, "in_chop_prob": (float, 0.0, 1.0, True)}
    rule_class: ClassVar[type] = ChoppedRule

    units_in_mbatch: bool = False
    scale_fast_lr: bool = False
    momentum: float = 0.0
    in_chop_prob: float = 0.1  #: chopper switching probability per read of a column
    in_chop_random: bool = True


@dataclasses.dataclass(frozen=True)
class AGAD(CTTv2):
    """AGAD, aihwkit's ``DynamicTransferCompound``."""

    name: ClassVar[str] = "agad"
    aihwkit: ClassVar[str] = "DynamicTransferCompound"
    limits: ClassVar[dict] = {**CTTv2.limits, "tail_weightening": (float, 1.0, None, False)}
    rule_class: ClassVar[type] = AGADRule

    in_chop_random: bool = False
    tail_weightening: float = 5.0  #: weight of a period's last read relative to its first
