"""The tile engine's time and temperature arithmetic (hdl/tile/physics_math.py) against
emulator/physics.py: LOG2, EXP2N, the serial multiplier, the temperature factors and scaling."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from ohmflow.emulator import physics
from ohmflow.emulator.config import T_MAX, T_MIN, T_REF
from ohmflow.hdl.tile.physics_math import (
    EXP2N_LATENCY,
    Exp2n,
    Log2,
    SerialMul,
    scale12,
    temperature_factor,
)

from .hdlbench import run


def _exp2n_inputs(rng) -> list[int]:
    edges = [0, 1, 511, 512, 513, 1023, 1024, 65535, 65536, 65537, 17 << 16, (17 << 16) + 65535,
             physics.X_ZERO - 1, physics.X_ZERO, physics.X_ZERO + 1, 2**22 - 1]
    octave_edges = [(n << 16) + d for n in range(19) for d in (0, 1, 1023, 1024, 65535)]
    return edges + octave_edges + [int(v) for v in rng.integers(0, physics.X_ZERO + 5, 3000)]


def test_exp2n_matches_the_twin_over_edges_and_random_exponents():
    rng = np.random.default_rng(11)
    xs = _exp2n_inputs(rng)
    dut = Exp2n(x_width=22)
    got = []

    async def tb(ctx):
        for k in range(len(xs) + EXP2N_LATENCY):
            if k < len(xs):
                ctx.set(dut.x, xs[k])
            await ctx.tick()
            if k >= EXP2N_LATENCY - 1 and len(got) < len(xs):
                got.append(ctx.get(dut.f))

    run(dut, tb, max_cycles=len(xs) + 10)
    assert got == physics.exp2n(np.array(xs)).tolist()
    assert got[0] == 2**16 and got[xs.index(physics.X_ZERO)] == 0


async def _start_and_wait(ctx, dut, **operands) -> int:
    """Start a multi-cycle unit on ``operands`` for one cycle and wait until it is no longer busy;
    the cycles it stayed busy after the start cycle."""
    ctx.set(dut.start, 1)
    for name, value in operands.items():
        ctx.set(getattr(dut, name), value)
    await ctx.tick()
    ctx.set(dut.start, 0)
    n = 0
    while ctx.get(dut.busy):
        await ctx.tick()
        n += 1
    return n


def _log2_inputs(rng) -> list[int]:
    edges = [1, 2, 3, 20_000, 2**16 - 1, 2**16, 2**16 + 1, 2**17 - 1, 2**17, 2**32 - 1,
             2**63, 2**64 - 1, 2**64 - 2**47, 2**64 - 2**47 - 1]
    powers = [2**e + d for e in range(1, 64) for d in (-1, 0, 1)]
    bits = rng.integers(1, 65, 300)
    rand = [int(rng.integers(2**int(b - 1), 2**int(b), dtype=np.uint64, endpoint=False))
            if b < 64 else int(rng.integers(0, 2**63, dtype=np.uint64)) + 2**63 for b in bits]
    return edges + powers + rand


def test_log2_matches_the_twin_and_takes_at_most_its_bound():
    rng = np.random.default_rng(12)
    xs = _log2_inputs(rng)
    dut = Log2()
    got, cycles = [], []

    async def tb(ctx):
        for a in xs:
            cycles.append(1 + await _start_and_wait(ctx, dut, a=a))
            got.append(ctx.get(dut.l))

    run(dut, tb, max_cycles=len(xs) * (Log2.MAX_CYCLES + 2))
    assert got == [physics.log2_fixed(a) for a in xs]
    assert max(cycles) <= Log2.MAX_CYCLES
    # a load, 63 - e shifts, the table: 65 cycles for a = 1, 2 for a leading one at bit 63
    assert cycles[0] == Log2.MAX_CYCLES == 65 and cycles[xs.index(2**63)] == 2


def test_log2_of_zero_does_not_hang():
    dut = Log2()
    seen = {}

    async def tb(ctx):
        await _start_and_wait(ctx, dut, a=0)
        seen["l"] = ctx.get(dut.l)

    run(dut, tb, max_cycles=Log2.MAX_CYCLES + 5)
    assert seen["l"] == 0


@pytest.mark.parametrize("a_shape,b_width,b_signed", [
    (50, 49, False), ((18, True), 17, False), (48, 19, True), ((17, True), 17, False)])
def test_serial_mul_is_the_exact_product(a_shape, b_width, b_signed):
    rng = np.random.default_rng(b_width)
    a_sh = signed(a_shape[0]) if isinstance(a_shape, tuple) else unsigned(a_shape)
    dut = SerialMul(a_sh, b_width, b_signed)
    half = 2**(a_sh.width - 1)
    a_lo, a_hi = (-half, half) if a_sh.signed else (0, 2**a_sh.width)
    b_lo, b_hi = (-(2**(b_width - 1)), 2**(b_width - 1)) if b_signed else (0, 2**b_width)
    pairs = [(a_lo, b_lo), (a_hi - 1, b_hi - 1), (a_lo, b_hi - 1), (a_hi - 1, b_lo), (0, 0)]
    pairs += [(int(rng.integers(a_lo, a_hi, dtype=np.int64)) if a_sh.width < 63 else
               int(rng.integers(0, 2**a_sh.width - 1, dtype=np.uint64)),
               int(rng.integers(b_lo, b_hi, dtype=np.int64))) for _ in range(60)]
    got, cycles = [], []

    async def tb(ctx):
        for a, b in pairs:
            cycles.append(await _start_and_wait(ctx, dut, a=a, b=b))
            got.append(ctx.get(dut.p))

    run(dut, tb, max_cycles=len(pairs) * (b_width + 3))
    assert got == [a * b for a, b in pairs]
    assert set(cycles) == {dut.CYCLES}


def test_temperature_factors_and_scaling_match_the_twin():
    t = Signal(range(T_MAX + 1))
    x = Signal(20)
    outs = {name: temperature_factor(name, t) for name in ("ACCEL", "CG", "CS", "CN")}
    outs["scaled"] = scale12(x, outs["CS"])
    m = Module()
    sigs = {}
    for k, e in outs.items():
        sigs[k] = Signal(e.shape(), name=k)
        m.d.comb += sigs[k].eq(e)
    rng = np.random.default_rng(13)
    cases = [(tt, int(rng.integers(0, 2**20))) for tt in range(T_MIN, T_MAX + 1)]
    cases += [(T_REF, 2**20 - 1), (T_MAX, 2**20 - 1), (T_MIN, 1), (350, 0)]
    got = []

    async def tb(ctx):
        for tt, xx in cases:
            ctx.set(t, tt)
            ctx.set(x, xx)
            got.append({k: ctx.get(s) for k, s in sigs.items()})

    run(m, tb, max_cycles=10, clock=False)
    tables = physics.temperature_tables()
    for (tt, xx), g in zip(cases, got, strict=True):
        for name in ("ACCEL", "CG", "CS", "CN"):
            assert g[name] == tables[name][tt - T_MIN], (name, tt)
        assert g["scaled"] == int(physics.scaled_nodes(np.array([xx]), tt)[0])
        assert physics.scaled_gain(xx & 0xFFFF, tt) == (xx & 0xFFFF) * g["CG"] + 2048 >> 12
    assert got[T_REF - T_MIN]["scaled"] == cases[T_REF - T_MIN][1]  # 1.0 at T0
