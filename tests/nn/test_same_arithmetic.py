"""An MLP trained through ohmflow.nn ends with the device states of ``ohmflow train``.

The torch loop (`ohmflow.nn.reproduce.train_as_trainer`) reproduces the trainer's set-up, seeds
and order of device calls; the loss is the trainer's (`ohmflow.nn.softmax_cross_entropy`). What
torch's own `cross_entropy` changes is pinned down separately below. With a training algorithm
(``ohmflow train --algorithm``) every array (weights C and the algorithm's A), buffer and
counter, and the cost ledger recorded by `ohmflow.nn.record_costs`, equal the trainer's.
"""

import numpy as np
import pytest
import torch
from ohmflow import nn as onn
from ohmflow.host.algorithms import ALGORITHMS
from ohmflow.host.chips import Chips, open_chips
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.ledger import CostLedger
from ohmflow.host.mlp import softmax_xent
from ohmflow.host.trainer import TrainConfig, Trainer
from ohmflow.nn.reproduce import train_as_trainer

from .compare import assert_same, assert_same_ledger, nn_state, small, twins


def assert_same_states(trainer: Trainer, model) -> None:
    ref = trainer.analog.state()
    layers = onn.analog_layers(model)
    assert len(layers) == len(trainer.analog.layers)
    for k, layer in enumerate(layers):
        assert np.array_equal(layer.states().numpy(), ref[f"analog_w{k}"]), f"layer {k} states"
        assert np.array_equal(layer.bias.detach().numpy(), ref[f"analog_b{k}"]), f"layer {k} bias"


def test_digits_mlp_through_torch_ends_as_ohmflow_train_on_the_twin(digits):
    """64-32-10, default config, seed 3, 2 epochs of the whole training split; the cost ledger
    recorded through torch is the trainer's."""
    cfg = TrainConfig(epochs=2, seed=3, float_baseline=False)
    trainer = Trainer(cfg, twins(cfg), digits)
    trainer.run()
    ledger = CostLedger()
    model = train_as_trainer(cfg, twins(cfg), digits, ledger=ledger)
    assert_same_states(trainer, model)
    assert_same_ledger(trainer.ledger, ledger)
    # the states moved: the comparison is of trained networks, not of the initial weights
    assert not np.array_equal(trainer.analog.state()["analog_w0"],
                              Trainer(cfg, twins(cfg), digits).analog.state()["analog_w0"])


def test_a_mapped_network_on_four_chips_through_torch_ends_as_ohmflow_train():
    """9-11-4 on four tiny chips (tiles of 5x7: layer 0 a 2x2 grid of blocks, layer 1 3x1),
    SoftBounds devices, seed 4, 2 epochs of a seeded 3-class set; the same ledger per block."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(90, 9))
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)
    data = Dataset("blobs", x[:60], y[:60], x[60:], y[60:], 3)
    cfg = TrainConfig(config="tiny", hidden=(11,), chips=4, epochs=2, seed=4, batch=8,
                      float_baseline=False,
                      device_model={**TrainConfig().device_model, "model": "SoftBounds"})
    trainer = Trainer(cfg, twins(cfg), data)
    trainer.run()
    ledger = CostLedger()
    model = train_as_trainer(cfg, twins(cfg), data, ledger=ledger)
    assert_same_states(trainer, model)
    assert_same_ledger(trainer.ledger, ledger)
    assert len(ledger.layers) == 7  # a ledger entry per block
    assert {b.chip for layer in onn.analog_layers(model) for b in layer.host.blocks} == {0, 1, 2, 3}


def test_digits_mlp_through_torch_ends_as_ohmflow_train_on_verilator(digits):
    """64-8-10 on the default emulator, one epoch of 96 samples (batch 16), seed 5: the torch
    run on the RTL ends with the trainer's states on the RTL and on the twin."""
    pytest.importorskip("ohmflow.sim.verilator_server")
    data = small(digits, 96, 20)
    cfg = TrainConfig(hidden=(8,), epochs=1, seed=5, batch=16, float_baseline=False)
    twin = Trainer(cfg, twins(cfg), data)
    twin.run()
    with open_chips("verilator", cfg.config, 1) as chips:
        rtl = Trainer(cfg, chips, data)
        rtl.run()
        assert_same_states(rtl, train_as_trainer(cfg, chips, data))
        assert_same_states(twin, train_as_trainer(cfg, chips, data))


def torch_xent_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(z.copy()).requires_grad_()
    torch.nn.functional.cross_entropy(t, torch.from_numpy(y)).backward()
    return t.grad.numpy()


def test_torch_cross_entropy_gradient_agrees_with_the_trainers_to_a_few_ulp(digits):
    """torch's F.cross_entropy gradient is exp(log_softmax(z)) - onehot, over n; the trainer's
    is (exp(z - max) / sum - onehot) / n. On logits of a 64-32-10 network for the training split
    both agree to a few units in the last place, though not bit for bit: that is why the
    bit-exact comparisons above use ohmflow.nn.softmax_cross_entropy, the trainer's own code."""
    cfg = TrainConfig(epochs=1, seed=3, float_baseline=False)
    z = Trainer(cfg, TwinDevice(), digits).logits(digits.x_train)
    y = digits.y_train.astype(np.int64)
    differ = 0
    for s in range(0, len(z), 32):
        _, ref, _ = softmax_xent(z[s:s + 32].copy(), y[s:s + 32])
        got = torch_xent_grad(z[s:s + 32], y[s:s + 32])
        scale = np.abs(ref).max(axis=1, keepdims=True)
        assert (np.abs(got - ref) <= 8 * np.finfo(np.float64).eps * scale).all()
        differ += int((got != ref).sum())
        t = torch.from_numpy(z[s:s + 32].copy()).requires_grad_()
        onn.softmax_cross_entropy(t, torch.from_numpy(y[s:s + 32])).backward()
        assert np.array_equal(t.grad.numpy(), ref)  # the trainer's loss: bit for bit
    print(f"torch's cross_entropy gradient differs from the trainer's in {differ} of {z.size} "
          "elements")


def test_a_conv_and_linear_model_runs_on_verilator_as_on_the_twin():
    """AnalogConv2d (2 -> 3 channels, 3x3, stride 2) and AnalogLinear on the default emulator:
    forward, input gradient, one AnalogSGD step and the next forward equal the twin's."""
    pytest.importorskip("ohmflow.sim.verilator_server")

    def run(chips):
        torch.manual_seed(7)
        model = torch.nn.Sequential(onn.AnalogConv2d(2, 3, 3, stride=2), torch.nn.ReLU(),
                                    torch.nn.Flatten(), onn.AnalogLinear(12, 4)).double()
        onn.prepare_chips(chips, seed=2)
        onn.place(model, chips)
        opt = onn.AnalogSGD(model.parameters(), lr=0.2)
        onn.start_epoch(chips, 2, 0, opt)
        x = torch.randn(3, 2, 5, 5, dtype=torch.float64, requires_grad=True)
        y = model(x)
        onn.softmax_cross_entropy(y, torch.tensor([0, 1, 3])).backward()
        opt.step()
        with torch.no_grad():
            after = model(x)
        return [y.detach(), x.grad, after, *(m.states() for m in onn.analog_layers(model))]

    twin = run(Chips([TwinDevice()]))
    with open_chips("verilator", "default", 1) as chips:
        rtl = run(chips)
    for a, b in zip(twin, rtl, strict=True):
        assert torch.equal(a, b)


def test_with_torch_cross_entropy_the_seed_3_run_keeps_the_states_but_not_the_biases(digits):
    """What the last-bit differences of F.cross_entropy did on this run (64-32-10, seed 3, two
    epochs, twin): no device state differs, the biases differ by less than 1e-15."""
    cfg = TrainConfig(epochs=2, seed=3, float_baseline=False)
    trainer = Trainer(cfg, twins(cfg), digits)
    trainer.run()
    model = train_as_trainer(cfg, twins(cfg), digits, loss_fn=torch.nn.functional.cross_entropy)
    ref = trainer.analog.state()
    biases_equal = True
    for k, layer in enumerate(onn.analog_layers(model)):
        assert np.array_equal(layer.states().numpy(), ref[f"analog_w{k}"])
        b = layer.bias.detach().numpy()
        assert np.abs(b - ref[f"analog_b{k}"]).max() < 1e-15
        biases_equal &= np.array_equal(b, ref[f"analog_b{k}"])
    assert not biases_equal


# c-ttv2's chopper draws from the host generator between updates: the order of draws is tested
@pytest.mark.parametrize("algorithm,options", [
    ("ttv2", {}),
    ("mixed-precision", {"transfer_every": 2}),
    ("c-ttv2", {"in_chop_prob": 0.3}),
    ("ttv1", {"transfer_every": 2.0}),
    ("agad", {}),
])
def test_an_algorithm_through_torch_ends_as_ohmflow_train_on_the_twin(digits, algorithm,
                                                                      options):
    """64-16-10, seed 6, 2 epochs of 256 samples (batch 32): every array (C and A), bias,
    buffer and counter, and the cost ledger of the training steps, equal the trainer's."""
    cfg = TrainConfig(hidden=(16,), epochs=2, seed=6, float_baseline=False, algorithm=algorithm,
                      algorithm_options=options)
    data = small(digits, 256)
    trainer = Trainer(cfg, twins(cfg), data)
    trainer.run()
    ledger = CostLedger()
    model = train_as_trainer(cfg, twins(cfg), data, ledger=ledger)
    ref = trainer.analog.state()
    assert_same(ref, nn_state(model))
    assert_same_ledger(trainer.ledger, ledger)
    # the algorithm did its work: transfers reached the weights, and A (if any) moved
    assert trainer.analog.algorithm_counters()["transfer_pulses"] > 0
    if ALGORITHMS[algorithm].extra_arrays:
        assert np.abs(ref["algo0_array_A"]).sum() > 0
        assert {b.name for b in trainer.map.layers[2].blocks} == {"layer0.A"}
    assert {"update"} < {p for _, p in ledger.entries}


@pytest.mark.slow
def test_ttv2_through_torch_on_verilator_ends_as_ohmflow_train(digits):
    """64-8-10 with ttv2 on the default emulator, one epoch of 64 samples (batch 16), seed 5:
    the torch run on the RTL ends with the trainer's arrays, buffers and ledger counts on the
    RTL (cycles included) and the twin's arrays and buffers."""
    pytest.importorskip("ohmflow.sim.verilator_server")
    data = small(digits, 64)
    cfg = TrainConfig(hidden=(8,), epochs=1, seed=5, batch=16, float_baseline=False,
                      algorithm="ttv2")
    twin = Trainer(cfg, twins(cfg), data)
    twin.run()
    with open_chips("verilator", cfg.config, 1) as chips:
        rtl = Trainer(cfg, chips, data)
        rtl.run()
        ledger = CostLedger()
        got = nn_state(train_as_trainer(cfg, chips, data, ledger=ledger))
        assert_same(rtl.analog.state(), got)
        assert_same_ledger(rtl.ledger, ledger)
        assert ledger.has_cycles
    assert_same(twin.analog.state(), got)
