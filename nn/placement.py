"""Putting a torch model on chips: `convert_to_analog`, `place`, and the run's chip set-up.

`place` maps every analog layer of a model, in module order, onto the tiles of one or several
chips with one `ohmflow.host.mapping.NetworkMap` (as `ohmflow train` maps its MLP), and programs
the layers' weights. `prepare_chips` and `start_epoch` reproduce `ohmflow train`'s seeding: each
chip fabricated from the run seed, and at the start of epoch e every chip re-seeded and the
host's generator (shuffle first, then every stochastic rounding) set to ``epoch_rng(seed, e)``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from ohmflow.emulator.config import DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.chips import Chips, as_chips
from ohmflow.host.device import Device
from ohmflow.host.layers import AnalogLinear as HostLinear
from ohmflow.host.layers import configure_windows
from ohmflow.host.mapping import MappingParameter, NetworkMap
from ohmflow.host.trainer import chip_fab_seed, chip_seed, epoch_rng
from ohmflow.nn.layers import AnalogConv2d, AnalogLayer, AnalogLinear

__all__ = ["analog_layers", "convert_to_analog", "place", "prepare_chips", "start_epoch"]


def analog_layers(model: torch.nn.Module) -> list[AnalogLayer]:
    """The model's analog layers in module order (the order `place` maps them in)."""
    return [m for m in model.modules() if isinstance(m, AnalogLayer)]


def place(model: torch.nn.Module, chips: Device | Chips,
          mapping: MappingParameter | None = None) -> NetworkMap:
    """Map the model's analog layers onto ``chips`` and program their weights; returns the map.

    The layers are mapped together, in module order, as `ohmflow train` maps an MLP (layer k on
    tile k when every layer fits one tile); ``mapping`` bounds the block size. A layer placed
    before keeps its weights (read from its old chips). A network that does not fit raises
    the mapper's error (tiles needed, and what would fit).
    """
    chips = as_chips(chips)
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers; build it with ohmflow.nn.AnalogLinear "
                         "/ AnalogConv2d or call ohmflow.nn.convert_to_analog")
    netmap = NetworkMap(chips.config, [(m.in_features, m.out_features) for m in layers],
                        chips=len(chips), mapping=mapping)
    configure_windows(chips, netmap)
    states = [{} for _ in chips]
    for m, lm in zip(layers, netmap.layers, strict=True):
        m.attach(HostLinear(chips, m.in_features, m.out_features, layer_map=lm, io=m.io,
                            update=m.update_params, link_states=states))
    return netmap


def convert_to_analog(model: torch.nn.Module, chips: Device | Chips | None = None, *,
                      io: IOParams | None = None, update: UpdateParams | None = None,
                      mapping: MappingParameter | None = None, conv: bool = True,
                      inplace: bool = False) -> torch.nn.Module:
    """``model`` with its `torch.nn.Linear` (and, with ``conv``, `torch.nn.Conv2d`) layers analog.

    Weights and biases are copied; every other module stays digital. With ``chips`` the result
    is placed on them (`place`). ``inplace=False`` converts a deep copy.
    """
    if not inplace:
        model = copy.deepcopy(model)

    def convert(m: torch.nn.Module) -> torch.nn.Module:
        if isinstance(m, torch.nn.Linear):
            return AnalogLinear.from_digital(m, io, update)
        if conv and isinstance(m, torch.nn.Conv2d):
            return AnalogConv2d.from_digital(m, io, update)
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
