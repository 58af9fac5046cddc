"""ohmflow train --device-preset / --device-config: what they set, overrides, conflicts, refusals,
and resume."""

import dataclasses
import json

import pytest
from ohmflow.emulator.config import DeviceModel
from ohmflow.emulator.presets import device_config_toml, get_preset
from ohmflow.host import cli, train_command
from ohmflow.host.checkpoint import load as load_ckpt


def config(*argv):
    args = cli.build_parser(["train"]).parse_args(["train", *argv])
    return train_command.Train.config_from_args(args)


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_preset_sets_the_device_and_aihwkits_preset_periphery():
    cfg = config("--device-preset", "EcRamPreset")
    assert cfg.device_model == dataclasses.asdict(get_preset("EcRamPreset").device)
    assert (cfg.out_bound, cfg.out_noise, cfg.desired_bl) == (20.0, 0.1, 31)


def test_explicit_flags_override_single_values_of_a_preset():
    cfg = config("--device-preset", "EcRamPreset", "--dw-min", "0.003", "--out-bound", "15")
    want = get_preset("EcRamPreset").device.replace(dw_min=0.003)
    assert cfg.model == want and cfg.out_bound == 15.0 and cfg.out_noise == 0.1


def test_device_config_paths_resolve_where_the_command_runs(tmp_path, monkeypatch):
    d = get_preset("CapacitorPreset").device.replace(dw_min=0.004)
    (tmp_path / "dev.toml").write_text(device_config_toml(d, {"source": "m.csv"}))
    monkeypatch.chdir(tmp_path)
    cfg = config("--device-config", "dev.toml")
    assert cfg.model == d and cfg.out_bound == 12.0  # a device config leaves the periphery


def test_conflicts_and_refusals(tmp_path, capsys):
    rc, _, err = run(capsys, "train", "--device-preset", "EcRamPreset", "--device-model",
                     "SoftBounds", "--out", str(tmp_path / "a"))
    assert rc == 2 and "--device-model conflicts with --device-preset EcRamPreset" in err
    rc, _, err = run(capsys, "train", "--dw-min", "1e-5", "--out", str(tmp_path / "c"))
    assert rc == 2 and "--dw-min 1e-05 is below the smallest step" in err
    rc, _, err = run(capsys, "train", "--device-config", str(tmp_path / "none.toml"))
    assert rc == 2 and "cannot read device config" in err
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--device-preset", "EcRamPreset", "--device-config", "x.toml"])
    assert e.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in "abc")


def test_preset_run_states_its_approximations_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    rc, text, err = run(capsys, "train", "--device-preset", "ReRamSBPreset", "--epochs", "1",
                        "--hidden", "8", "--no-float", "--no-progress", "--out", str(out))
    assert rc == 0, err
    assert "ReRamSBPreset: SoftBounds (dw_min 0.002)" in text
    assert "device: ReRamSBPreset approximates aihwkit's ReRamSBPresetDevice: write_noise_std" \
        in text
    assert "w_max beyond the state format" in text  # 0.62 % of bounds clipped, said so
    meta, _ = load_ckpt(out / "checkpoint.ohmckpt")
    assert DeviceModel(**meta["train"]["device_model"]) == get_preset("ReRamSBPreset").device
    assert meta["train"]["out_bound"] == 20.0
    rc, _, err = run(capsys, "train", "--resume", str(out), "--device-preset", "EcRamPreset",
                     "--epochs", "2", "--no-progress")
    assert rc == 2 and "differs from the checkpoint" in err
    rc, _, err = run(capsys, "train", "--resume", str(out), "--device-preset", "ReRamSBPreset",
                     "--epochs", "2", "--no-progress")
    assert rc == 0, err
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]


def test_table_models_from_the_command_line_train_on_the_twin(tmp_path, capsys):
    """--device-model PowStep/ExpStep/PiecewiseStep with aihwkit's parameter flags: the run's
    chip holds the model's step-shape table (not the linear response) and its checkpoint
    resumes with it."""
    from ohmflow.emulator.step_shape import step_shape
    from ohmflow.host.device import TwinDevice
    from ohmflow.host.trainer import Trainer

    cfg = config("--device-model", "PiecewiseStep", "--piecewise-up", "1.2,1,0.5",
                 "--piecewise-down", "0.5 1 1.2", "--dw-min", "0.01")
    assert cfg.model.piecewise_up == (1.2, 1.0, 0.5)
    cfg = config("--device-model", "ExpStep", "--A-up", "-1.18445", "--exp-a", "-0.5",
                 "--exp-b", "-0.5", "--gamma-up", "5")
    assert (cfg.model.A_up, cfg.model.a, cfg.model.b, cfg.model.gamma_up) == (
        -1.18445, -0.5, -0.5, 5.0)
    assert cfg.model.gamma_down == 12.78785  # aihwkit's ExpStep default, not LinearStep's 0
    cfg = config("--device-model", "PowStep", "--pow-gamma", "2", "--dw-min", "0.01",
                 "--hidden", "8", "--epochs", "1")
    dev = TwinDevice("default")
    Trainer(cfg, dev, progress=False)
    assert dev.twin.read_step_shape().equals(step_shape(cfg.model))
    rc, _, err = run(capsys, "train", "--device-model", "PowStep", "--pow-gamma-dtod", "0.1",
                     "--out", str(tmp_path / "p"))
    assert rc == 2 and "pow_gamma_dtod must be 0" in err
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--device-model", "PiecewiseStep", "--piecewise-up", "1,x",
                  "--out", str(tmp_path / "q")])
    assert e.value.code == 2
    assert "expected numbers separated by commas" in capsys.readouterr().err
