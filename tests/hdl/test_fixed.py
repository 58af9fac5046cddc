"""Fixed-point and lane helpers against Python integer arithmetic (exhaustive where small)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from ohmflow.emulator.prng import M1, M2
from ohmflow.emulator.twin import rnd_shift as twin_rnd_shift
from ohmflow.hdl.lib.fixed import (
    clip,
    csd_digits,
    divmod_const,
    mul_const,
    mul_lut,
    popcount,
    rnd_shift,
    rotate,
    thermometer,
    times,
)

from .hdlbench import run


def _comb(inputs: dict, outputs: dict, cases):
    """Evaluate combinational outputs for each case (a dict of input values)."""
    m = Module()
    outs = {}
    for k, e in outputs.items():
        outs[k] = Signal(e.shape(), name=k)
        m.d.comb += outs[k].eq(e)
    got = []

    async def tb(ctx):
        for case in cases:
            for k, v in case.items():
                ctx.set(inputs[k], v)
            got.append({k: ctx.get(s) for k, s in outs.items()})

    run(m, tb, max_cycles=10, clock=False)
    return got


def test_csd_digits_sum_to_the_constant():
    for c in [0, 1, 3, 7, 0x55, M1, M2, 2**32 - 1]:
        assert sum(d << k for k, d in csd_digits(c)) == c
        ks = [k for k, _ in csd_digits(c)]
        assert all(b - a >= 2 for a, b in zip(ks, ks[1:], strict=False))  # non-adjacent


def test_mul_const_is_modular_product():
    rng = np.random.default_rng(0)
    x = Signal(32)
    xs = [0, 1, 2**32 - 1, 2**31] + [int(v) for v in rng.integers(0, 2**32, size=200)]
    got = _comb({"x": x}, {"a": mul_const(x, M1, 32), "b": mul_const(x, M2, 32),
                           "c": mul_const(x, 12345, 20)}, [{"x": v} for v in xs])
    for v, g in zip(xs, got, strict=True):
        assert g == {"a": v * M1 % 2**32, "b": v * M2 % 2**32, "c": v * 12345 % 2**20}


@pytest.mark.parametrize("s", [0, 1, 8, 12])
def test_rnd_shift_matches_twin(s):
    x = Signal(signed(14))
    xs = list(range(-(2**13), 2**13, 7))
    got = _comb({"x": x}, {"y": rnd_shift(x, s)}, [{"x": v} for v in xs])
    assert [g["y"] for g in got] == twin_rnd_shift(np.array(xs), s).tolist()


def test_clip_and_thermometer():
    x, lo, hi = Signal(signed(8)), Signal(signed(8)), Signal(signed(8))
    n = Signal(range(11))
    cases = [{"x": a, "lo": -5, "hi": 9, "n": a % 11} for a in range(-128, 128)]
    got = _comb({"x": x, "lo": lo, "hi": hi, "n": n},
                {"c": clip(x, lo, hi), "t": thermometer(n, 10)}, cases)
    for c, g in zip(cases, got, strict=True):
        assert g["c"] == min(max(c["x"], -5), 9)
        assert g["t"] == (1 << c["n"]) - 1


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16])
def test_rotate_moves_lane_l_to_bank_l_plus_amount(n):
    vals = [Signal(8, name=f"v{k}") for k in range(n)]
    amt = Signal(range(max(2, n)))
    out = rotate(vals, amt, n)
    cases = [{"amt": a, **{f"v{k}": 10 + k for k in range(n)}} for a in range(n)]
    got = _comb({"amt": amt, **{f"v{k}": v for k, v in enumerate(vals)}},
                {f"o{b}": out[b] for b in range(n)}, cases)
    for a, g in enumerate(got):
        assert [g[f"o{b}"] for b in range(n)] == [10 + (b - a) % n for b in range(n)]


@pytest.mark.parametrize("d,n_max", [(1, 70), (3, 70), (4, 70), (7, 200), (16, 64), (5, 4097)])
def test_divmod_const_exhaustive(d, n_max):
    x = Signal(range(n_max))
    q, r = divmod_const(x, d, n_max)
    got = _comb({"x": x}, {"q": q, "r": r}, [{"x": v} for v in range(n_max)])
    assert [(g["q"], g["r"]) for g in got] == [divmod(v, d) for v in range(n_max)]


@pytest.mark.parametrize("c", [0, 1, 3, 5, 7, 16, 63, 64, 100])
def test_times_is_the_exact_product(c):
    x = Signal(7)
    got = _comb({"x": x}, {"p": times(x, c)}, [{"x": v} for v in range(128)])
    assert [g["p"] for g in got] == [v * c for v in range(128)]


@pytest.mark.parametrize("bshape", [signed(7), 6], ids=["signed", "unsigned"])
def test_mul_lut_is_exact(bshape):
    a, b = Signal(signed(16)), Signal(bshape)
    bs = range(-64, 64) if bshape == signed(7) else range(64)
    rng = np.random.default_rng(3)
    cases = [{"a": int(x), "b": y} for y in bs
             for x in [-(2**15), 2**15 - 1, 0, *rng.integers(-(2**15), 2**15, size=3)]]
    got = _comb({"a": a, "b": b}, {"p": mul_lut(a, b)}, cases)
    assert [g["p"] for g in got] == [c["a"] * c["b"] for c in cases]


@pytest.mark.parametrize("width", [1, 3, 4, 7, 8, 31, 32])
def test_popcount_counts_set_bits(width):
    x = Signal(width)
    rng = np.random.default_rng(width)
    values = range(1 << width) if width <= 8 else [0, (1 << width) - 1,
                                                   *rng.integers(0, 1 << width, 300).tolist()]
    got = _comb({"x": x}, {"n": popcount(x)}, [{"x": int(v)} for v in values])
    assert [g["n"] for g in got] == [bin(int(v)).count("1") for v in values]
