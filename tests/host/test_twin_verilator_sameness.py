"""The same training run on the twin and on the Verilator emulator (the RTL) ends identically."""

import dataclasses

import numpy as np
import pytest
from ohmflow.emulator.config import DeviceModel
from ohmflow.host.chips import Chips, open_chips
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

verilator_server = pytest.importorskip("ohmflow.sim.verilator_server")


def same_run(cfg: TrainConfig, data: Dataset) -> None:
    """Train on the twin and on the emulator of ``cfg.config``: every device state, bias,
    loss, accuracy, count and ledger entry agrees bit for bit; the RTL also reports cycles."""
    twin = Trainer(cfg, Chips([TwinDevice(cfg.config) for _ in range(cfg.chips)]), data)
    twin.run()
    with open_chips("verilator", cfg.config, cfg.chips) as dev:
        rtl = Trainer(cfg, dev, data)
        rtl.run()
        rtl_counters = rtl.counters()
        rtl_state = rtl.analog.state()
    for k, v in twin.analog.state().items():
        assert np.array_equal(v, rtl_state[k]), k
    keys = ("analog_train_loss", "analog_train_acc", "analog_test_loss", "analog_test_acc")
    assert [[h[k] for k in keys] for h in twin.history] == \
        [[h[k] for k in keys] for h in rtl.history]
    for t, r in zip(twin.counters(), rtl_counters, strict=True):
        assert {k: r[k] for k in t} == t
        assert r["cycles"] > 0
    assert twin.ledger.entries.keys() == rtl.ledger.entries.keys()


@pytest.mark.slow  # minutes of training on the default chip's RTL; the quick tier keeps the
# smaller sameness runs (icebreaker here, tiny in test_link_training.py)
def test_two_epochs_on_twin_and_verilator_end_in_identical_weights_and_accuracy(digits):
    """64-32-10 digits MLP, default chip config, seed 3, 2 epochs."""
    same_run(TrainConfig(epochs=2, seed=3, float_baseline=False), digits)


def test_training_on_the_icebreaker_emulator_matches_the_twin(digits):
    """The 64-32-10 MLP on the iCEBreaker's chip (two 64x32 tiles, rv32 engine), one epoch of
    a 160-sample subset."""
    data = Dataset("digits", digits.x_train[:160], digits.y_train[:160], digits.x_test[:60],
                   digits.y_test[:60], digits.classes)
    same_run(TrainConfig(config="icebreaker", epochs=1, seed=5, float_baseline=False), data)


def test_an_expstep_network_on_the_icebreaker_emulator_matches_the_twin(digits):
    """ExpStep devices (numerics §5.4.1: the trainer loads the step-shape tables, the rv32
    firmware interpolates them) on the iCEBreaker's chip: one epoch of a 96-sample subset."""
    data = Dataset("digits", digits.x_train[:96], digits.y_train[:96], digits.x_test[:40],
                   digits.y_test[:40], digits.classes)
    model = dataclasses.asdict(DeviceModel(model="ExpStep"))
    same_run(TrainConfig(config="icebreaker", epochs=1, seed=6, float_baseline=False,
                         device_model=model), data)


@pytest.mark.slow  # about a minute of training on the default chip's RTL (and its build)
def test_an_expstep_network_on_the_default_emulator_matches_the_twin(digits):
    """ExpStep devices on the `default` chip's RTL (the tile engine: 16 lanes interpolate the
    step-shape tables, numerics §5.4.1): one epoch of a 96-sample subset, seed 7."""
    data = Dataset("digits", digits.x_train[:96], digits.y_train[:96], digits.x_test[:40],
                   digits.y_test[:40], digits.classes)
    model = dataclasses.asdict(DeviceModel(model="ExpStep"))
    same_run(TrainConfig(epochs=1, seed=7, float_baseline=False, device_model=model), data)


def test_a_multi_chip_network_of_odd_blocks_on_twin_and_verilator():
    """9-11-4 on four tiny chips (tiles of 5x7): layer 0 in 2x2 blocks ending mid-tile, layer 1
    in 3x1; 2 epochs of a seeded 3-class set (seed 8)."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(90, 9))
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)
    data = Dataset("blobs", x[:60], y[:60], x[60:], y[60:], 3)
    cfg = TrainConfig(config="tiny", hidden=(11,), chips=4, epochs=2, seed=4, batch=8,
                      float_baseline=False)
    same_run(cfg, data)


def test_step_shape_networks_on_the_tiny_tile_emulator():
    """5-4-3 on one tiny chip (the tile engine, 3 lanes, tiles of 5x7) with PiecewiseStep
    and ExpStep devices: their tables interpolated in the RTL, 2 epochs of a seeded 3-class
    set (seed 9)."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(60, 5))
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)
    data = Dataset("blobs", x[:40], y[:40], x[40:], y[40:], 3)
    for m in (DeviceModel(model="PiecewiseStep", piecewise_up=(1.5, 1.0, 0.4),
                          piecewise_down=(0.3, 1.0, 1.8)), DeviceModel(model="ExpStep")):
        same_run(TrainConfig(config="tiny", hidden=(4,), chips=1, epochs=2, seed=9, batch=8,
                             float_baseline=False, device_model=dataclasses.asdict(m)), data)


@pytest.mark.slow
def test_the_64_256_128_10_network_on_four_default_chips(digits):
    """64-256-128-10 digits MLP on 4 default chips (14 tiles), 2 epochs, seed 1."""
    same_run(TrainConfig(hidden=(256, 128), chips=4, epochs=2, seed=1, float_baseline=False),
             digits)


@pytest.mark.parametrize("engine", ["rv32", "tile"])
def test_time_and_temperature_on_an_emulator_match_the_twin(tmp_path, engine):
    """numerics §11 through the trainer (what ``ohmflow train --backend verilator --config
    tiny-rv32.toml --temperature 350 --drift-nu 0.06 ...`` runs): a 4-4-3 network on the odd
    chip (two 5x7 tiles) of either engine, a warm chip with drift, spread and decay, an ADVANCE
    of 1 s after every batch; 2 epochs of a seeded 3-class set (seed 9)."""
    from ohmflow.emulator.config import get_config, has_time

    if engine == "rv32":
        path = tmp_path / "tiny-rv32.toml"
        path.write_text('[chip]\ntiles = 2\nrows = 5\ncols = 7\nlanes = 1\nengine = "rv32"\n')
        chip = str(path)
    else:
        chip = "tiny"  # the tile engine's 5x7 chip (3 lanes)
    assert has_time(get_config(chip)) and get_config(chip).engine == engine
    rng = np.random.default_rng(9)
    x = rng.normal(size=(80, 4))
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)
    data = Dataset("blobs", x[:56], y[:56], x[56:], y[56:], 3)
    cfg = TrainConfig(config=chip, hidden=(4,), epochs=2, seed=4, batch=8,
                      float_baseline=False, temperature=350, drift_nu_mean=0.06,
                      drift_nu_dtod=0.02, lifetime=200.0, lifetime_dtod=0.3, batch_time=1.0)
    same_run(cfg, data)
