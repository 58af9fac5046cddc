"""AnalogLinear against float references: managed reads, bound management, update management."""

import math

import numpy as np
import pytest
from ohmflow.emulator.config import DeviceModel
from ohmflow.emulator.fabrication import nominal
from ohmflow.host.device import TwinDevice
from ohmflow.host.layers import AnalogLinear, IOParams, UpdateParams
from ohmflow.host.mapping import MappingParameter

OUT_BOUND, OUT_MAX, IN_MAX = 12.0, 255, 63  # Settings.default: aihwkit's out_bound, 9/7 bits


def quiet_device(config="default"):
    """A twin with nominal devices (no device-to-device variation) and no read noise."""
    dev = TwinDevice(config)
    dev.load_device_map(nominal(dev.config, DeviceModel()))
    dev.configure(fwd_sigma=0, bwd_sigma=0)
    return dev


def read_tolerance(w, x):
    """Worst-case |error| of one managed read: DAC rounding, ADC rounding, gain quantization."""
    s = np.abs(x).max(axis=1, keepdims=True)
    dac = 0.5 / IN_MAX * np.abs(w).sum(axis=1)[None, :]
    adc = 0.5 * OUT_BOUND / OUT_MAX
    return s * (dac + adc * 1.001) + 1e-3 * np.abs(x @ w.T)


def test_forward_and_backward_match_float_within_quantization():
    rng = np.random.default_rng(1)
    dev = quiet_device()
    layer = AnalogLinear(dev, 40, 24)
    layer.set_weights(rng.uniform(-0.3, 0.3, (24, 40)), rng.normal(size=24))
    w = layer.weights()  # the states the device holds, in float units
    x = rng.normal(size=(50, 40)) * rng.uniform(0.01, 3, size=(50, 1))
    ref = x @ w.T + layer.bias
    err = np.abs(layer.forward(x) - ref)
    assert (err <= read_tolerance(w, x)).all()
    assert err.max() > 0  # the reads are quantized, not a float shortcut
    d = rng.normal(size=(50, 24))
    err_b = np.abs(layer.backward(d) - d @ w)
    assert (err_b <= read_tolerance(w.T, d)).all()


def test_weights_are_programmed_as_rounded_states():
    dev = quiet_device()
    layer = AnalogLinear(dev, 5, 3)
    w = np.array([[0.1, -0.2, 0.3, 0.0, 0.59], [1.0, -1.0, 0.25, 1e-5, -0.0001],
                  [0.5, 0.5, 0.5, 0.5, 0.5]])
    layer.set_weights(w)
    unit = 2**dev.config.w_frac
    expect = np.clip(np.rint(w * unit), -0.6 * unit, 0.6 * unit)  # nominal bounds +-0.6
    assert np.array_equal(layer.states(), np.rint(expect).astype(np.int64))


def test_noise_management_makes_reads_scale_free():
    rng = np.random.default_rng(2)
    dev = quiet_device()
    layer = AnalogLinear(dev, 16, 8)
    layer.set_weights(rng.uniform(-0.5, 0.5, (8, 16)))
    x = rng.normal(size=(10, 16))
    y1 = layer.forward(x)
    y2 = layer.forward(x * 1e-4)
    np.testing.assert_allclose(y2, y1 * 1e-4, rtol=1e-12, atol=1e-18)
    assert np.abs(y1).max() > 0.5
    plain = AnalogLinear(dev, 16, 8, io=IOParams(noise_management=False))
    assert np.abs(plain.forward(x * 1e-4)).max() == 0  # without NM the DAC rounds it away


def test_read_noise_matches_aihwkit_out_noise():
    """Error std of a read is sqrt(out_noise^2 + ADC LSB^2 / 12) in units of max|x|."""
    rng = np.random.default_rng(3)
    dev = TwinDevice()
    dev.load_device_map(nominal(dev.config, DeviceModel()))
    layer = AnalogLinear(dev, 32, 32)
    layer.set_weights(rng.uniform(-0.2, 0.2, (32, 32)))
    w = layer.weights()
    codes = rng.integers(-IN_MAX, IN_MAX + 1, size=(400, 32))
    codes[:, 0] = IN_MAX  # max |x| is exactly the full-scale code: no DAC rounding
    x = codes / IN_MAX * 2.5
    err = (layer.forward(x) - x @ w.T) / 2.5
    expect = math.sqrt(0.06**2 + (OUT_BOUND / OUT_MAX) ** 2 / 12)
    assert abs(err.std() / expect - 1) < 0.05
    assert abs(err.mean()) < 4 * expect / math.sqrt(err.size)


@pytest.mark.parametrize("bm", [True, False])
def test_bound_management_rereads_saturated_vectors(bm):
    dev = quiet_device()
    layer = AnalogLinear(dev, 64, 4, io=IOParams(bound_management=bm, max_bm_rounds=4))
    layer.set_weights(np.full((4, 64), 0.5))
    x = np.zeros((4, 64))
    x[0] = 1.0  # y = 32: beyond out_bound 12, fits after two halvings (8)
    x[1, :8] = 1.0  # y = 4: no saturation
    x[2] = -1.0
    x[3, :20] = 0.5  # y = 5
    before = dev.counters()[0]["fwd_vectors"]
    y = layer.forward(x)
    calls = dev.counters()[0]["fwd_vectors"] - before
    ref = x @ layer.weights().T
    if bm:
        assert calls == 4 + 2 + 2  # two saturated vectors, each re-read twice
        # a re-read at 1/4 of the input scale has 4x the quantization error
        assert (np.abs(y - ref) <= 4 * read_tolerance(layer.weights(), x)).all()
        assert np.abs(y[[0, 2]]).min() > 30
    else:
        assert calls == 4
        np.testing.assert_allclose(y[[0, 2]], [[OUT_BOUND] * 4, [-OUT_BOUND] * 4], rtol=1e-4)
        np.testing.assert_allclose(y[[1, 3]], ref[[1, 3]], atol=OUT_BOUND / OUT_MAX)


def test_bound_management_gives_up_after_max_rounds():
    dev = quiet_device()
    layer = AnalogLinear(dev, 64, 1, io=IOParams(max_bm_rounds=2))
    layer.set_weights(np.full((1, 64), 0.59))
    before = dev.counters()[0]["fwd_vectors"]
    y = layer.forward(np.ones((1, 64)))  # y = 37.8: would need 2 halvings to reach 9.4 < 12
    assert dev.counters()[0]["fwd_vectors"] - before == 3
    ref = 64 * layer.weights()[0, 0]
    assert abs(y[0, 0] - ref) <= 4 * read_tolerance(layer.weights(), np.ones((1, 64)))[0, 0]


def mean_update(dev, layer, x, d, lr, calls, batch, seed):
    """Mean dW per sample over calls * batch draws, and its standard error per element."""
    rng = np.random.default_rng(seed)
    xs = np.repeat(x[None], batch, axis=0)
    ds = np.repeat(d[None], batch, axis=0)
    means = []
    for _ in range(calls):
        layer.set_weights(np.zeros((layer.n_out, layer.n_in)))
        layer.update(xs, ds, lr, rng)
        means.append(layer.weights() / batch)
    means = np.array(means)
    return means.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(calls)


@pytest.mark.parametrize("dw_std", [0.0, 0.3])
def test_update_management_mean_is_minus_lr_d_x(dw_std):
    """E[dW] = -lr d x^T: 20 x 150 draws, seed 5; every element within 4.5 standard errors and
    the whole matrix within 2 % (relative Frobenius norm)."""
    from ohmflow.emulator.config import dw_std_code

    dev = quiet_device()
    dev.configure(dw_std=dw_std_code(dw_std))
    layer = AnalogLinear(dev, 8, 6)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, 8)
    d = rng.uniform(-0.05, 0.05, 6)
    d[2] = 0.0  # a zero gradient moves nothing
    lr = 0.1
    mean, se = mean_update(dev, layer, x, d, lr, calls=20, batch=150, seed=5)
    ref = -lr * np.outer(d, x)
    assert np.all(mean[2] == 0)
    live = np.abs(ref) > 0
    assert np.all(np.abs(mean - ref)[live] <= 4.5 * se[live] + 1e-12)
    assert np.linalg.norm(mean - ref) / np.linalg.norm(ref) < 0.02


def test_update_uses_fewer_slots_for_small_updates():
    dev = quiet_device()
    layer = AnalogLinear(dev, 4, 3, update=UpdateParams(desired_bl=31))
    dw = 16 / 2**14  # nominal step
    x = np.array([[1.0, -0.5, 0.25, 0.0]])
    d = np.array([[0.01, -0.02, 0.005]])
    rng = np.random.default_rng(0)
    layer.update(x, d, 0.1, rng)
    assert dev.settings().bl == math.ceil(0.1 * 1.0 * 0.02 / dw)  # aihwkit's update_bl_management
    layer.update(x, d * 100, 0.1, rng)
    assert dev.settings().bl == 31
    xc, dc, bl = layer.tiles[0].update_codes(x, d * 100, 0.1, rng)
    p_max = dev.config.p_max
    assert np.abs(xc).max() == p_max and np.abs(dc).max() == p_max  # clipped to probability 1
    assert np.array_equal(np.sign(xc), np.sign(x)) and np.array_equal(np.sign(dc), np.sign(d))


def test_update_moves_weights_against_the_gradient_sign():
    dev = quiet_device()
    layer = AnalogLinear(dev, 2, 2)
    x = np.tile([[1.0, -1.0]], (64, 1))
    d = np.tile([[0.05, -0.05]], (64, 1))
    layer.update(x, d, 0.1, np.random.default_rng(0))
    w = layer.weights()
    assert np.array_equal(np.sign(w), -np.sign(np.outer(d[0], x[0])))


def test_layer_refuses_what_the_chips_cannot_hold():
    dev = TwinDevice("tiny")  # 2 tiles of 5 rows x 7 cols
    with pytest.raises(ValueError, match=r"needs 3 tiles of 5x7 .* use --chips 2"):
        AnalogLinear(dev, 11, 7)  # 3 input blocks (4, 4, 3)
    with pytest.raises(ValueError, match="max_output_size 8 exceeds"):
        AnalogLinear(dev, 5, 7, mapping=MappingParameter(max_output_size=8))
    layer = AnalogLinear(dev, 6, 7)  # two blocks of 3 inputs
    with pytest.raises(ValueError, match=r"x must be \(batch, 6\)"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        layer.forward(np.full((2, 6), np.nan))


def managed_read_reference(dev, tile, op, x, lsb, in_max, rounds):
    """The managed read step by step (noise management, DAC codes, iterative bound management),
    every round on the vectors still saturated, written out independently of AnalogTile."""
    scale = np.abs(x).max(axis=1)
    inv = np.array([1.0 / s if s > 0 else 0.0 for s in scale])
    factor = np.ones(len(x))
    out = np.zeros((len(x), 0))
    todo = list(range(len(x)))
    for r in range(rounds + 1):
        xs = x[todo] * (inv[todo] / factor[todo])[:, None]
        codes = np.rint(np.clip(xs, -1.0, 1.0) * in_max).astype(np.int64)
        y, sat = op(tile, codes)
        y = y * (lsb * scale[todo] * factor[todo])[:, None]
        if r == 0:
            out = y
        else:
            out[todo] = y
        redo = [k for k, s in zip(todo, sat, strict=True) if s > 0]
        if r == rounds or not redo:
            break
        todo = redo
        factor[todo] *= 2.0
    return out


@pytest.mark.parametrize("rounds", [0, 1, 4])
def test_managed_reads_equal_the_step_by_step_reference_bit_for_bit(rounds):
    """Noisy reads of a layer with large weights: vectors saturate for 0 to 4 halvings (and an
    all-zero vector), forward and backward; the layer's outputs equal the reference's exactly
    on a second twin in the same state (same nonces)."""
    rng = np.random.default_rng(11)
    devs = []
    for _ in range(2):
        d = TwinDevice("default")
        d.configure(seed=5)
        devs.append(d)
    layer = AnalogLinear(devs[0], 64, 16, io=IOParams(max_bm_rounds=rounds))
    w = rng.uniform(-0.6, 0.6, size=(16, 64))
    layer.set_weights(w)
    devs[1].configure(shapes=devs[0].settings().shapes)
    devs[1].program(0, devs[0].read(0))
    t = layer.tiles[0]
    x = rng.normal(size=(12, 64)) * rng.uniform(0.01, 1.0, size=(12, 1))
    x[3] = 0.0
    x[5] = np.sign(w[0])  # y_0 = sum |w_0| > out_bound: saturates for several rounds
    d = rng.normal(size=(9, 16)) * 8.0
    got_f, got_b = layer.forward(x) - layer.bias, layer.backward(d)
    want_f = managed_read_reference(devs[1], 0, devs[1].forward, x, t.fwd_lsb, t.in_max, rounds)
    want_b = managed_read_reference(devs[1], 0, devs[1].backward, d, t.bwd_lsb, t.in_max, rounds)
    assert np.array_equal(got_f, want_f) and np.array_equal(got_b, want_b)
    rereads = devs[0].counters()[0]["fwd_vectors"] - len(x)
    assert rereads > 0 if rounds else rereads == 0
    assert devs[0].twin.nonce == devs[1].twin.nonce
    assert devs[0].counters() == devs[1].counters()  # the fused first pass counts as forward


def test_fused_update_equals_the_update_of_the_live_samples():
    """managed_update on a twin changes states, nonce and counters as update(xc[live], dc[live])
    on a second twin in the same state (samples 1 and 4 have no pulse on one side)."""
    rng = np.random.default_rng(3)
    devs = [TwinDevice("default") for _ in range(2)]
    for dev in devs:
        dev.configure(shapes=((24, 10),) + dev.settings().shapes[1:], bl=9, seed=4)
        dev.program(0, rng.integers(-300, 300, size=(10, 24)) if dev is devs[0]
                    else devs[0].read(0))
    pm = devs[0].config.p_max
    xc = rng.integers(-pm, pm + 1, size=(6, 24))
    dc = rng.integers(-pm, pm + 1, size=(6, 10))
    xc[1] = 0
    dc[4] = 0
    live = np.ones(6, dtype=bool)
    live[[1, 4]] = False
    before = devs[0].read(0)
    devs[0].managed_update(0, xc, dc, live, 4)
    devs[1].update(0, xc[live], dc[live])
    assert np.array_equal(devs[0].read(0), devs[1].read(0))
    assert not np.array_equal(devs[0].read(0), before)  # the update pulsed
    assert devs[0].twin.nonce == devs[1].twin.nonce == 4
    assert devs[0].counters() == devs[1].counters()
    with pytest.raises(ValueError, match=r"shapes \(B, 24\) and \(B, 10\)"):
        devs[0].managed_update(0, xc[:, :5], dc, live, 4)


def test_fused_managed_read_refuses_a_block_of_the_wrong_width():
    dev = TwinDevice("default")
    layer = AnalogLinear(dev, 20, 8)
    with pytest.raises(ValueError, match=r"forward input must have shape \(batch >= 1, 20\)"):
        dev.managed_read(0, np.ones((3, 21)), False, True, layer.tiles[0].in_max, 1.0)
    with pytest.raises(ValueError, match=r"backward input must have shape \(batch >= 1, 8\)"):
        dev.managed_read(0, np.ones((0, 8)), True, True, layer.tiles[0].in_max, 1.0)
    assert dev.twin.nonce == 0 and dev.counters()[0]["fwd_vectors"] == 0


@pytest.mark.parametrize("chips", [1, 2])
def test_a_failing_block_stops_one_chip_and_lets_other_chips_finish(chips):
    """A layer of two blocks whose first block's read fails: on one chip the second block is not
    called (the chip's calls run in order up to the failure), on two twin chips it still runs
    (as on chips with a worker each), and the first failure is raised either way."""
    from ohmflow.host.chips import Chips
    from ohmflow.host.ledger import CostLedger

    chip_set = Chips([TwinDevice() for _ in range(chips)])
    layer = AnalogLinear(chip_set, 128, 10)
    assert len(layer.blocks) == 2 and chip_set.inline
    calls = []

    def broken(x):
        calls.append(0)
        raise RuntimeError("block 0 failed")

    real = layer.tiles[1].forward
    layer.tiles[0].forward = broken
    layer.tiles[1].forward = lambda x: calls.append(1) or real(x)
    ledger = CostLedger()
    with pytest.raises(RuntimeError, match="block 0 failed"):
        layer.forward(np.ones((2, 128)), ledger)
    assert calls == ([0] if chips == 1 else [0, 1])
    assert ("layer0.0.0", "forward") not in ledger.entries  # a failed call records nothing
    assert (("layer0.1.0", "forward") in ledger.entries) == (chips == 2)
