"""The arithmetic of time and temperature for the tile engine (docs/numerics.md §11).

``emulator/physics.py`` is the reference and the one source of the tables; this module turns
them into LUT ROMs (constants read by ``word_select``: no block RAM) and builds the units ADVANCE
and the temperature factors need:

- `rom` / `rom_read`: a table of integers as one constant and its run-time lookup.
- `temperature_factor`: ACCEL, CG, CS or CN of a temperature in kelvin (§11.4).
- `scale12`: rnd(x * factor, 12), the temperature-scaled gain, sigma and step-shape nodes.
- `Exp2n`: EXP2N(X) of §11.3, a two-stage pipeline, one exponent a cycle.
- `Log2`: LOG2(a) of §11.3 for a 64-bit a >= 1, sequential (a left shift a cycle to normalize).
- `SerialMul`: a shift-add multiplier, one multiplier bit a cycle, for the wide products of
  ADVANCE (no DSP block).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import physics
from ohmflow.emulator.config import (
    FACTOR_FRAC,
    GAIN_BITS,
    LOG_FRAC,
    SHAPE_BITS,
    SIGMA_BITS,
    T_MAX,
    T_MIN,
    TEMP_FRAC,
    TIME_BITS,
)

__all__ = ["CS_BITS", "EXP2N_LATENCY", "GAIN_T_BITS", "L_BITS", "NODE_T_BITS", "NODE_T_MAX",
           "SIGMA_T_BITS",
           "X_BITS", "Exp2n", "Log2", "SerialMul", "rom", "rom_read", "scale12",
           "temperature_factor", "temperature_width"]

POS_BITS = physics.POS_BITS  #: interpolation weight bits of LOG2 and EXP2N
SEG_BITS = LOG_FRAC - POS_BITS  #: table index bits
#: LOG2 of a 64-bit value: at most 64 * 2**16 (the interpolation may carry into the next octave)
L_BITS = (TIME_BITS << LOG_FRAC).bit_length()
#: a saturated exponent X of EXP2N: 0 .. X_ZERO
X_BITS = physics.X_ZERO.bit_length()
#: f = EXP2N(X): 0 .. 2**FACTOR_FRAC
F_BITS = FACTOR_FRAC + 1
EXP2N_LATENCY = 2


def rom(values) -> tuple[Const, int]:
    """``values`` (integers >= 0) as one constant of equal-width words, and that width."""
    values = [int(v) for v in values]
    if min(values) < 0:
        raise ValueError(f"rom takes integers >= 0, got {min(values)}")
    width = max(1, max(values).bit_length())
    return Const(sum(v << (k * width) for k, v in enumerate(values)), width * len(values)), width


def rom_read(table: tuple[Const, int], index) -> Value:
    """The word at a run-time ``index`` of a `rom` (a multiplexer of constants: LUTs only)."""
    const, width = table
    return const.word_select(Value.cast(index), width)


def _diffs(values) -> list[int]:
    return [b - a for a, b in zip(values, values[1:], strict=False)]


_TEMP_TABLES = {name: rom(physics.temperature_tables()[name])
                for name in ("ACCEL", "CG", "CS", "CN")}


def temperature_width(name: str) -> int:
    """The bit width of the factor table ``name`` (ACCEL, CG, CS or CN)."""
    return _TEMP_TABLES[name][1]


def _scaled_max(bits: int, name: str) -> int:
    top = max(physics.temperature_tables()[name])
    return (2**bits - 1) * int(top) + (1 << (TEMP_FRAC - 1)) >> TEMP_FRAC


#: the largest step-shape node scaled by CS[T] over every T (§11.4)
NODE_T_MAX = _scaled_max(SHAPE_BITS, "CS")
#: widths of gain_T, sigma_T and the scaled step-shape nodes over every T (§11.4)
GAIN_T_BITS = _scaled_max(GAIN_BITS, "CG").bit_length()
SIGMA_T_BITS = _scaled_max(SIGMA_BITS, "CN").bit_length()
NODE_T_BITS = NODE_T_MAX.bit_length()
CS_BITS = temperature_width("CS")


def temperature_factor(name: str, temperature) -> Value:
    """The code of factor ``name`` at a run-time ``temperature`` in kelvin, T_MIN .. T_MAX."""
    t = Value.cast(temperature)
    index = (t - T_MIN)[:(T_MAX - T_MIN).bit_length()]
    return rom_read(_TEMP_TABLES[name], index)


def scale12(x, factor) -> Value:
    """rnd(x * factor, TEMP_FRAC) for unsigned ``x`` and ``factor`` (§11.4)."""
    x, factor = Value.cast(x).as_unsigned(), Value.cast(factor).as_unsigned()
    return (x * factor + (1 << (TEMP_FRAC - 1))) >> TEMP_FRAC


def _interpolate(base_table, diff, idx, fr) -> Value:
    """rnd(T[idx] (2^POS_BITS - fr) + T[idx + 1] fr, POS_BITS), written as
    rnd(T[idx] 2^POS_BITS + (T[idx + 1] - T[idx]) fr, POS_BITS) (the same integer)."""
    base = rom_read(base_table, idx)
    return ((base << POS_BITS) + diff * fr + (1 << (POS_BITS - 1))) >> POS_BITS


_LOG2_BASE = rom(physics.LOG2T[:-1])
_LOG2_DIFF = rom(_diffs(physics.LOG2T))  # positive
_EXP2_BASE = rom(physics.EXP2T[:-1])
_EXP2_DROP = rom([-d for d in _diffs(physics.EXP2T)])  # EXP2T decreases: stored as drops


class Exp2n(wiring.Component):
    """f = EXP2N(X) = 2^(-X / 2^16) 2^16 (§11.3), ``x`` saturated at X_ZERO (f = 0 there).

    A pipeline without handshake: ``f`` shows the value of ``x`` `EXP2N_LATENCY` cycles earlier.
    Stage 1: the table words and the interpolation product; stage 2: the sum, its rounding and
    the shift by the octave, rnd(m, n).
    """

    def __init__(self, x_width: int = X_BITS):
        super().__init__({"x": In(unsigned(x_width)), "f": Out(unsigned(F_BITS))})

    def elaborate(self, platform):
        m = Module()
        xs = Mux(self.x >= physics.X_ZERO, physics.X_ZERO, self.x)[:X_BITS]
        r = xs[:LOG_FRAC]
        idx, fr = r[POS_BITS:], r[:POS_BITS]
        base = Signal(F_BITS, reset_less=True)
        drop_fr = Signal(2 * LOG_FRAC, reset_less=True)
        n = Signal(X_BITS - LOG_FRAC, reset_less=True)
        m.d.sync += [base.eq(rom_read(_EXP2_BASE, idx)),
                     drop_fr.eq(rom_read(_EXP2_DROP, idx) * fr),
                     n.eq(xs[LOG_FRAC:])]
        mant = ((base << POS_BITS) - drop_fr + (1 << (POS_BITS - 1))) >> POS_BITS
        half = (Const(1, F_BITS + 1) << n) >> 1
        m.d.sync += self.f.eq((mant + half) >> n)
        return m


class Log2(wiring.Component):
    """L = LOG2(a) (§11.3) for 1 <= a < 2^64, sequential.

    Ports: ``start`` with ``a`` loads a request while ``busy`` is low (one cycle); ``busy`` stays
    high while the leading one is shifted to bit 63 (one bit a cycle, 63 - e cycles for
    e = bit_length(a) - 1) and one more cycle for the table and the interpolation; ``l`` holds
    the result once ``busy`` is low again. From ``start`` to the result: 65 - e cycles, at most
    `MAX_CYCLES`; a = 0 is treated as 1 (L = 0), so it never hangs.
    """

    MAX_CYCLES = TIME_BITS + 1

    def __init__(self):
        super().__init__({"start": In(1), "a": In(TIME_BITS), "busy": Out(1),
                          "l": Out(unsigned(L_BITS))})

    def elaborate(self, platform):
        m = Module()
        top = TIME_BITS - 1
        a = Signal(TIME_BITS, reset_less=True)
        e = Signal(range(TIME_BITS), reset_less=True)
        z = a[top - LOG_FRAC:top]  # the LOG_FRAC bits after the leading one
        idx, fr = z[POS_BITS:], z[:POS_BITS]
        with m.If(~self.busy):
            with m.If(self.start):
                m.d.sync += [a.eq(Mux(self.a == 0, 1, self.a)), e.eq(top), self.busy.eq(1)]
        with m.Elif(~a[top] & (e != 0)):
            m.d.sync += [a.eq(a << 1), e.eq(e - 1)]
        with m.Else():
            frac = _interpolate(_LOG2_BASE, rom_read(_LOG2_DIFF, idx), idx, fr)
            m.d.sync += [self.l.eq((Cat(Const(0, LOG_FRAC), e)) + frac), self.busy.eq(0)]
        return m


class SerialMul(wiring.Component):
    """p = a * b by shift and add, one bit of the multiplier ``b`` a cycle (LSB first).

    ``a`` may be signed (two's complement, sign-extended); ``b`` is unsigned, or signed with
    ``b_signed`` (its top bit weighs -2^(n-1): that cycle subtracts). ``start`` loads ``a`` and
    ``b`` while ``busy`` is low; ``busy`` stays high ``b_width`` cycles; then ``p`` holds the
    exact product (signed, width a + b + 1). Only an adder a little wider than ``a``.
    """

    def __init__(self, a_shape, b_width: int, b_signed: bool = False):
        a_shape = Shape.cast(a_shape)
        if b_width < 1:
            raise TypeError(f"b_width must be >= 1, got {b_width}")
        self.a_width, self.b_width, self.b_signed = a_shape.width, b_width, b_signed
        self.a_signed = a_shape.signed
        self.CYCLES = b_width
        super().__init__({
            "start": In(1), "a": In(a_shape),
            "b": In(signed(b_width) if b_signed else unsigned(b_width)),
            "busy": Out(1),
            "p": Out(signed(self.a_width + b_width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.b_width
        hw = self.a_width + 2
        a = Signal(signed(hw), reset_less=True)
        b = Signal(n, reset_less=True)
        hi = Signal(signed(hw), reset_less=True)
        lo = Signal(n, reset_less=True)
        count = Signal(range(n + 1), reset_less=True)
        last = count == 1
        neg = last & self.b_signed
        s = Signal(signed(hw + 1))
        m.d.comb += [s.eq(hi + Mux(b[0], Mux(neg, -a, a), 0)),
                     self.p.eq(Cat(lo, hi).as_signed())]
        with m.If(~self.busy):
            with m.If(self.start):
                m.d.sync += [a.eq(self.a), b.eq(self.b.as_unsigned()), hi.eq(0), lo.eq(0),
                             count.eq(n), self.busy.eq(1)]
        with m.Else():
            m.d.sync += [hi.eq(s >> 1), lo.eq(Cat(lo[1:], s[0])), b.eq(b >> 1),
                         count.eq(count - 1)]
            with m.If(last):
                m.d.sync += self.busy.eq(0)
        return m
