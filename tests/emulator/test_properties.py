"""Hypothesis properties of the quantizers and saturation, against exact rational arithmetic."""

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.twin import Twin, rnd_shift

CFG = ChipConfig(tiles=1, rows=1, cols=1, lanes=1, name="one")


@given(st.integers(-(2**40), 2**40), st.integers(0, 30))
def test_rnd_shift_is_round_half_up(x, s):
    assert int(rnd_shift(np.int64(x), s)) == math.floor(Fraction(x, 2**s) + Fraction(1, 2))


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(-(2**15 - 1), 2**15 - 1),
    x=st.integers(-63, 63),
    gain=st.integers(0, 2**16 - 1),
    shift=st.integers(16, 50),
    in_bits=st.integers(2, 7),
    out_bits=st.integers(2, 9),
)
def test_noise_free_adc_is_rounded_clipped_ideal(w, x, gain, shift, in_bits, out_bits):
    tw = Twin(CFG)
    tw.load_device_map(_wide_map())
    tw.set(fwd_gain=gain, fwd_shift=shift, fwd_sigma=0, in_bits=in_bits, out_bits=out_bits)
    tw.program(0, [[w]])
    y, sat = tw.forward(0, [[x]])
    m_in = 2 ** (in_bits - 1) - 1
    xd = max(-m_in, min(m_in, x))  # the DAC clips to the run-time resolution
    q = math.floor(Fraction(w * xd * gain, 2**shift) + Fraction(1, 2))
    m = 2 ** (out_bits - 1) - 1
    assert int(y[0, 0]) == max(-m, min(m, q))
    assert int(sat[0]) == (abs(q) > m)
    assert abs(int(y[0, 0])) <= m


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-63, 63), min_size=1, max_size=8), st.integers(0, 2**32 - 1),
       st.integers(0, 60000))
def test_noisy_adc_stays_in_range_and_counts_saturation(xs, seed, sigma):
    tw = Twin(CFG)
    tw.load_device_map(_wide_map())
    tw.set(seed=seed, fwd_sigma=sigma, out_bits=5)
    tw.program(0, [[30000]])
    y, sat = tw.forward(0, np.array(xs)[:, None])
    assert np.all(np.abs(y) <= 15)
    assert np.all(sat <= 1)
    assert np.all(sat[np.abs(y[:, 0]) < 15] == 0)


def _wide_map():
    from ohmflow.emulator.fabrication import nominal

    m = nominal(CFG)
    m.wmax[...] = CFG.w_max_code
    m.wmin[...] = CFG.w_min_code
    return m
