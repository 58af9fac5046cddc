"""What the ohmflow.nn tests compare: a torch run's arrays and ledger and ``ohmflow train``'s."""

import numpy as np
from ohmflow import nn as onn
from ohmflow.host.chips import Chips
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.ledger import CostLedger
from ohmflow.host.trainer import TrainConfig


def twins(cfg: TrainConfig) -> Chips:
    return Chips([TwinDevice(cfg.config) for _ in range(cfg.chips)])


def small(digits, n_train: int, n_test: int = 20) -> Dataset:
    return Dataset("digits", digits.x_train[:n_train], digits.y_train[:n_train],
                   digits.x_test[:n_test], digits.y_test[:n_test], digits.classes)


def nn_state(model) -> dict[str, np.ndarray]:
    """The model's arrays under the names of `AnalogMLP.state` (a trainer checkpoint's)."""
    out = {}
    for k, layer in enumerate(onn.analog_layers(model)):
        out[f"analog_w{k}"] = layer.states().numpy()
        out[f"analog_b{k}"] = layer.bias.detach().numpy()
        if layer.algorithm.name != "sgd":
            out.update({f"algo{k}_{n}": v for n, v in layer.rule.state().items()})
    return out


def assert_same(ref: dict, got: dict) -> None:
    assert sorted(ref) == sorted(got)
    for k in ref:
        assert np.array_equal(np.asarray(ref[k]), np.asarray(got[k])), k


def assert_same_ledger(a: CostLedger, b: CostLedger) -> None:
    assert a.entries == b.entries  # counts per (block, phase)
    assert (a.shapes, a.in_bits, a.out_bits, a.clock_hz) == (b.shapes, b.in_bits, b.out_bits,
                                                              b.clock_hz)
