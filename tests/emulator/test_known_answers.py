"""The worked examples of docs/numerics.md §12, against the twin and the scalar spec model."""

import numpy as np
import pytest
from ohmflow.emulator import prng
from ohmflow.emulator.config import ChipConfig, Settings
from ohmflow.emulator.fabrication import nominal
from ohmflow.emulator.twin import Twin

from tests.emulator import spec_model as spec

HASH_KAT = {0: 0x00000000, 1: 0x688990C0, 2: 0xD1132181, 0xDEADBEEF: 0xE628C683,
            0xFFFFFFFF: 0x6768824A}
EX_CFG = ChipConfig(tiles=1, rows=3, cols=2, lanes=1, name="example")


@pytest.mark.parametrize("x,h", HASH_KAT.items())
def test_lowbias32_kat(x, h):
    assert prng.lowbias32(x) == h
    assert int(prng.lowbias32_np(np.array([x], dtype=np.uint32))[0]) == h
    assert spec.lowbias32(x) == h


def test_key_and_gauss_kat():
    assert prng.lowbias32(prng.lowbias32(1) ^ prng.DOMAIN_FWD) == 0xD25B73E6
    k = prng.op_key(1, prng.DOMAIN_FWD, 0)
    assert k == 0x2FB3BC6F == spec.key(1, spec.FWD, 0)
    words = prng.draw(k, np.arange(2))
    assert [int(w) for w in words] == [0x4AF3F236, 0x4A004240]
    assert prng.gauss(words).tolist() == [103, -306]
    assert [spec.gauss(int(w)) for w in words] == [103, -306]
    assert [int(v) for v in prng.nonce_keys(1, prng.DOMAIN_FWD, 0, 1)] == [0x2FB3BC6F]


def test_mvm_kat():
    tw = Twin(EX_CFG)
    tw.set(seed=1)
    s = tw.settings
    assert (s.fwd_gain, s.fwd_shift, s.fwd_sigma, s.out_bits) == (44211, 31, 565, 9)
    tw.program(0, [[1000, -2000, 300], [9000, 0, -9000]])
    y, sat = tw.forward(0, [[63, -10, 5]])
    assert y.tolist() == [[3, 8]] and sat.tolist() == [0]
    assert tw.nonce == 1


def test_update_kat():
    tw = Twin(EX_CFG)
    tw.program(0, [[1000, -2000, 300], [16384, 0, -16384]])  # clipped to +-9830
    assert tw.read(0).tolist() == [[1000, -2000, 300], [9830, 0, -9830]]
    tw.set(seed=7)
    assert tw.settings.bl == 31 and tw.settings.dw_std == 2128
    assert prng.op_key(7, prng.DOMAIN_ROW, 0) == 0xB37F4575
    assert prng.op_key(7, prng.DOMAIN_COL, 0) == 0xA6372C48
    assert prng.op_key(7, prng.DOMAIN_C2C, 0) == 0xBEEC1161
    n = tw.update(0, [[200, -100, 0]], [[-150, 256]])
    assert n[0].tolist() == [[14, 6, 0], [23, 10, 0]]
    assert tw.read(0).tolist() == [[1234, -2109, 300], [9470, 168, -9830]]


def test_spec_model_reproduces_examples():
    s = Settings.default(EX_CFG)
    chip = spec.SpecChip(EX_CFG, s.replace(EX_CFG, seed=1), nominal(EX_CFG))
    chip.program(0, [[1000, -2000, 300], [9000, 0, -9000]])
    assert chip.forward(0, [63, -10, 5]) == ([3, 8], 0)
    chip = spec.SpecChip(EX_CFG, s.replace(EX_CFG, seed=7), nominal(EX_CFG))
    chip.program(0, [[1000, -2000, 300], [16384, 0, -16384]])
    assert chip.update(0, [200, -100, 0], [-150, 256]) == [[14, 6, 0], [23, 10, 0]]
    assert chip.w[0] == [[1234, -2109, 300], [9470, 168, -9830]]


def test_step_shape_kat():
    """§12's ExpStep pulse: ReRamESPreset's table nodes, position and interpolation at one
    device, on the twin and on the spec model (dw_std 0, so no c2c noise)."""
    from ohmflow.emulator.fabrication import DeviceMap
    from ohmflow.emulator.presets import get_preset
    from ohmflow.emulator.step_shape import step_shape

    shape = step_shape(get_preset("ReRamESPreset").device)
    assert shape.mode == "centered"
    assert (shape.up[71], shape.up[72], shape.down[71], shape.down[72]) == (4326, 4309, 11115,
                                                                            11685)
    cfg = ChipConfig(tiles=1, rows=1, cols=1, lanes=1, name="one")
    one = {f: np.array([[[v]]]) for f, v in (("su", 22), ("sd", 22), ("ku", 0), ("kd", 0),
                                             ("wmax", 16384), ("wmin", -16384))}
    dmap = DeviceMap(**one)
    s = Settings.default(cfg).replace(cfg, dw_std=0)
    for count, after in ((3, 4069), (-3, 3814)):
        tw = Twin(cfg, s, dmap, step_shape=shape)
        ref = spec.SpecChip(cfg, s, dmap, shape)
        tw.program(0, [[4000]])
        ref.program(0, [[4000]])
        tw.pulse(0, "row", 0, [count])
        ref.pulse(0, "row", 0, [count])
        assert tw.read(0).tolist() == [[after]] and ref.w[0] == [[after]]


@pytest.mark.parametrize("settings, dt, after", [
    (dict(drift_nu=3932, drift_nu_dtod=1135), 3_600_000, 4000),  # one hour of drift
    (dict(decay_rate=28147497671), 1000, 4524),  # one second of decay, lifetime 10 s
])
def test_advance_example(settings, dt, after):
    """numerics.md §12, "One ADVANCE": the twin and the spec model."""
    from ohmflow.emulator import physics

    assert physics.log2_fixed(20000) == 936359 and physics.log2_fixed(3_600_000) == 1427345
    assert spec.gauss(spec.draw(spec.key(0, spec.DRIFT, 0), 0)) == -252
    cfg = ChipConfig(tiles=1, rows=1, cols=1, lanes=1, name="one")
    s = Settings.default(cfg).replace(cfg, **settings)
    tw = Twin(cfg, s, nominal(cfg))
    ref = spec.SpecChip(cfg, s, nominal(cfg))
    tw.program(0, [[5000]])
    ref.program(0, [[5000]])
    assert tw.advance(dt) == ref.advance(dt) == dt
    assert tw.read(0).tolist() == [[after]] and ref.w[0] == [[after]]
