"""Time and temperature on the host (docs/numerics.md §11): `Device.advance`, global drift
compensation against the drift it undoes, the trainer's and the CLI's options and their checks."""

import numpy as np
import pytest
from ohmflow.emulator.config import (
    PRESETS,
    Settings,
    get_config,
)
from ohmflow.emulator.physics import decay_rate_code, drift_nu_code, dtod_code
from ohmflow.emulator.twin import Twin
from ohmflow.host import cli
from ohmflow.host.device import DeviceError, TwinDevice, advance_steps, check_physics
from ohmflow.host.drift import GlobalDriftCompensation
from ohmflow.host.layers import AnalogLinear
from ohmflow.host.trainer import TrainConfig, Trainer

DAY = 86_400


def test_advance_in_seconds_splits_long_steps_into_advances_that_compose():
    dev = TwinDevice("tiny")
    dev.configure(drift_nu=drift_nu_code(0.08), drift_nu_dtod=dtod_code("d", 0.02))
    ref = Twin(PRESETS["tiny"], dev.settings())
    w = np.arange(35).reshape(7, 5) * 300 - 5000
    dev.program(0, w)
    ref.program(0, w)
    assert dev.advance(60 * DAY) == 60 * DAY  # more than one ADVANCE holds (49.7 days)
    ref.advance(2**32 - 1)
    ref.advance(60 * DAY * 1000 - (2**32 - 1))
    assert np.array_equal(dev.read(0), ref.read(0)) and dev.chip_time_ms() == ref.time
    assert dev.advance(0.0004) == 60 * DAY  # under half a millisecond: one ADVANCE of 0 ms
    assert advance_steps(0) == [0] and advance_steps(1.5) == [1500]
    assert advance_steps(2**32 / 1000) == [2**32 - 1, 1]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1 s", True])
def test_bad_advance_refused(bad):
    dev = TwinDevice("tiny")
    with pytest.raises(ValueError, match="advance takes a"):
        dev.advance(bad)
    assert dev.chip_time_ms() == 0


def test_engines_without_time_refuse_its_settings():
    cfg = get_config("icebreaker")  # the rv32 engine, in TIME_UNFIT
    check_physics(cfg, Settings.default(cfg))  # the defaults are what every engine does
    with pytest.raises(DeviceError, match="temperature: the rv32 engine .* has no chip time"):
        check_physics(cfg, Settings.default(cfg).replace(cfg, temperature=350))
    tiny = PRESETS["tiny"]  # the tile engine has time and temperature
    check_physics(tiny, Settings.default(tiny).replace(tiny, temperature=350))


def layer_outputs(layer, x):
    return np.stack([layer.forward(x) for _ in range(5)]).mean(axis=0)


def test_global_drift_compensation_undoes_a_uniform_drift():
    """ν 0.06 without spread for 30 days shrinks every weight by (30 d / 20 s)^-0.06 = 0.49;
    the compensation, from the all-ones probe read before and after, brings the outputs back
    within 10 % (seed 0: read noise 0.06 on the probe and the outputs, 5 reads averaged, and
    the ADC's 12/255 step now twice as coarse against the shrunken signal)."""
    dev = TwinDevice("default")
    layer = AnalogLinear(dev, 48, 24)
    rng = np.random.default_rng(0)
    layer.set_weights(rng.uniform(-0.4, 0.4, (24, 48)))
    dev.configure(drift_nu=drift_nu_code(0.06))
    gdc = GlobalDriftCompensation([*layer.tiles])
    gdc.calibrate()
    x = rng.uniform(-1, 1, (64, 48))
    before = layer_outputs(layer, x)
    dev.advance(30 * DAY)
    drifted = layer_outputs(layer, x)
    factors = gdc.compensate()
    after = layer_outputs(layer, x)
    err = lambda y: np.linalg.norm(y - before) / np.linalg.norm(before)  # noqa: E731
    shrink = (30 * DAY / 20) ** -0.06
    assert abs(np.linalg.norm(drifted) / np.linalg.norm(before) - shrink) < 0.02
    assert err(drifted) > 0.4 and err(after) < 0.1
    assert all(abs(f - 1 / shrink) < 0.1 for f in factors)
    gdc.reset()
    again = layer_outputs(layer, x)
    assert np.linalg.norm(again - drifted) < 0.1 * np.linalg.norm(drifted)


def test_compensation_must_be_calibrated_first():
    dev = TwinDevice("tiny")
    layer = AnalogLinear(dev, 5, 7)
    with pytest.raises(ValueError, match="must be calibrated"):
        GlobalDriftCompensation(layer.tiles).compensate()


def test_training_with_decay_advances_the_chip_each_batch(digits):
    cfg = TrainConfig(epochs=1, seed=1, hidden=(16,), lifetime=5.0, lifetime_dtod=0.1,
                      drift_nu_mean=0.05, temperature=320, batch_time=0.01)
    t = Trainer(cfg, TwinDevice(), digits)
    t.run()
    batches = -(-len(t.data.x_train) // cfg.batch)
    dev = t.device
    assert dev.chip_time_ms() == batches * 10
    s = dev.settings()
    assert (s.temperature, s.decay_rate, s.drift_nu) == (
        320, decay_rate_code(5.0), drift_nu_code(0.05))
    assert dev.twin.device_key == 1


@pytest.mark.parametrize("change, message", [
    (dict(lifetime=-1.0), "lifetime must be a finite number of seconds >= 0"),
    (dict(temperature=0), "temperature must be an integer number of kelvin in \\[200, 450\\]"),
    (dict(temperature=500), "temperature must be"),
    (dict(drift_nu_mean=-0.1), "drift_nu_mean"),
    (dict(lifetime_dtod=float("nan")), "lifetime_dtod"),
    (dict(batch_time=0.0), "batch_time"),
])
def test_bad_time_options_refused(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change)


@pytest.mark.parametrize("argv, words", [
    (["--temperature", "0"], ["temperature must be an integer number of kelvin"]),
    (["--lifetime", "-3"], ["lifetime must be a finite number of seconds >= 0"]),
    (["--drift-nu", "0.06", "--backend", "verilator", "--config", "icebreaker"],
     ["--drift-nu", "rv32 engine of config 'icebreaker'", "TIME_UNFIT", "--backend twin"]),
])
def test_cli_refuses_bad_time_options(capsys, tmp_path, argv, words):
    out = tmp_path / "run"
    rc = cli.main(["train", "--epochs", "1", "--hidden", "8", "--no-progress", "--out",
                   str(out), *argv])
    err = capsys.readouterr().err
    assert rc != 0 and not out.exists()
    for w in words:
        assert w in err


def test_a_run_with_drift_or_decay_is_not_resumed(digits, tmp_path):
    """A checkpoint holds no chip time or drift ages, so resuming such a run is refused."""
    from ohmflow.host.checkpoint import CheckpointError

    cfg = TrainConfig(epochs=2, seed=1, hidden=(8,), lifetime=50.0)
    Trainer(cfg, TwinDevice(), digits, out_dir=tmp_path).run(stop_after=1)
    with pytest.raises(CheckpointError, match="cannot be resumed: a checkpoint does not hold "
                       "the chip time"):
        Trainer.resume(tmp_path, TwinDevice(), data=digits)
