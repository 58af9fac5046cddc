"""Statistical properties of the twin; each states its seed and tolerance."""

import numpy as np
from ohmflow.emulator import reference
from ohmflow.emulator.config import GAUSS_STD, ChipConfig, DeviceModel, dw_std_code
from ohmflow.emulator.fabrication import fabricate, nominal
from ohmflow.emulator.twin import Twin

CFG = ChipConfig(tiles=1, rows=16, cols=16, lanes=1, name="stat")


def test_gauss_moments_over_all_bytes():
    # Exhaustive in each byte's marginal: mean 0 and sigma sqrt(21845) by construction; here
    # 2**20 consecutive words of one key (seed 0) must show it within 0.5 % (>10 sigma margin).
    from ohmflow.emulator import prng

    g = prng.gauss(prng.draw(prng.op_key(0, 1, 0), np.arange(2**20)))
    assert abs(g.mean()) < 0.01 * GAUSS_STD
    assert abs(g.std() / GAUSS_STD - 1) < 0.005
    assert g.min() >= -510 and g.max() <= 510


def test_read_noise_mean_and_sigma():
    # seed 3; 500 vectors x 16 outputs = 8000 samples of sigma 5 LSB around zero input.
    # Standard errors: mean 0.056, sigma 0.04 -> tolerances 0.25 and 0.2 (~5 standard errors).
    tw = Twin(CFG)
    sigma_lsb = 5.0
    tw.set(seed=3, fwd_sigma=round(sigma_lsb * 2**16 / GAUSS_STD))
    y, _ = tw.forward(0, np.zeros((500, 16), dtype=int))
    expected_sd = np.sqrt(sigma_lsb**2 + 1 / 12)  # plus the ADC's rounding
    assert abs(y.mean()) < 0.25
    assert abs(y.std() - expected_sd) < 0.2


def test_read_noise_is_centered_on_the_ideal_mvm():
    # seed 4; random weights and inputs; the mean over 400 repeats of each output is within
    # 0.3 LSB of the float reference (noise sigma 1.27 LSB / sqrt(400) = 0.064; rounding bias 0).
    rng = np.random.default_rng(4)
    tw = Twin(CFG)
    tw.set(seed=4)
    w = rng.integers(-9000, 9000, (16, 16))
    tw.program(0, w)
    x = rng.integers(-63, 64, (1, 16))
    y, _ = tw.forward(0, np.repeat(x, 400, axis=0))
    ideal = reference.forward_ideal(tw.settings, w, x)[0]
    inside = np.abs(ideal) < 250
    assert np.all(np.abs(y.mean(axis=0) - ideal)[inside] < 0.3)


def test_coincidence_counts_match_probabilities():
    # seed 5; 3000 samples; E[n] = BL p q; tolerance 5 standard errors of the mean (256 devices
    # tested at once: a false alarm has probability ~1e-4).
    tw = Twin(CFG)
    tw.set(seed=5, bl=31)
    rng = np.random.default_rng(5)
    p = rng.integers(-256, 257, 16)
    q = rng.integers(-256, 257, 16)
    tw.set(dw_std=0)
    n = np.zeros((16, 16))
    n2 = np.zeros((16, 16))
    for _ in range(30):
        tw.program(0, np.zeros((16, 16), dtype=int))
        c = tw.update(0, np.tile(p, (100, 1)), np.tile(q, (100, 1)))
        n += c.sum(axis=0)
        n2 += (c.astype(float) ** 2).sum(axis=0)
    mean = n / 3000
    se = np.sqrt(np.maximum(n2 / 3000 - mean**2, 1e-9) / 3000)
    expect = reference.expected_coincidences(CFG, 31, p, q)
    assert np.all(np.abs(mean - expect) <= 5 * se + 1e-9)


def test_constant_step_mean_update_is_minus_lr_d_x():
    # seed 6; nominal ConstantStep devices (dw_min 0.001 -> su = sd = 16 LSB), dw_min_std 0.3.
    # 4000 single-sample updates from state 0; the mean change must equal -lr d x^T within
    # 3 % of max|lr d x| (code rounding of probabilities) + 4 standard errors.
    cfg = CFG
    tw = Twin(cfg, device_map=nominal(cfg))
    tw.set(seed=6, dw_std=dw_std_code(0.3))
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, 16)
    d = rng.uniform(-0.1, 0.1, 16)
    lr = 0.1
    step = 16 / 2**cfg.w_frac  # the devices' actual step in weight units
    p, q = reference.update_codes(cfg, 31, x, d, lr, step)
    samples = 4000
    tw.program(0, np.zeros((16, 16), dtype=int))
    acc = np.zeros((16, 16))
    acc2 = np.zeros((16, 16))
    for _ in range(samples // 20):  # re-zero often enough never to reach a bound (0.6)
        for _ in range(20):
            before = tw.read(0)
            tw.update(0, p, q)
            delta = (tw.read(0) - before) / 2**cfg.w_frac
            acc += delta
            acc2 += delta**2
        tw.program(0, np.zeros((16, 16), dtype=int))
    mean = acc / samples
    se = np.sqrt(np.maximum(acc2 / samples - mean**2, 0) / samples)
    target = -lr * np.outer(d, x)
    assert np.all(np.abs(mean - target) <= 0.03 * np.abs(target).max() + 4 * se)


def test_c2c_noise_has_the_configured_spread():
    # seed 8; deterministic pulses of n = 9 on a row, 600 repeats on 16 devices (9600 draws);
    # spread of the total must be dw_min_std * step * sqrt(n) within 5 %.
    tw = Twin(CFG, device_map=nominal(CFG))
    tw.set(seed=8, dw_std=dw_std_code(0.3))
    totals = []
    for _ in range(600):
        tw.program(0, np.zeros((16, 16), dtype=int))
        tw.pulse(0, "row", 3, np.full(16, 9))
        totals.append(tw.read(0)[:, 3])
    t = np.concatenate(totals).astype(float)
    assert abs(t.mean() - 9 * 16) < 0.5
    assert abs(t.std() / (0.3 * 16 * 3) - 1) < 0.05


def test_soft_bounds_saturate_at_each_devices_bounds():
    # seed 9; SoftBounds with d2d variation; 400 samples of full-probability pulses (12400 pulses)
    # drive every device to its own bound, never beyond. A device stops where its integer step
    # su * distance / bound rounds to 0, so the distance left is at most bound / (2 su) + 1.
    model = DeviceModel.soft_bounds(dw_min=0.01)
    dmap = fabricate(CFG, model, seed=9)
    tw = Twin(CFG, device_map=dmap)
    tw.set(seed=9, bl=31)
    up_x = np.full((400, 16), 256)
    tw.update(0, up_x, np.full((400, 16), -256))
    w = tw.read(0)
    wmax, wmin = dmap.wmax[0], dmap.wmin[0]
    assert np.all(w <= wmax)
    assert np.all(wmax - w <= wmax / (2 * dmap.su[0]) + 1)
    assert (wmax - w).mean() < 0.05 * wmax.mean()
    tw.update(0, up_x, np.full((400, 16), 256))
    w = tw.read(0)
    assert np.all(w >= wmin)
    assert np.all(w - wmin <= -wmin / (2 * dmap.sd[0]) + 1)


def test_fabricated_d2d_spread_matches_config():
    # fabrication seed 10; default chip 4 x 64 x 64 = 16384 devices; relative spread of the step
    # (dw_min_dtod 0.3) and of the bounds (w_max_dtod, w_min_dtod 0.3) within 0.015 (~5 se),
    # plus the step codes' rounding (1/sqrt(12) LSB of 16).
    cfg = ChipConfig()
    dm = fabricate(cfg, DeviceModel(), seed=10)
    su = dm.su.astype(float)
    rel_step = np.sqrt(max(su.var() - 1 / 12, 0)) / 16.384
    assert abs(rel_step - 0.3) < 0.015
    assert abs(su.mean() - 16.384) < 0.15
    assert abs(dm.wmax.std() / dm.wmax.mean() - 0.3) < 0.015
    assert abs(dm.wmin.std() / -dm.wmin.mean() - 0.3) < 0.015
    up_down = (dm.su - dm.sd).astype(float)  # up_down_dtod 0.01 -> 2 * 0.01 * 16.4 = 0.33 LSB
    assert abs(up_down.mean()) < 0.05
