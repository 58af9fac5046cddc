"""`AnalogSGD`: torch's optimizer interface over the chip's pulse update.

`step()` goes through the parameter groups in order. An analog layer's marker parameter
(``analog_ctx``) means: hand the layer's recorded inputs and output gradients to its update rule
(`AnalogSGD.analog_update`, the one place where analog weights change): with the default
algorithm one stochastic pulse update, with a training algorithm of `ohmflow.host.algorithms`
chosen on the layer (``algorithm="ttv2"``, as aihwkit's rpu_config) that algorithm's update
and transfers.
Every other parameter (biases, digital layers) takes a plain SGD step, p -= lr * grad. The
learning rate is each group's ``lr``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ohmflow.nn.layers import AnalogLayer, analog_layer_of

__all__ = ["AnalogSGD"]


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not (
        math.isfinite(lr) and lr > 0
    ):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    return float(lr)


class AnalogSGD(torch.optim.Optimizer):
    """SGD whose analog layers update in the array by stochastic pulses (aihwkit's AnalogSGD).

    The update of an analog layer is its algorithm's (``AnalogLinear(..., algorithm=...)``), as
    aihwkit's AnalogSGD runs the layer's rpu_config. ``rng`` (a numpy Generator or a seed) draws
    the stochastic rounding of the update codes (and an algorithm's random draws);
    `ohmflow.nn.start_epoch` sets it per epoch as ``ohmflow train`` does.
    """

    def __init__(self, params, lr: float = 0.1, rng: np.random.Generator | int | None = None):
        super().__init__(params, {"lr": _check_lr(lr)})
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def analog_layers(self) -> list[AnalogLayer]:
        """The analog layers among the parameters, in group order."""
        return [m for g in self.param_groups for p in g["params"]
                if (m := analog_layer_of(p)) is not None]

    def analog_update(self, layer: AnalogLayer, x: np.ndarray, d: np.ndarray,
                      lr: float) -> None:
        """The analog weight change of one layer for inputs x (N, in) and gradients d (N, out).

        The layer's update rule (`AnalogLayer.rule`) runs, as ``ohmflow train`` runs it: for
        analog SGD one stochastic pulse update, E[dW] = -lr d^T x, codes drawn from ``rng`` in
        block order; for an algorithm its update (of A, or a digital accumulator) and the
        transfers due. Recorded in the layer's ``ledger`` if it has one.
        """
        layer.rule.update(x, d, lr, self.rng, layer.ledger)

    @torch.no_grad()
    def step(self, closure=None):
        """Per parameter in group order: the analog update of a layer, or SGD on a digital one."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = _check_lr(group["lr"])
            for p in group["params"]:
                layer = analog_layer_of(p)
                if layer is not None:
                    rec = layer.take_pending()
                    if rec is not None:
                        self.analog_update(layer, rec[0], rec[1], lr)
                elif p.grad is not None:
                    p.sub_(lr * p.grad)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients and the analog layers' recorded inputs and gradients."""
        super().zero_grad(set_to_none)
        for layer in self.analog_layers():
            layer.pending.clear()
