"""Every ``ohmflow train`` option is checked before a run folder is written, with one line naming
what was wrong and what would work; what the chip cannot represent is refused, never clipped."""

import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host import chip_range, cli
from ohmflow.host.trainer import Trainer


def train(capsys, tmp_path, *argv):
    out = tmp_path / "run"
    rc = cli.main(["train", "--epochs", "1", "--hidden", "8", "--no-progress", "--out", str(out),
                   *argv])
    return rc, capsys.readouterr().err, out


@pytest.fixture
def toml(tmp_path):
    def make(text, name="chip.toml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return make


@pytest.mark.parametrize("argv, words", [
    (["--backend", "twni"], ["unknown backend 'twni'", "did you mean --backend twin?"]),
    (["--backend", "verilatr"], ["did you mean --backend verilator?"]),
    (["--report", "cost.txt"], ["--report must name a .md or .json file"]),
    (["--analog-profile", "hermse"], ["--analog-profile", "unknown profile 'hermse'", "hermes"]),
    (["--analog-profile", "h100-bf16"], ["--analog-profile must name an analog profile",
                                         "digital profile 'h100-bf16'"]),
    (["--digital-profile", "rpu"], ["--digital-profile must name a digital profile"]),
    (["--desired-bl", "100"], ["--desired-bl 100 is above", "bl_max", "[1, 63]"]),
    (["--w-max", "3"], ["--w-max 3 is above the largest weight", "w_bits 16"]),
    (["--w-min", "-2.5"], ["--w-min -2.5 is below the smallest weight"]),
    (["--dw-min", "0.00001"], ["--dw-min 1e-05 is below the smallest step"]),
    (["--dw-min", "0.5"], ["--dw-min 0.5 is above the largest step"]),
    (["--epochs", "0"], ["--epochs must be >= 1"]),
    (["--dataset", "missing.npz"], ["dataset file missing.npz does not exist"]),
])
def test_a_bad_option_is_refused_before_the_run_folder_is_written(capsys, tmp_path, argv,
                                                                  words):
    rc, err, out = train(capsys, tmp_path, *argv)
    assert rc == 2 and err.count("\n") == 1 and err.startswith("ohmflow train: error: "), err
    for w in words:
        assert w in err
    assert "open_device" not in err
    assert not out.exists()


def test_the_limits_are_the_chips_codes():
    """Values just inside each limit are accepted, just outside refused (reference: the codes
    of ChipConfig: 2**w_frac units a weight, w_max_code, step_max, bl_max)."""
    from ohmflow.host.trainer import TrainConfig

    chip = PRESETS["default"]
    unit = 2.0**chip.w_frac
    ok = {"w_max": chip.w_max_code / unit, "w_min": chip.w_min_code / unit,
          "dw_min": chip.step_max / unit}
    for name, v in ok.items():
        chip_range.check(TrainConfig(device_model={"w_max": 0.6, "w_min": -0.6, name: v}), chip)
        bad = v * 1.001
        with pytest.raises(ValueError, match=chip_range.FLAG[name]):
            chip_range.check(TrainConfig(device_model={"w_max": 0.6, "w_min": -0.6,
                                                       name: bad}), chip)
    chip_range.check(TrainConfig(desired_bl=chip.bl_max), chip)
    with pytest.raises(ValueError, match="--desired-bl"):
        chip_range.check(TrainConfig(desired_bl=chip.bl_max + 1), chip)


def test_toml_config_errors_name_the_file(capsys, tmp_path, toml):
    bad = toml("[chip]\ntiles = \n")
    rc, err, out = train(capsys, tmp_path, "--config", str(bad))
    assert rc == 2 and f"chip config {bad} is not valid TOML" in err and not out.exists()
    unknown = toml("[chip]\ntilez = 2\n", "unknown.toml")
    rc, err, _ = train(capsys, tmp_path, "--config", str(unknown))
    assert rc == 2 and f"chip config {unknown}: unknown chip config field(s) ['tilez']" in err


def test_converter_widths_training_would_not_use_are_refused(capsys, tmp_path, toml):
    wide = toml("[chip]\nin_bits = 8\nout_bits = 10\n")
    rc, err, out = train(capsys, tmp_path, "--config", str(wide))
    assert rc == 2 and "8-bit DAC and a 10-bit ADC" in err and "at 7 and 9 bits" in err
    assert not out.exists()


def test_an_interrupted_run_says_how_to_resume(capsys, tmp_path, monkeypatch):
    def stop(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "run_epoch", stop)
    rc, err, out = train(capsys, tmp_path)
    assert rc == 130
    assert err.strip() == f"ohmflow train: interrupted; continue with: ohmflow train --resume {out}"
    assert (out / "checkpoint.ohmckpt").exists()
