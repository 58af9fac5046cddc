"""The loss of ``ohmflow train`` as a torch function: mean softmax cross-entropy.

`softmax_cross_entropy` computes the loss and its gradient with the trainer's own numpy code
(`ohmflow.host.mlp.softmax_xent`: p = exp(z - max z) / sum, gradient (p - onehot) / n), so a
torch training loop feeds the chips bit for bit the output gradients ``ohmflow train`` does.
`torch.nn.functional.cross_entropy` computes the same gradient as exp(log_softmax(z)), which can
differ from it in the last bits (docs/api.md).
"""

from __future__ import annotations

import numpy as np
import torch
from ohmflow.host.mlp import softmax_xent

__all__ = ["softmax_cross_entropy"]


class _SoftmaxXent(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        z = logits.detach().cpu().numpy().astype(np.float64)
        y = target.detach().cpu().numpy()
        loss, grad, _ = softmax_xent(z, y)
        ctx.grad, ctx.dtype = grad, logits.dtype
        return torch.tensor(loss, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        scale = float(g)
        grad = ctx.grad if scale == 1.0 else ctx.grad * scale
        return torch.from_numpy(grad).to(ctx.dtype), None


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (N, C) against class indices (N,), the trainer's arithmetic."""
    if logits.dim() != 2 or target.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    if target.dtype.is_floating_point or not bool(
        ((target >= 0) & (target < logits.shape[1])).all()
    ):
        raise ValueError(f"targets must be class indices in [0, {logits.shape[1] - 1}]")
    return _SoftmaxXent.apply(logits, target)
