"""Bad input raises ValueError naming the parameter and the allowed range; state is unchanged."""

import numpy as np
import pytest
from ohmflow.emulator.config import (
    ChipConfig,
    DeviceModel,
    Settings,
    dw_std_code,
    get_config,
    sigma_code,
)
from ohmflow.emulator.fabrication import DeviceMap, fabricate, nominal
from ohmflow.emulator.twin import Twin

CFG = ChipConfig(tiles=2, rows=4, cols=3, lanes=1, name="bad")


@pytest.mark.parametrize("kw,word", [
    ({"rows": 0}, "rows"), ({"cols": 0}, "cols"), ({"tiles": 0}, "tiles"),
    ({"lanes": 0}, "lanes"), ({"bl_max": 65}, "bl_max"), ({"w_frac": 16}, "w_frac"),
    ({"in_bits": 1}, "in_bits"), ({"rows": 4096, "cols": 4097}, "cols"),
    ({"rows": 2.5}, "rows"), ({"p_bits": 6}, r"p_bits must be in \[8, 8\]"),
])
def test_impossible_configs(kw, word):
    with pytest.raises(ValueError, match=word):
        ChipConfig(**kw)


def test_unknown_config_name_and_fields():
    with pytest.raises(ValueError, match="unknown chip config"):
        get_config("nope")
    with pytest.raises(ValueError, match="unknown chip config field"):
        ChipConfig.from_dict({"rowz": 3})


@pytest.mark.parametrize("kw,word", [
    ({"bl": 64}, r"bl must be in \[1, 63\]"), ({"bl": 0}, "bl"),
    ({"fwd_sigma": -1}, "fwd_sigma"), ({"in_bits": 8}, "in_bits"),
    ({"out_bits": 10}, "out_bits"), ({"fwd_shift": 15}, "fwd_shift"),
    ({"seed": 2**32}, "seed"), ({"shapes": [(5, 3), (1, 1)]}, "n_in"),
    ({"shapes": [(4, 3)]}, "one \\(n_in, n_out\\) per tile"), ({"dw_std": -3}, "dw_std"),
    ({"nonsense": 1}, "unknown setting"),
])
def test_bad_settings(kw, word):
    tw = Twin(CFG)
    before = tw.settings
    with pytest.raises(ValueError, match=word):
        tw.set(**kw)
    assert tw.settings == before


def test_negative_noise_and_bad_device_models():
    with pytest.raises(ValueError, match="read noise"):
        sigma_code(-0.1)
    with pytest.raises(ValueError, match="dw_min_std"):
        dw_std_code(-1)
    with pytest.raises(ValueError, match="unknown device model"):
        DeviceModel(model="Memristor")
    with pytest.raises(ValueError, match="dw_min_dtod"):
        DeviceModel(dw_min_dtod=-0.1)
    with pytest.raises(ValueError, match="w_max"):
        DeviceModel(w_max=float("nan"))


def test_crossed_and_out_of_range_device_maps():
    m = nominal(CFG)
    m.wmin[0, 1, 2] = 5
    m.wmax[0, 1, 2] = 3
    with pytest.raises(ValueError, match="wmin"):
        m.validate(CFG)
    m = nominal(CFG)
    m.su[1, 0, 0] = 5000
    with pytest.raises(ValueError, match=r"su.*\[0, 4095\]"):
        m.validate(CFG)
    m = nominal(CFG)
    bad = DeviceMap(**{**{f: getattr(m, f) for f in ("su", "sd", "ku", "kd", "wmax")},
                       "wmin": m.wmin[:, :2]})
    with pytest.raises(ValueError, match="shape"):
        bad.validate(CFG)


def test_bad_operands_leave_state_unchanged():
    tw = Twin(CFG, device_map=fabricate(CFG, DeviceModel(), 1))
    tw.program(0, np.full((3, 4), 1000))
    w0, n0 = tw.read(0), tw.nonce
    cases = [
        (tw.forward, (0, np.zeros((2, 3))), "shape"),
        (tw.forward, (0, np.full((1, 4), np.nan)), "NaN"),
        (tw.forward, (0, np.full((1, 4), 64)), r"\[-63, 63\]"),
        (tw.forward, (0, np.full((1, 4), 0.5)), "integer"),
        (tw.forward, (2, np.zeros((1, 4), int)), r"tile must be an integer in \[0, 1\]"),
        (tw.backward, (0, np.zeros((1, 4), int)), "shape"),
        (tw.update, (0, np.zeros((1, 4), int), np.full((1, 3), 257)), r"\[-256, 256\]"),
        (tw.update, (0, np.zeros((2, 4), int), np.zeros((1, 3), int)), "same B"),
        (tw.update, (0, np.full((1, 4), np.inf), np.zeros((1, 3))), "NaN or inf"),
        (tw.pulse, (0, "diag", 0, [1, 1, 1]), "axis"),
        (tw.pulse, (0, "row", 4, [1, 1, 1]), r"row index must be in \[0, 3\]"),
        (tw.pulse, (0, "row", 0, [64, 0, 0]), r"\[-63, 63\]"),
        (tw.pulse, (0, "col", 0, [1, 1, 1]), "length 4"),
        (tw.pulse_lines, ("row", [0, 0], [0, 1], [[1, 1, 1], [64, 0, 0]]), r"\[-63, 63\]"),
        (tw.pulse_lines, ("row", [0, 0], [0, 4], [[1, 1, 1], [1, 1, 1]]),
         r"row index must be in \[0, 3\]"),
        (tw.pulse_lines, ("col", [0, 1], [0, 0], [[1, 1, 1, 1], [1, 1, 1]]), "tile 1"),
        (tw.pulse_lines, ("col", [0], [0, 1], [[1, 1, 1, 1]]), "as many"),
        (tw.program, (0, np.full((3, 4), 40000)), r"\[-32767, 32767\]"),
        (tw.program, (0, np.zeros((4, 3), int)), r"\(n_out, n_in\)"),
    ]
    for fn, args, word in cases:
        with pytest.raises(ValueError, match=word):
            fn(*args)
    assert np.array_equal(tw.read(0), w0) and tw.nonce == n0


def test_default_settings_are_valid_for_every_preset():
    from ohmflow.emulator.config import PRESETS

    for cfg in PRESETS.values():
        s = Settings.default(cfg)
        assert s.validated(cfg) is s


def test_settings_reused_by_set_are_the_validated_ones():
    """Twin.set reuses settings it validated before: toggling BL gives settings equal to a fresh
    validation, and a value refused once (a bool for an integer) stays refused after the valid
    one of equal hash was cached."""
    from ohmflow.emulator.config import Settings, get_config
    from ohmflow.emulator.twin import Twin

    cfg = get_config("default")
    twin = Twin(cfg)
    for bl in [3, 7, 3, 7, 1, 3]:
        got = twin.set(bl=bl)
        assert got == Settings.default(cfg).replace(cfg, bl=bl)
    a, b = twin.set(bl=5), twin.set(bl=6)
    assert twin.set(bl=5) is a and twin.set(bl=6) is b  # one object per value, reused
    twin.set(bl=1)
    with pytest.raises(ValueError):
        twin.set(bl=True)
    assert twin.settings.bl == 1


def test_one_changed_setting_equals_a_validated_replace():
    """Settings.changed (Twin.set's path for one setting) gives what replace gives for every
    integer setting at both ends of its range, refuses what replace refuses, and hands any other
    setting to replace."""
    from ohmflow.emulator.config import Settings, get_config

    cfg = get_config("default")
    s = Settings.default(cfg)
    ints = [f for f in Settings.__dataclass_fields__ if f != "shapes"]
    assert len(ints) == 16  # the 11 of SET and the 5 of §11 (SET_PHYSICS)
    for name in ints:
        for value in Settings._range(cfg, name):
            assert s.changed(cfg, name, value) == s.replace(cfg, **{name: value})
        for value in (Settings._range(cfg, name)[0] - 1, Settings._range(cfg, name)[1] + 1,
                      True, 2.0):
            with pytest.raises(ValueError, match=name):
                s.replace(cfg, **{name: value})
            with pytest.raises(ValueError, match=name):
                s.changed(cfg, name, value)
    shapes = ((8, 4),) + s.shapes[1:]
    assert s.changed(cfg, "shapes", shapes) == s.replace(cfg, shapes=shapes)
    with pytest.raises(ValueError, match="unknown setting"):
        s.changed(cfg, "nonsense", 1)
    with pytest.raises(ValueError, match="'shapes' is not an integer setting"):
        Settings._range(cfg, "shapes")  # no silent fallback to another setting's range
    assert s == Settings.default(cfg)  # unchanged: a copy was changed
