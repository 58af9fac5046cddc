"""Fabrication sampler and map files: round trips, validation, the codes' physical meaning."""

import numpy as np
import pytest
from ohmflow.emulator.config import ChipConfig, DeviceModel
from ohmflow.emulator.fabrication import DeviceMap, fabricate, nominal

CFG = ChipConfig(tiles=2, rows=5, cols=4, lanes=1, name="fab")


def test_same_seed_same_chip_other_seed_differs():
    a, b, c = (fabricate(CFG, DeviceModel(), s) for s in (1, 1, 2))
    assert a.equals(b) and not a.equals(c)


def test_nominal_constant_step_codes():
    m = nominal(CFG)
    assert np.all(m.su == 16) and np.all(m.sd == 16)  # round(0.001 * 2**14)
    assert np.all(m.ku == 0) and np.all(m.kd == 0)
    assert np.all(m.wmax == 9830) and np.all(m.wmin == -9830)  # round(0.6 * 2**14)


def test_soft_bounds_step_vanishes_at_each_bound():
    m = fabricate(CFG, DeviceModel.soft_bounds(), 3)
    step_up_at_max = m.su + ((m.ku * m.wmax + 2**19) >> 20)
    step_down_at_min = m.sd + ((m.kd * m.wmin + 2**19) >> 20)
    assert np.all(np.abs(step_up_at_max) <= 1) and np.all(np.abs(step_down_at_min) <= 1)


def test_linear_step_slope_matches_gamma():
    model = DeviceModel(model="LinearStep", gamma_up=0.5, gamma_down=0.5, gamma_up_dtod=0.0,
                        gamma_down_dtod=0.0, dw_min=0.01, dw_min_dtod=0.0)
    m = fabricate(CFG, model, 4)
    phys = m.to_physical(CFG)
    # gamma per weight unit = 0.5 / w_max (mean bound reference), to code precision
    assert np.allclose(phys["gamma_up"], 0.5 / 0.6, rtol=0.01)
    assert np.allclose(phys["gamma_down"], 0.5 / 0.6, rtol=0.01)


def test_npz_round_trip_and_refusals(tmp_path):
    m = fabricate(CFG, DeviceModel(), 5)
    p = tmp_path / "map.npz"
    m.save_npz(p)
    assert DeviceMap.load_npz(p, CFG).equals(m)
    with pytest.raises(ValueError, match="shape"):
        DeviceMap.load_npz(p, ChipConfig(tiles=2, rows=6, cols=4, lanes=1))
    np.savez(tmp_path / "other.npz", su=m.su)
    with pytest.raises(ValueError, match="not an ohmflow device map"):
        DeviceMap.load_npz(tmp_path / "other.npz", CFG)
    (tmp_path / "trunc.npz").write_bytes(p.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot read|not an ohmflow"):
        DeviceMap.load_npz(tmp_path / "trunc.npz", CFG)


def test_csv_round_trip_and_refusals(tmp_path):
    m = fabricate(CFG, DeviceModel.soft_bounds(), 6)
    p = tmp_path / "map.csv"
    m.save_csv(p, CFG)
    back = DeviceMap.load_csv(p, CFG)
    assert np.array_equal(back.su, m.su) and np.array_equal(back.wmax, m.wmax)
    assert np.all(np.abs(back.ku - m.ku) <= 1)  # slopes pass through floats
    lines = p.read_text().splitlines()
    (tmp_path / "missing.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="missing"):
        DeviceMap.load_csv(tmp_path / "missing.csv", CFG)
    (tmp_path / "dup.csv").write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(ValueError, match="given twice"):
        DeviceMap.load_csv(tmp_path / "dup.csv", CFG)
    (tmp_path / "nan.csv").write_text("\n".join([lines[0], lines[1].replace(",", ",nan,", 1)]))
    with pytest.raises(ValueError):
        DeviceMap.load_csv(tmp_path / "nan.csv", CFG)
    (tmp_path / "cols.csv").write_text("tile,j,i\n0,0,0\n")
    with pytest.raises(ValueError, match="needs the columns"):
        DeviceMap.load_csv(tmp_path / "cols.csv", CFG)


def test_loading_a_map_clips_states_into_new_bounds():
    from ohmflow.emulator.twin import Twin

    tw = Twin(CFG)
    tw.program(1, np.full((4, 5), 9000))
    m = nominal(CFG)
    m.wmax[1] = 5000
    tw.load_device_map(m)
    assert np.all(tw.read(1) == 5000)
    one = nominal(CFG).tile(0)
    one.wmax[...] = 100
    tw.program(0, np.full((4, 5), 3000))
    tw.load_device_map(one, tile=0)
    assert np.all(tw.read(0) == 100) and np.all(tw.read(1) == 5000)
