"""The compiled update management (host/periphery.py) against its numpy expressions, bit for bit."""

import math

import numpy as np
import pytest
from ohmflow.host.device import TwinDevice
from ohmflow.host.layers import AnalogLinear, UpdateParams


def update_codes_reference(x, d, lr, rng, g, bl_max, pm, bl_management, management):
    """AnalogTile.update_codes in numpy, one array expression per step."""
    reg = g * g
    xm = np.maximum(np.abs(x).max(axis=1), reg)
    dm = np.maximum(np.abs(d).max(axis=1), reg)
    if bl_management:
        bl = int(min(max(np.ceil(lr * xm * dm / g).max(), 1.0), bl_max))
    else:
        bl = bl_max
    a = math.sqrt(lr / (g * bl))
    if management:
        cx, cd = a * np.sqrt(dm / xm), a * np.sqrt(xm / dm)
    else:
        cx = cd = np.full(len(x), a)
    px = np.minimum(cx[:, None] * np.abs(x), 1.0) * pm
    pd = np.minimum(cd[:, None] * np.abs(d), 1.0) * pm
    xc = np.sign(x).astype(np.int64) * np.floor(px + rng.random(px.shape)).astype(np.int64)
    dc = np.sign(d).astype(np.int64) * np.floor(pd + rng.random(pd.shape)).astype(np.int64)
    return xc, dc, bl


@pytest.mark.parametrize("bl_management, management", [(True, True), (False, True),
                                                        (True, False), (False, False)])
def test_update_codes_equal_the_numpy_reference(bl_management, management):
    """Random batches with zero rows, signed zeros, tiny and large values (probabilities that
    clip at 1), on a sliced (non-contiguous) input as the mapped layers pass: the codes, BL and
    the generator's state after the call are the reference's exactly."""
    dev = TwinDevice()
    layer = AnalogLinear(dev, 64, 32, update=UpdateParams(
        update_bl_management=bl_management, update_management=management))
    tile = layer.tiles[0]
    data = np.random.default_rng(4)
    reached = 0
    for case in range(20):
        wide = data.normal(size=(9, 80)) * 10.0 ** data.uniform(-4, 1, size=(9, 1))
        x = wide[:, 3:67]  # a view, as x[:, block.inputs]
        d = data.normal(size=(9, 32)) * 10.0 ** data.uniform(-5, 0, size=(9, 1))
        x[2] = 0.0
        d[4] = -0.0
        x[5, ::2] = -0.0
        lr = float(10.0 ** data.uniform(-3, 0.5))
        if case % 4 == 0:
            d[1] *= 1e4  # far beyond the others: its probabilities clip at 1
        rng, ref_rng = np.random.default_rng(case), np.random.default_rng(case)
        got = tile.update_codes(x, d, lr, rng)
        want = update_codes_reference(x, d, lr, ref_rng, tile.dw_min, tile.bl_max,
                                      dev.config.p_max, bl_management, management)
        assert got[2] == want[2]
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert rng.random() == ref_rng.random()
        reached = max(reached, int(np.abs(got[0]).max()), int(np.abs(got[1]).max()))
    assert reached == dev.config.p_max  # some probability clipped at 1


def test_dac_codes_and_row_abs_max_equal_their_numpy_expressions():
    """Scaled, clipped and rounded DAC codes (halves to even, signed zeros, values beyond the
    range) and row abs-maxima of random rows, of a sliced view and of an all-zero row."""
    from ohmflow.host import periphery

    rng = np.random.default_rng(9)
    wide = rng.normal(size=(7, 40)) * 3.0
    x = wide[:, 5:37]
    x[0] = 0.0
    x[1, :8] = [0.25, 0.75, -0.25, -0.75, 1.25, -0.0, 0.5, -1.5]  # x 2: halves and a clip
    scale = np.array([0.0, 1.0, *rng.uniform(0.01, 2.0, size=5)])
    for in_max in (2, 63, 127):
        want = np.rint(np.clip(x * scale[:, None], -1.0, 1.0) * in_max).astype(np.int64)
        np.testing.assert_array_equal(periphery.dac_codes(x, scale, in_max), want)
    assert periphery.dac_codes(x, scale, 2)[1, :8].tolist() == [0, 2, 0, -2, 2, 0, 1, -2]
    for floor in (0.0, 0.5):
        want = np.maximum(np.abs(x).max(axis=1), floor)
        np.testing.assert_array_equal(periphery.row_abs_max(x, floor), want)


@pytest.mark.parametrize("noise_management", [True, False])
def test_managed_read_codes_and_output_scaling_equal_their_numpy_expressions(noise_management):
    """The read periphery of AnalogTile._read (abs-max scale, its inverse with 0 for an all-zero
    row, DAC codes; ADC codes times lsb and scale) against the numpy expressions it replaced,
    on a sliced view with signed zeros and an all-zero row."""
    from ohmflow.host import periphery

    rng = np.random.default_rng(11)
    wide = rng.normal(size=(6, 50)) * 10.0 ** rng.uniform(-3, 1, size=(6, 1))
    x = wide[:, 4:36]
    x[2] = 0.0
    x[3, ::3] = -0.0
    codes, scale, inv = periphery.managed_dac_codes(x, noise_management, 63)
    want_scale = np.abs(x).max(axis=1) if noise_management else np.ones(len(x))
    want_inv = np.divide(1.0, want_scale, out=np.zeros_like(want_scale),
                         where=want_scale > 0)
    np.testing.assert_array_equal(scale, want_scale)
    np.testing.assert_array_equal(inv, want_inv)
    np.testing.assert_array_equal(codes, np.rint(np.clip(x * want_inv[:, None], -1.0, 1.0)
                                                 * 63).astype(np.int64))
    y = rng.integers(-255, 256, size=(6, 10))
    lsb = float(rng.uniform(0.001, 0.1))
    np.testing.assert_array_equal(periphery.scale_rows(y, lsb, scale),
                                  y * (lsb * want_scale)[:, None])


def test_live_samples_equal_their_numpy_expression():
    """Samples with a nonzero code on both sides, and their count, for random sparse codes."""
    from ohmflow.host import periphery

    rng = np.random.default_rng(12)
    for _ in range(20):
        xc = rng.integers(-2, 3, size=(16, 8)) * (rng.random((16, 8)) < 0.1)
        dc = rng.integers(-2, 3, size=(16, 5)) * (rng.random((16, 5)) < 0.2)
        live, n = periphery.live_samples(xc, dc)
        want = (xc != 0).any(axis=1) & (dc != 0).any(axis=1)
        np.testing.assert_array_equal(live, want)
        assert n == int(want.sum())


def test_an_update_of_an_empty_batch_is_refused():
    dev = TwinDevice()
    tile = AnalogLinear(dev, 64, 32).tiles[0]
    with pytest.raises(ValueError, match="at least one sample"):
        tile.update_codes(np.zeros((0, 64)), np.zeros((0, 32)), 0.1, np.random.default_rng(0))


def test_plus_bias_equals_the_sum_over_blocks():
    """One block's output plus bias is the zeros-plus-part-plus-bias of the blocks' sum,
    signed zeros included (0 + -0 is +0)."""
    from ohmflow.host import periphery

    rng = np.random.default_rng(13)
    part = rng.normal(size=(5, 7))
    part[0, :3] = -0.0
    bias = rng.normal(size=7)
    bias[1] = -0.0
    y = np.zeros((5, 7))
    y[:, slice(0, 7)] += part
    want = y + bias
    got = periphery.plus_bias(part, bias)
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()


def softmax_xent_reference(logits, y):
    """softmax_xent's numpy expressions, one array operation per step."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean())
    grad = p
    grad[np.arange(n), y] -= 1.0
    grad /= n
    return loss, grad, int((logits.argmax(axis=1) == y).sum())


def test_softmax_xent_equals_its_numpy_expressions():
    """Loss, gradient and correct count of random logits (ties, huge spreads, negative labels,
    one sample, rows with NaN or inf) are the numpy expressions' bit for bit."""
    import warnings

    from ohmflow.host.mlp import softmax_xent

    rng = np.random.default_rng(14)
    for case in range(40):
        n, c = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        logits = rng.normal(size=(n, c)) * 10.0 ** rng.uniform(-3, 3)
        y = rng.integers(-c, c, size=n)
        if case % 5 == 0:
            logits[0, :] = 1.5  # a tie: the first maximum is the argmax
        if case % 7 == 0:
            logits[-1, int(rng.integers(c))] = [np.nan, np.inf, -np.inf][case % 3]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = softmax_xent(logits.copy(), y)
            want = softmax_xent_reference(logits.copy(), y)
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2] == want[2]
        assert got[0] == want[0] or (np.isnan(got[0]) and np.isnan(want[0]))
    with pytest.raises(IndexError):
        softmax_xent(np.zeros((2, 3)), np.array([0, 3]))
