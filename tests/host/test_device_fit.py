"""ohmflow fit-device: recovery of known devices from the twin's own pulse response, model
choice, the device config it writes (taken by ohmflow train), and malformed measurements."""

import csv

import numpy as np
import pytest
from ohmflow.emulator.config import ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import nominal
from ohmflow.emulator.presets import load_device_config
from ohmflow.emulator.twin import Twin
from ohmflow.host import cli, device_fit, train_command

#: one device: a 1x1 window on a 1x1 tile
ONE = ChipConfig(tiles=1, rows=1, cols=1, lanes=1, name="one")


def twin_response(model: DeviceModel, pulses: int, cycles: int, seed: int) -> list[tuple]:
    """(cycle, direction, pulse, weight) readings of one device driven pulse by pulse by the twin
    (numerics §5.4): each cycle an up sweep from the lower bound, then a down sweep."""
    tw = Twin(ONE, Settings.default(ONE, dw_min_std=model.dw_min_std, seed=seed),
              nominal(ONE, model))
    unit = 2.0**ONE.w_frac
    tw.program(0, np.array([[ONE.w_min_code]]))  # clipped to the device's lower bound
    rows = []
    for c in range(cycles):
        for direction, sign in (("up", 1), ("down", -1)):
            rows.append((c, direction, 0, tw.read(0)[0, 0] / unit))
            for p in range(1, pulses + 1):
                tw.pulse(0, "row", 0, [sign])
                rows.append((c, direction, p, tw.read(0)[0, 0] / unit))
    return rows


def write_csv(path, rows, header=("cycle", "direction", "pulse", "weight")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# (device, pulses per sweep); dw_min_std 0 and 0.1, steps of 49-82 state LSBs
CASES = {
    "ConstantStep": (DeviceModel(dw_min=0.004, up_down=0.1, w_max=0.5, w_min=-0.4,
                                 dw_min_std=0.0), 300),
    "SoftBounds": (DeviceModel.soft_bounds(dw_min=0.005, up_down=-0.05, w_max=0.6, w_min=-0.5,
                                           dw_min_std=0.1), 700),
    "LinearStep": (DeviceModel(model="LinearStep", dw_min=0.003, up_down=0.0, w_max=0.7,
                               w_min=-0.6, gamma_up=0.5, gamma_down=0.3, dw_min_std=0.1), 700),
}


@pytest.mark.parametrize("name", CASES)
def test_fit_recovers_the_twins_device(tmp_path, name):
    """Tolerances: dw_min 3 %, up_down 0.02, bounds 3 % (SoftBounds 5 %: its bounds are
    extrapolated), gamma 0.05, dw_min_std 0.03; the generating model is chosen."""
    true, pulses = CASES[name]
    path = write_csv(tmp_path / "m.csv", twin_response(true, pulses, cycles=2, seed=11))
    meas = device_fit.read_measurement(path)
    fits = [device_fit.fit_model(meas, m) for m in device_fit.ORDER]
    chosen = device_fit.choose(fits)
    assert chosen.model == name, [(f.model, f.error, f.reason) for f in fits]
    d = chosen.device
    assert d.dw_min == pytest.approx(true.dw_min, rel=0.03)
    assert d.up_down == pytest.approx(true.up_down, abs=0.02)
    btol = 0.05 if name == "SoftBounds" else 0.03
    assert d.w_max == pytest.approx(true.w_max, rel=btol)
    assert d.w_min == pytest.approx(true.w_min, rel=btol)
    if name == "LinearStep":
        assert d.gamma_up == pytest.approx(true.gamma_up, abs=0.05)
        assert d.gamma_down == pytest.approx(true.gamma_down, abs=0.05)
    assert d.dw_min_std == pytest.approx(true.dw_min_std, abs=0.03)
    assert chosen.error < 0.05


def test_conductance_is_normalized_and_the_config_feeds_train(tmp_path, capsys):
    true, pulses = CASES["SoftBounds"]
    rows = twin_response(true, pulses, cycles=1, seed=3)
    g = [(c, d, p, 50.0 + 20.0 * w) for c, d, p, w in rows]  # microsiemens, say
    path = write_csv(tmp_path / "g.csv", g, ("cycle", "direction", "pulse", "conductance"))
    out = tmp_path / "dev.toml"
    assert cli.main(["fit-device", str(path), "--model", "SoftBounds", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SoftBounds" in text and "relative" in text
    m = load_device_config(out)
    allw = np.array([w for *_, w in rows])
    mid, scale = (allw.max() + allw.min()) / 2, (allw.max() - allw.min()) / 2  # onto [-1, 1]
    # the float formulas (numerics §7.1) at the normalized origin, w = mid
    up = true.dw_min * (1 + true.up_down) * (1 - mid / true.w_max) / scale
    down = true.dw_min * (1 - true.up_down) * (1 + mid / -true.w_min) / scale
    assert m.model == "SoftBounds"
    assert m.dw_min == pytest.approx((up + down) / 2, rel=0.03)
    assert m.w_max == pytest.approx((true.w_max - mid) / scale, rel=0.05)
    assert m.w_min == pytest.approx((true.w_min - mid) / scale, rel=0.05)
    args = cli.build_parser(["train"]).parse_args(["train", "--device-config", str(out),
                                                   "--dw-min-dtod", "0.2"])
    cfg = train_command.Train.config_from_args(args)
    assert cfg.model == m.replace(dw_min_dtod=0.2)


@pytest.mark.parametrize("content, message", [
    ("pulse,weight\n0,0.1\n1,0.2\n", "g.csv:1: header"),
    ("pulse,direction,weight\n0,up,0.1\n1,up,abc\n0,down,0\n1,down,-1\n",
     "g.csv:3: weight must be a number, got 'abc'"),
    ("pulse,direction,weight\n0,up,0.1\n2,up,0.2\n1,up,0.3\n0,down,0\n1,down,-1\n",
     "g.csv:4: pulse 1 does not follow pulse 2"),
    ("pulse,direction,weight\n0,up,0.1\n0,down,0\n1,down,-1\n",
     "g.csv:2: cycle 0 up has a single reading"),
    ("pulse,direction,weight\n0,up,0.1\n1,up,0.2\n", "no down sweep"),
    ("pulse,direction,weight\n0,sideways,0.1\n", "g.csv:2: direction must be up or down"),
    ("pulse,direction,weight\n0.5,up,0.1\n", "g.csv:2: pulse must be an integer"),
    ("pulse,direction,weight\n0,up\n", "g.csv:2: 2 cells, the header has 3"),
    ("", "empty file"),
])
def test_malformed_measurements_are_refused(tmp_path, capsys, content, message):
    path = tmp_path / "g.csv"
    path.write_text(content)
    assert cli.main(["fit-device", str(path), "--out", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.toml").exists()


def test_missing_file_and_bad_device_config(tmp_path, capsys):
    assert cli.main(["fit-device", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read measurement" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nmodel = 'SoftBounds'\ndw_mn = 0.1\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown device parameter\(s\) \['dw_mn'\]"):
        load_device_config(bad)
    bad.write_text("[device]\nmodel = 'SoftBounds'\ndw_min = -1\n")
    with pytest.raises(ValueError, match="bad.toml: dw_min must be"):
        load_device_config(bad)
