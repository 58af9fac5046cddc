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


def test_compare_refuses_what_is_not_a_built_emulator(tmp_path):
    with pytest.raises(ValueError, match="is not a built emulator"):
        emulator_epoch.cycle_costs("tiny", executables=[str(tmp_path / "ohmflow-emulator")])


@pytest.mark.slow
def test_cycle_costs_time_each_kind_of_frame():
    """The received-only frame costs a cycle a byte and runs no operation: fewer cycles than the
    FORWARD frame's bytes and tile work (`ohmflow.sim.workload`'s frames, as the bench)."""
    from ohmflow.emulator import protocol as P
    from ohmflow.emulator.config import get_config
    from ohmflow.host import emulator_bench

    rows = {r["kind"]: r for r in emulator_epoch.cycle_costs("tiny", rounds=1, frames=2)}
    frame_bytes = P.TABLE.max_payload + P.OVERHEAD
    bad = rows.pop("received only (bad CRC)")
    assert frame_bytes <= bad["cycles_per_frame"] < frame_bytes + 200
    bench = {r["scenario"]: r for r in emulator_bench.bench(get_config("tiny"), seconds=0.2)}
    for kind, row in rows.items():
        assert row["cycles_per_frame"] == bench[kind]["cycles_per_command"], kind
        assert row["ns_per_cycle"] > 0
