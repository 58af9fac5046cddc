"""Every training algorithm on the twin and on the Verilator emulator (the RTL): identical."""

import pytest
from ohmflow.host.datasets import Dataset
from ohmflow.host.trainer import TrainConfig

from .test_algorithms import SETTINGS
from .test_twin_verilator_sameness import same_run

pytest.importorskip("ohmflow.sim.verilator_server")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SETTINGS if n != "sgd"])
def test_two_epochs_of_each_algorithm_on_twin_and_verilator(digits, name):
    """64-16-10 on SoftBounds devices, 2 epochs of 64 samples, seed 6: device states of the
    weights and the fast arrays, digital buffers, transfer counters, losses, device counters
    and ledger entries agree bit for bit."""
    data = Dataset("digits", digits.x_train[:64], digits.y_train[:64], digits.x_test[:30],
                   digits.y_test[:30], digits.classes)
    lr, opts = SETTINGS[name]
    cfg = TrainConfig(hidden=(16,), epochs=2, lr=lr, seed=6, algorithm=name,
                      algorithm_options=opts, float_baseline=False,
                      device_model={"model": "SoftBounds"})
    same_run(cfg, data)
