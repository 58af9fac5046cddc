"""Time and temperature (docs/numerics.md §11): the twin against float math within the stated
bounds, against the scalar spec model bit for bit, the statistics of the per-device exponents,
and bad values refused."""

import math

import numpy as np
import pytest
from ohmflow.emulator import physics
from ohmflow.emulator.config import (
    GAUSS_STD,
    ChipConfig,
    DeviceModel,
    Settings,
)
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.physics import decay_rate_code, drift_nu_code, dtod_code
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin

from tests.emulator import spec_model as spec

ODD = ChipConfig(tiles=3, rows=7, cols=5, lanes=1, name="odd")
HOUR, DAY = 3_600_000, 86_400_000


def spec_nu(cfg, devkey, t, s):
    """nu_d of every device of tile t from the document, with the spec model's hash."""
    kn = spec.key(devkey, spec.DRIFT, t)
    return np.array([[max(0, s.drift_nu + spec.rnd(spec.gauss(spec.draw(kn, j * cfg.rows + i))
                                                   * s.drift_nu_dtod, 8))
                      for i in range(cfg.rows)] for j in range(cfg.cols)])


def spec_rate(cfg, devkey, t, s):
    kl = spec.key(devkey, spec.DECAY, t)
    out = []
    for j in range(cfg.cols):
        for i in range(cfg.rows):
            e = spec.rnd(spec.gauss(spec.draw(kl, j * cfg.rows + i)) * s.decay_dtod, 8)
            out.append(max(0, s.decay_rate + ((s.decay_rate * e) >> 16)))
    return np.array(out, dtype=float).reshape(cfg.cols, cfg.rows)


def chip(seed=3, **settings):
    tw = Twin(ODD, device_map=fabricate(ODD, DeviceModel(), seed))
    tw.load_device_key(0xC0FFEE)
    tw.set(**settings)
    rng = np.random.default_rng(seed)
    for t in range(ODD.tiles):
        tw.program(t, rng.integers(-9000, 9001, size=(ODD.cols, ODD.rows)))
    return tw


def bound_ok(new, expect, w):
    """§11.3's bound: |w' - w_float| <= 2^-12 |w| + 1."""
    return np.all(np.abs(new - expect) <= np.abs(w) / 4096 + 1)


def test_log2_and_exp2_within_their_bounds():
    rng = np.random.default_rng(0)
    for a in [1, 2, 3, 20_000, 65_535, 65_536, 2**40 + 12345,
              *rng.integers(1, 2**62, 300).tolist(), *rng.integers(1, 10**6, 300).tolist()]:
        assert abs(physics.log2_fixed(int(a)) / 2**16 - math.log2(a)) <= 6 / 2**16
        assert physics.log2_fixed(int(a)) == spec.log2_fixed(int(a))
    x = np.concatenate([np.arange(0, 70_000), rng.integers(0, 20 << 16, 5000)])
    f = physics.exp2n(x)
    assert np.all(np.abs(f - 2.0 ** (-x / 2**16) * 2**16) <= 3)
    assert f[0] == 2**16 and np.all(np.diff(physics.exp2n(np.arange(0, 19 << 16, 97))) <= 0)
    assert [int(v) for v in f[:2000:97]] == [spec.exp2n(int(v)) for v in x[:2000:97]]


@pytest.mark.parametrize("dt", [1000, HOUR, DAY, 30 * DAY])
def test_drift_against_the_power_law(dt):
    s = dict(drift_nu=drift_nu_code(0.06), drift_nu_dtod=dtod_code("nu dtod", 0.02))
    tw = chip(**s)
    before = tw.weights.copy()
    tw.advance(dt)
    assert tw.time == dt and tw.ages == [dt] * ODD.tiles
    for t in range(ODD.tiles):
        nu = spec_nu(ODD, 0xC0FFEE, t, tw.settings)
        assert np.array_equal(nu, tw.device_nu(t))
        ratio = max(spec.T0_MS, dt) / spec.T0_MS
        expect = before[t] * ratio ** (-nu / 2**16)
        assert bound_ok(tw.weights[t], expect, before[t])
        if dt <= spec.T0_MS:  # no drift within t0 of programming
            assert np.array_equal(tw.weights[t], before[t])


def test_consecutive_advances_compose_and_program_restarts_the_age():
    s = dict(drift_nu=drift_nu_code(0.1), drift_nu_dtod=dtod_code("nu dtod", 0.03))
    a, b = chip(**s), chip(**s)
    before = a.weights.copy()
    a.advance(HOUR)
    a.advance(DAY)
    b.advance(HOUR + DAY)
    for t in range(ODD.tiles):
        nu = a.device_nu(t) / 2**16
        expect = before[t] * ((HOUR + DAY) / spec.T0_MS) ** -nu
        assert bound_ok(a.weights[t], expect, before[t])
        assert np.all(np.abs(a.weights[t] - b.weights[t]) <= np.abs(before[t]) / 2048 + 2)
    w = a.read(1)
    a.program(1, w)
    assert a.ages == [HOUR + DAY, 0, HOUR + DAY]
    a.advance(10_000)  # tile 1 is 10 s old: within t0, unchanged
    assert np.array_equal(a.read(1), w)


@pytest.mark.parametrize("dt", [1, 100, 5000, 60_000])
def test_decay_against_the_exponential(dt):
    s = dict(decay_rate=decay_rate_code(10.0), decay_dtod=dtod_code("lifetime dtod", 0.2))
    tw = chip(**s)
    before = tw.weights.copy()
    tw.advance(dt)
    for t in range(ODD.tiles):
        rate = spec_rate(ODD, 0xC0FFEE, t, tw.settings) / 2**48
        expect = before[t] * np.exp(-dt * rate)
        assert bound_ok(tw.weights[t], expect, before[t])
        assert np.all(np.abs(tw.weights[t]) <= np.abs(before[t]))


def test_drift_and_decay_off_or_zero_step_change_nothing():
    tw = chip(decay_rate=decay_rate_code(1.0), drift_nu=drift_nu_code(0.08))
    before = tw.weights.copy()
    assert tw.advance(0) == 0
    assert np.array_equal(tw.weights, before)
    tw.set(decay_rate=0, drift_nu=0)
    tw.advance(30 * DAY)
    assert np.array_equal(tw.weights, before) and tw.time == 30 * DAY


@pytest.mark.parametrize("temp", [300, 350, 400])
def test_temperature_tables_against_the_formulas(temp):
    tab = {k: int(v[temp - 200]) for k, v in physics.temperature_tables().items()}
    k_b = 8.617333262e-5
    accel = math.exp(1.0 / k_b * (1 / 300 - 1 / temp))
    cg = 1 + 0.002 * (temp - 300)
    floats = {"ACCEL": (accel, 16), "CG": (cg, 12), "CS": (1 + 0.001 * (temp - 300), 12),
              "CN": (math.sqrt(temp / 300 * cg), 12)}
    for name, (value, frac) in floats.items():
        assert abs(tab[name] / 2**frac - value) <= 2 ** -(frac + 1), name
    if temp == 300:
        assert tab == {"ACCEL": 2**16, "CG": 4096, "CS": 4096, "CN": 4096}
    assert tab == spec.temperature_codes(temp)


def test_temperature_scales_the_gain_the_noise_and_the_step():
    s = Settings.default(ODD)
    assert physics.scaled_gain(s.fwd_gain, 300) == s.fwd_gain
    g400 = physics.scaled_gain(s.fwd_gain, 400)
    assert abs(g400 / s.fwd_gain - 1.2) < 1e-4
    assert abs(physics.scaled_sigma(s.fwd_sigma, 400) / s.fwd_sigma - 1.2649) < 2e-3
    # the linear step at 400 K: b = rnd(s * CS, 12), against s * 1.1 within 1/2 LSB + the code
    tw = Twin(ODD, s.replace(ODD, dw_std=0, temperature=400))
    tw.pulse(0, "row", 0, np.full(ODD.cols, 10))
    assert np.all(np.abs(tw.read(0)[:, 0] - 10 * 16 * 1.1) <= 10 * 0.5)
    # reads at 400 K: the conductance factor 1.2 on the noiseless ADC value, within one code
    rd = Twin(ODD, s.replace(ODD, fwd_sigma=0, temperature=400))
    rng = np.random.default_rng(9)
    w = rng.integers(-3000, 3001, size=(ODD.cols, ODD.rows))
    rd.program(0, w)
    x = rng.integers(-63, 64, size=(40, ODD.rows))
    y, _ = rd.forward(0, x)
    ideal = (x @ w.T) * s.fwd_gain / 2.0**s.fwd_shift * 1.2
    m = 2 ** (s.out_bits - 1) - 1
    assert np.all(np.abs(y - np.clip(ideal, -m, m)) <= 1)
    assert np.abs(y).sum() > 1.1 * np.abs(np.clip(ideal / 1.2, -m, m)).sum()
    # an ADVANCE at 400 K ages the tiles by dt * A(400)
    tw.advance(1000)
    assert abs(tw.ages[0] / 1000 / physics.temperature_factors(400)["accel"] - 1) < 1e-4


@pytest.mark.parametrize("case", range(8))
def test_twin_equals_spec_with_time_and_temperature(case):
    rng = np.random.default_rng(4000 + case)
    cfg = ChipConfig(tiles=2, rows=int(rng.integers(1, 8)), cols=int(rng.integers(1, 8)),
                     lanes=1, name="rand")
    model = [DeviceModel(), DeviceModel.soft_bounds(w_max=0.3, w_min=-0.2, dw_min=0.01),
             DeviceModel(model="PowStep", dw_min=0.02, pow_gamma=1.7, pow_up_down=-0.3)][case % 3]
    s = Settings.default(cfg).replace(
        cfg, temperature=int(rng.choice([200, 299, 300, 350, 400, 450])),
        drift_nu=int(rng.integers(0, 12000)), drift_nu_dtod=int(rng.integers(0, 5000)),
        decay_rate=int(rng.integers(0, 2**38)), decay_dtod=int(rng.integers(0, 30000)),
        seed=int(rng.integers(0, 2**32)), fwd_sigma=int(rng.integers(0, 5000)))
    dmap = fabricate(cfg, model, seed=case)
    shape = step_shape(model)
    tw = Twin(cfg, s, dmap, step_shape=shape)
    ref = spec.SpecChip(cfg, s, dmap, shape if model.is_table else None)
    key = int(rng.integers(0, 2**32))
    tw.load_device_key(key)
    ref.device_key = key
    for t in range(cfg.tiles):
        w = rng.integers(-12000, 12000, size=(cfg.cols, cfg.rows))
        tw.program(t, w)
        ref.program(t, w)
    for _ in range(5):
        t = int(rng.integers(0, cfg.tiles))
        op = rng.choice(["fwd", "upd", "adv"])
        if op == "fwd":
            x = rng.integers(-cfg.in_max, cfg.in_max + 1, size=(1, cfg.rows))
            y, sat = tw.forward(t, x)
            assert (y[0].tolist(), int(sat[0])) == ref.forward(t, x[0].tolist())
        elif op == "upd":
            x = rng.integers(-cfg.p_max, cfg.p_max + 1, size=(1, cfg.rows))
            d = rng.integers(-cfg.p_max, cfg.p_max + 1, size=(1, cfg.cols))
            tw.update(t, x, d)
            ref.update(t, x[0].tolist(), d[0].tolist())
        else:
            dt = int(rng.choice([0, 1, 999, HOUR, 30 * DAY]))
            assert tw.advance(dt) == ref.advance(dt)
        assert tw.weights.tolist() == ref.w
        assert tw.ages == ref.ages


def test_device_exponent_statistics():
    """ν_dev over 4 x 64 x 64 devices (device key 12345): mean 0.06 and spread 0.02 within
    0.0008 (5 standard errors) and 3 % (about 5 standard errors of a standard deviation)."""
    cfg = ChipConfig(tiles=4, rows=64, cols=64, lanes=1, name="stats")
    tw = Twin(cfg)
    tw.load_device_key(12345)
    tw.set(drift_nu=drift_nu_code(0.06), drift_nu_dtod=dtod_code("nu dtod", 0.02),
           decay_rate=decay_rate_code(100.0), decay_dtod=dtod_code("lifetime dtod", 0.1))
    nu = np.concatenate([tw.device_nu(t).ravel() for t in range(cfg.tiles)]) / 2**16
    assert abs(nu.mean() - 0.06) < 0.0008
    assert abs(nu.std() / 0.02 - 1) < 0.03
    rate = np.concatenate([tw.device_rate(t).ravel() for t in range(cfg.tiles)]).astype(float)
    rel = rate / tw.settings.decay_rate
    assert abs(rel.mean() - 1) < 0.004 and abs(rel.std() / 0.1 - 1) < 0.03
    assert abs(dtod_code("x", 0.02) * GAUSS_STD / 2**24 - 0.02) < 1e-5
    # another key, other devices; the same key after RESET, the same devices
    other = Twin(cfg, tw.settings)
    assert not np.array_equal(other.device_nu(0), tw.device_nu(0))
    before = tw.device_nu(0)
    tw.reset(tw.settings)
    assert tw.device_key == 12345 and np.array_equal(tw.device_nu(0), before)


def test_reset_restarts_time_and_ages():
    tw = chip(drift_nu=drift_nu_code(0.05))
    tw.advance(DAY)
    tw.reset()
    assert tw.time == 0 and tw.ages == [0] * ODD.tiles and tw.settings.drift_nu == 0


@pytest.mark.parametrize("change, message", [
    (dict(temperature=0), "temperature must be an integer number of kelvin in \\[200, 450\\]"),
    (dict(temperature=-5), "temperature"),
    (dict(temperature=451), "temperature"),
    (dict(temperature=300.0), "temperature"),
    (dict(drift_nu=-1), "drift_nu must be in"),
    (dict(drift_nu_dtod=2**16), "drift_nu_dtod must be in"),
    (dict(decay_rate=2**48), "decay_rate must be in"),
    (dict(decay_dtod=-3), "decay_dtod must be in"),
])
def test_bad_settings_refused(change, message):
    tw = Twin(ODD)
    with pytest.raises(ValueError, match=message):
        tw.set(**change)
    assert tw.settings == Settings.default(ODD)


def test_bad_values_refused():
    with pytest.raises(ValueError, match="lifetime must be a finite number of seconds >= 0"):
        decay_rate_code(-1.0)
    with pytest.raises(ValueError, match="lifetime must be 0 .* or between"):
        decay_rate_code(1e-4)
    with pytest.raises(ValueError, match="lifetime must be a number"):
        decay_rate_code("long")
    assert decay_rate_code(0) == 0
    with pytest.raises(ValueError, match="drift_nu_mean"):
        drift_nu_code(-0.05)
    with pytest.raises(ValueError, match="nu dtod"):
        dtod_code("nu dtod", float("nan"))
    tw = chip()
    before = tw.weights.copy()
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="ADVANCE's step must be an integer number of ms"):
            tw.advance(bad)
    with pytest.raises(ValueError, match="device key"):
        tw.load_device_key(2**32)
    tw.time = 2**64 - 10
    with pytest.raises(ValueError, match="beyond the chip's 64-bit time"):
        tw.advance(100)
    assert tw.time == 2**64 - 10 and np.array_equal(tw.weights, before)
