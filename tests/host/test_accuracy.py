"""The accuracy targets of the aihwkit recipe (digits, 64-32-10, batch 32, lr 0.1, 30 epochs),
mean over seeds 0-2 on the twin. aihwkit 1.2.0: float 0.957, ConstantStep 0.959, SoftBounds 0.792.
"""

import pytest
from ohmflow.emulator.config import DeviceModel
from ohmflow.host.accuracy_bench import run_setting


def mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.slow
def test_constant_step_and_float_reach_their_targets(digits):
    runs = run_setting(DeviceModel(), [0, 1, 2], 30, digits, lambda s: None)
    assert mean([r["float"] for r in runs]) >= 0.955
    assert mean([r["analog"] for r in runs]) >= 0.94


@pytest.mark.slow
def test_soft_bounds_reaches_its_target(digits):
    runs = run_setting(DeviceModel.soft_bounds(), [0, 1, 2], 30, digits, lambda s: None)
    assert mean([r["analog"] for r in runs]) >= 0.79
