"""Putting a torch model on chips: `convert_to_analog`, `place`, and the run's chip set-up.

`place` maps every analog layer of a model, in module order, onto the tiles of one or several
chips with one `ohmflow.host.mapping.NetworkMap` (as `ohmflow train` maps its MLP), and programs
the layers' weights. `prepare_chips` and `start_epoch` reproduce `ohmflow train`'s seeding: each
chip fabricated from the run seed, and at the start of epoch e every chip re-seeded and the
host's generator (shuffle first, then every stochastic rounding) set to ``epoch_rng(seed, e)``.
`record_costs` records the model's device calls in a `CostLedger`, as ``ohmflow train`` records
its training steps.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from ohmflow.emulator.config import DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.host.algorithms import Algorithm
from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.chips import Chips, as_chips
from ohmflow.host.device import Device
from ohmflow.host.layers import AnalogLinear as HostLinear
from ohmflow.host.layers import configure_windows
from ohmflow.host.ledger import CostLedger
from ohmflow.host.mapping import MappingParameter, NetworkMap
from ohmflow.host.trainer import chip_fab_seed, chip_seed, epoch_rng
from ohmflow.nn.layers import AnalogConv2d, AnalogLayer, AnalogLinear, as_algorithm

__all__ = ["analog_layers", "array_names", "convert_to_analog", "place", "prepare_chips",
           "record_costs", "start_epoch"]


def analog_layers(model: torch.nn.Module) -> list[AnalogLayer]:
    """The model's analog layers in module order (the order `place` maps them in)."""
    return [m for m in model.modules() if isinstance(m, AnalogLayer)]


def array_names(layers: list[AnalogLayer]) -> tuple[list[tuple[int, int]], list[str] | None]:
    """The arrays of ``layers`` in mapping order: shapes ``(n_in, n_out)`` and names.

    As ``ohmflow train`` (`ohmflow.host.mlp.network_arrays`): the weights of all layers first
    (``layer{k}``), then each layer's extra arrays of its algorithm (``layer{k}.A``); names None
    when no layer has extra arrays.
    """
    shapes = [(m.in_features, m.out_features) for m in layers]
    if not any(m.extra_arrays for m in layers):
        return shapes, None
    names = [f"layer{k}" for k in range(len(layers))]
    for k, m in enumerate(layers):
        names += [f"layer{k}.{a}" for a in m.extra_arrays]
        shapes += [shapes[k]] * len(m.extra_arrays)
    return shapes, names


def place(model: torch.nn.Module, chips: Device | Chips,
          mapping: MappingParameter | None = None) -> NetworkMap:
    """Map the model's analog layers onto ``chips`` and program their weights; returns the map.

    The layers are mapped together, in module order, as `ohmflow train` maps an MLP (layer k on
    tile k when every layer fits one tile), followed by their algorithms' extra arrays
    (`array_names`); ``mapping`` bounds the block size. A layer placed before keeps its weights
    (read from its old chips) and its algorithm's state. A network that does not fit raises the
    mapper's error (tiles needed, and what would fit).
    """
    chips = as_chips(chips)
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers; build it with ohmflow.nn.AnalogLinear "
                         "/ AnalogConv2d or call ohmflow.nn.convert_to_analog")
    shapes, names = array_names(layers)
    netmap = NetworkMap(chips.config, shapes, chips=len(chips), mapping=mapping, names=names)
    configure_windows(chips, netmap)
    states = [{} for _ in chips]
    n = len(layers)
    arrays = []
    owner = list(range(n)) + [k for k, m in enumerate(layers) for _ in m.extra_arrays]
    for lm, k in zip(netmap.layers, owner, strict=True):
        m = layers[k]
        arrays.append(HostLinear(chips, m.in_features, m.out_features, layer_map=lm, io=m.io,
                                 update=m.update_params, link_states=states))
    extra = arrays[n:]
    for k, m in enumerate(layers):
        mine, extra = extra[:len(m.extra_arrays)], extra[len(m.extra_arrays):]
        m.attach(arrays[k], dict(zip(m.extra_arrays, mine, strict=True)))
    return netmap


def convert_to_analog(model: torch.nn.Module, chips: Device | Chips | None = None, *,
                      io: IOParams | None = None, update: UpdateParams | None = None,
                      mapping: MappingParameter | None = None, conv: bool = True,
                      inplace: bool = False, algorithm: Algorithm | str | None = None,
                      algorithm_options: dict | None = None) -> torch.nn.Module:
    """``model`` with its `torch.nn.Linear` (and, with ``conv``, `torch.nn.Conv2d`) layers analog.

    Weights and biases are copied; every other module stays digital. Every analog layer trains
    with ``algorithm`` (`ohmflow.nn.as_algorithm`: an `Algorithm`, or a name of ``ohmflow train
    --algorithm`` with ``algorithm_options``; default analog SGD). With ``chips`` the result is
    placed on them (`place`). ``inplace=False`` converts a deep copy.
    """
    algo = as_algorithm(algorithm, algorithm_options)
    if not inplace:
        model = copy.deepcopy(model)

    def convert(m: torch.nn.Module) -> torch.nn.Module:
        if isinstance(m, torch.nn.Linear):
            return AnalogLinear.from_digital(m, io, update, algo)
        if conv and isinstance(m, torch.nn.Conv2d):
            return AnalogConv2d.from_digital(m, io, update, algo)
        for name, child in m.named_children():
            new = convert(child)
            if new is not child:
                setattr(m, name, new)
        return m

    model = convert(model)
    if chips is not None:
        place(model, chips, mapping)
    return model


def prepare_chips(chips: Device | Chips, seed: int = 0, model: DeviceModel | None = None, *,
                  out_bound: float = 12.0, out_noise: float = 0.06,
                  desired_bl: int = 31) -> Chips:
    """Set the chips up as ``ohmflow train --seed seed`` does: reset, fabricate, settings.

    Chip k gets the device map fabricated from ``chip_fab_seed(seed, k)`` for ``model``
    (default: `DeviceModel()`, aihwkit's ConstantStep) and aihwkit's IO defaults. Call it before
    `place` (resetting clears the weights).
    """
    chips = as_chips(chips)
    model = model or DeviceModel()
    s = Settings.default(chips.config, out_bound=out_bound, out_noise=out_noise, bl=desired_bl,
                         dw_min_std=model.dw_min_std)
    settings = dataclasses.asdict(s)

    def setup(k: int) -> None:
        dev = chips[k]
        dev.reset()
        dev.load_device_map(fabricate(dev.config, model, chip_fab_seed(seed, k)))
        dev.load_step_shape(step_shape(model))
        dev.configure(**settings)

    chips.run([(k, (lambda k=k: setup(k))) for k in range(len(chips))])
    return chips


def start_epoch(chips: Device | Chips, seed: int, epoch: int, optimizer=None
                ) -> np.random.Generator:
    """Re-seed every chip for ``epoch`` and return the host generator of the epoch.

    Draw the epoch's shuffle from it first (``rng.permutation(n)``, e.g. as a DataLoader's
    sampler); ``optimizer`` (an `ohmflow.nn.AnalogSGD`) then draws its stochastic rounding
    from the same generator, as ``ohmflow train`` does.
    """
    chips = as_chips(chips)
    chips.run([(k, (lambda d=d, k=k: d.configure(seed=chip_seed(seed, epoch, k))))
               for k, d in enumerate(chips)])
    rng = epoch_rng(seed, epoch)
    if optimizer is not None:
        optimizer.rng = rng
    return rng


@contextmanager
def record_costs(model: torch.nn.Module, ledger: CostLedger | None = None
                 ) -> Iterator[CostLedger]:
    """Record the device calls of ``model``'s analog layers in ``ledger`` while the block runs.

    Forward and backward reads and the optimizer's updates (the algorithm's transfers included)
    are attributed per block and phase, as ``ohmflow train`` records its training steps
    (`ohmflow.host.ledger`); evaluation outside the block is not counted. Yields the ledger (a
    new `CostLedger` if none is given); ``ledger.save(path)`` writes what ``ohmflow project
    --ledger`` reads. Blocks may be entered again with the same ledger to add to it.
    """
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers to record")
    ledger = CostLedger() if ledger is None else ledger
    if not isinstance(ledger, CostLedger):
        raise ValueError(f"ledger must be an ohmflow.host.ledger.CostLedger, got {ledger!r}")
    before = [m.ledger for m in layers]
    for m in layers:
        m.ledger = ledger
    try:
        yield ledger
    finally:
        for m, old in zip(layers, before, strict=True):
            m.ledger = old
