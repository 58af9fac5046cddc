"""ohmflow train --device-preset / --device-config: what they set, overrides, conflicts, refusals,
and resume."""

import dataclasses
import json

import pytest
from ohmflow.emulator.presets import device_config_toml, get_preset
from ohmflow.host import cli
from ohmflow.host.checkpoint import load as load_ckpt


def config(*argv):
    args = cli.build_parser(["train"]).parse_args(["train", *argv])
    return cli.Train.config_from_args(args)


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
    rc, _, err = run(capsys, "train", "--device-preset", "ReRamESPreset",
                     "--out", str(tmp_path / "b"))
    assert rc == 2 and "issue #16" in err and err.count("\n") == 1
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
    assert meta["train"]["device_model"] == dataclasses.asdict(get_preset("ReRamSBPreset").device)
    assert meta["train"]["out_bound"] == 20.0
    rc, _, err = run(capsys, "train", "--resume", str(out), "--device-preset", "EcRamPreset",
                     "--epochs", "2", "--no-progress")
    assert rc == 2 and "differs from the checkpoint" in err
    rc, _, err = run(capsys, "train", "--resume", str(out), "--device-preset", "ReRamSBPreset",
                     "--epochs", "2", "--no-progress")
    assert rc == 0, err
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
