"""``ohmflow train``'s MLP run written as an ordinary torch loop over ohmflow.nn.

`train_as_trainer` builds the `TrainConfig`'s MLP from `AnalogLinear` and `torch.nn.ReLU`
(float64), each layer with the config's training algorithm, sets the chips up, seeds and
initializes as `ohmflow.host.trainer.Trainer` does, and trains with a `DataLoader` and
`AnalogSGD`; it ends with the trainer's device states (weights and the algorithm's arrays),
biases and algorithm buffers, bit for bit, and records the trainer's cost ledger
(tests/nn/test_same_arithmetic.py). It is the reference loop of the front end's
overhead benchmark (`ohmflow.nn.bench`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import torch
from ohmflow.host import datasets
from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.chips import Chips
from ohmflow.host.device import Device
from ohmflow.host.ledger import CostLedger
from ohmflow.host.mlp import init_params
from ohmflow.host.trainer import INIT, TrainConfig, derive_seed
from ohmflow.nn.functional import softmax_cross_entropy
from ohmflow.nn.layers import AnalogLinear
from ohmflow.nn.optim import AnalogSGD
from ohmflow.nn.placement import analog_layers, place, prepare_chips, record_costs, start_epoch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["mlp", "train_as_trainer"]


def mlp(sizes: list[int], cfg: TrainConfig) -> torch.nn.Sequential:
    """`AnalogLinear` layers with ReLU between them, float64, with ``cfg``'s IO, update and
    training algorithm."""
    io = IOParams(cfg.noise_management, cfg.bound_management, cfg.max_bm_rounds)
    up = UpdateParams(cfg.desired_bl, cfg.update_management, cfg.update_bl_management)
    mods: list[torch.nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        mods.append(AnalogLinear(a, b, io=io, update=up, algorithm=cfg.algo))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods).double()


def train_as_trainer(cfg: TrainConfig, chips: Device | Chips, data: datasets.Dataset,
                     loss_fn=softmax_cross_entropy, seconds: list[float] | None = None,
                     ledger: CostLedger | None = None,
                     resume: tuple[dict, int] | None = None) -> torch.nn.Sequential:
    """Train ``cfg``'s MLP on ``chips`` through ohmflow.nn as `Trainer` would; returns the model.

    Same set-up (`prepare_chips` from the fabrication seed), standardized inputs, `init_params`
    from the run seed, and per epoch: chips re-seeded, the epoch generator's permutation as the
    DataLoader's order, then its stochastic rounding in the optimizer. ``seconds`` (a list)
    receives each epoch's training time; ``ledger`` (a `CostLedger`) the training steps' device
    calls, as `Trainer.ledger`. ``resume`` = (state_dict, epochs done) continues a run saved
    at an epoch boundary, as ``ohmflow train --resume`` does.
    """
    prepare_chips(chips, cfg.seed if cfg.fab_seed is None else cfg.fab_seed, cfg.model,
                  out_bound=cfg.out_bound, out_noise=cfg.out_noise, desired_bl=cfg.desired_bl)
    d = datasets.Standardizer.fit(data.x_train).apply_to(data) if cfg.standardize else data
    sizes = [d.features, *cfg.hidden, d.classes]
    model = mlp(sizes, cfg)
    place(model, chips, cfg.mapping)
    params = init_params(sizes, np.random.default_rng(derive_seed(cfg.seed, 0, INIT)))
    for layer, (w, b) in zip(analog_layers(model), params, strict=True):
        layer.set_weights(w, b)
    first = 0
    if resume is not None:
        model.load_state_dict(resume[0])
        first = resume[1]
    opt = AnalogSGD(model.parameters(), lr=cfg.lr)
    train = TensorDataset(torch.from_numpy(np.asarray(d.x_train, dtype=np.float64)),
                          torch.from_numpy(np.asarray(d.y_train, dtype=np.int64)))
    for e in range(first, cfg.epochs):
        t0 = time.perf_counter()
        rng = start_epoch(chips, cfg.seed, e, opt)
        loader = DataLoader(train, batch_size=cfg.batch,
                            sampler=rng.permutation(len(train)).tolist())
        with record_costs(model, ledger) if ledger is not None else nullcontext():
            for x, y in loader:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()
        if seconds is not None:
            seconds.append(time.perf_counter() - t0)
    return model
