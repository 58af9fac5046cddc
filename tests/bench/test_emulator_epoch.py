"""`ohmflow.host.emulator_epoch` measures the very training steps `Trainer.run_epoch` runs."""

import numpy as np
import pytest
from ohmflow.host import datasets, emulator_epoch
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer


def test_measured_steps_are_the_training_epoch():
    digits = datasets.digits()
    cfg = TrainConfig(epochs=2, seed=3, hidden=(8,), float_baseline=False)
    ref, got = Trainer(cfg, TwinDevice(), digits), Trainer(cfg, TwinDevice(), digits)
    for e in range(2):
        ref.run_epoch()
        assert emulator_epoch._train_steps(got, e) == len(digits.x_train)
    a, b = ref.analog.state(), got.analog.state()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert got.ledger.entries == ref.ledger.entries


def test_bad_epochs_are_refused():
    with pytest.raises(ValueError, match="--epochs must be at least 1, got 0"):
        emulator_epoch.main(["--epochs", "0"])
