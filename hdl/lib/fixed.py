"""Fixed-point and lane helpers shared by the gateware: the twin's integer operations as Amaranth
expressions (docs/numerics.md; ``emulator/twin.py`` is the reference).

All helpers build combinational logic and return Amaranth values; widths follow Amaranth's exact
arithmetic, so nothing overflows unless a helper says it truncates.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, unsigned

__all__ = ["add_levels", "clip", "csd_digits", "csd_terms", "mod_difference", "mul_const",
           "popcount", "rnd_shift", "rotate", "thermometer", "times", "to_signed"]


def to_signed(x) -> Value:
    """``x`` as a signed value one bit wider if it was unsigned (value preserved)."""
    x = Value.cast(x)
    if x.shape().signed:
        return x
    return Cat(x, Const(0, 1)).as_signed()


def rnd_shift(x, s: int) -> Value:
    """Round half up and shift right by the constant ``s``: ``(x + 2**(s-1)) >> s``; identity for 0.

    ``x`` is treated as signed (arithmetic shift), as in the twin's ``rnd_shift``.
    """
    x = to_signed(x)
    if s == 0:
        return x
    return (x + (1 << (s - 1))) >> s


def clip(x, lo, hi) -> Value:
    """``min(max(x, lo), hi)`` for ``lo <= hi`` (signed comparison when either side is signed)."""
    x, lo, hi = Value.cast(x), Value.cast(lo), Value.cast(hi)
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def csd_digits(c: int) -> list[tuple[int, int]]:
    """Canonical signed-digit form of ``c >= 0``: ``[(shift, +1 or -1), ...]`` summing to ``c``."""
    if c < 0:
        raise ValueError(f"csd_digits needs c >= 0, got {c}")
    out = []
    k = 0
    while c:
        if c & 1:
            d = 2 - (c & 3)  # +1 if c = 1 mod 4, -1 if c = 3 mod 4
            out.append((k, d))
            c -= d
        c >>= 1
        k += 1
    return out


def mul_const(x, c: int, width: int) -> Value:
    """``(x * c) mod 2**width`` as a balanced tree of shifts and adds (no multiplier inferred).

    Used for the hash constants, so synthesis spends LUTs, not DSP blocks, on the PRNG.
    """
    pos, neg = csd_terms(x, c, width)
    return mod_difference(pos, neg, width)


def times(x, c: int) -> Value:
    """The exact product of an unsigned ``x`` and a constant ``c >= 0`` by shifts and adds: a
    small index times a non-power-of-two size would otherwise take a DSP block and its delay."""
    x = Value.cast(x).as_unsigned()
    return mul_const(x, c, len(x) + max(1, c.bit_length()))


def csd_terms(x, c: int, width: int) -> tuple[list, list]:
    """The shifted copies of ``x`` whose sum minus difference is ``(x * c) mod 2**width``:
    ``(positive terms, negative terms)`` of the canonical signed-digit form of ``c``."""
    x = Value.cast(x).as_unsigned()
    digits = [(k, d) for k, d in csd_digits(c % (1 << width)) if k < width]
    return ([(x << k)[:width] for k, d in digits if d > 0],
            [(x << k)[:width] for k, d in digits if d < 0])


def add_levels(values: list, width: int, levels: int | None = None) -> list:
    """``levels`` rounds (default: all) of pairwise sums mod ``2**width``; the list they leave
    (one value after all rounds, ``[0]`` for an empty list)."""
    if not values:
        return [Const(0, unsigned(width))]
    while len(values) > 1 and levels != 0:
        nxt = [(values[n] + values[n + 1])[:width] for n in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
        levels = None if levels is None else levels - 1
    return values


def mod_difference(pos: list, neg: list, width: int) -> Value:
    """``(sum(pos) - sum(neg)) mod 2**width`` as balanced adder trees."""
    return (add_levels(pos, width)[0] - add_levels(neg, width)[0])[:width]


def rotate(values: list, amount, n: int | None = None) -> list:
    """Lane rotation: ``out[b] = values[(b - amount) mod n]`` for a run-time ``0 <= amount < n``.

    Built as log2(n) stages of fixed rotations (by 1, 2, 4, ... modulo n), so it works for any n.
    """
    n = len(values) if n is None else n
    amount = Value.cast(amount)
    out = list(values)
    s = 0
    while (1 << s) < n:
        step = (1 << s) % n
        prev = out
        out = [Mux(amount[s], prev[(b - step) % n], prev[b]) for b in range(n)]
        s += 1
        if s >= len(amount):
            break
    return out


def thermometer(count, width: int) -> Value:
    """``2**count - 1`` on ``width`` bits (the first ``count`` slots of a pulse train)."""
    count = Value.cast(count)
    return ((Const(1, width + 1) << count) - 1)[:width]


def divmod_const(x, d: int, n_max: int) -> tuple[Value, Value]:
    """``(x // d, x % d)`` for ``0 <= x < n_max`` and a constant ``d >= 1``.

    A multiply by a rounded reciprocal and a shift, with the constants checked exhaustively over
    the input range at elaboration (no divider is inferred).
    """
    x = Value.cast(x)
    qw = max(1, (max(n_max - 1, 0) // d).bit_length())
    rw = max(1, (d - 1).bit_length())
    if d & (d - 1) == 0:
        s = d.bit_length() - 1
        return (x >> s)[:qw], x[:s] if s else Const(0, 1)
    for s in range(1, 64):
        mult = -(-(1 << s) // d)
        if all((v * mult) >> s == v // d for v in range(n_max)):
            break
    else:  # pragma: no cover - a 64-bit shift always suffices for 2**24 inputs
        raise ValueError(f"no reciprocal for divisor {d} over {n_max} values")
    q = ((x * mult) >> s)[:qw]
    return q, (x - q * d)[:rw]


def mul_lut(a, b) -> Value:
    """``a * b`` as shifted partial products of ``a`` selected by the bits of the narrow ``b``.

    Exact for signed or unsigned operands (a signed ``b``'s top bit weighs ``-2**(n-1)``). Used
    for products with a few-bit operand, so synthesis keeps DSP blocks for the wide ones.
    """
    a, b = Value.cast(a), Value.cast(b)
    n = len(b)
    sa = to_signed(a)
    terms = []
    for k in range(n):
        term = Mux(b[k], sa << k, 0)
        if k == n - 1 and b.shape().signed:
            term = -term
        terms.append(term)
    return sum_tree(terms)


#: bit counts of the 16 nibbles, 3 bits each (nibble n at bits 3n .. 3n+2)
_NIBBLE_COUNTS = Const(sum(bin(n).count("1") << (3 * n) for n in range(16)), 48)


def popcount(x) -> Value:
    """The number of set bits of ``x``: a 16-entry table per nibble, then an adder tree.

    A nibble's count is a 4-input function (three LUT4s on an FPGA; one shift and mask in a
    simulator), where a tree of single-bit adds costs Verilator a bit-count call per pair.
    """
    x = Value.cast(x).as_unsigned()
    nibbles = [x[k:k + 4] for k in range(0, len(x), 4)]
    return sum_tree([_NIBBLE_COUNTS.word_select(nb, 3) for nb in nibbles])


def sum_tree(values: list) -> Value:
    """The sum of ``values`` as a balanced tree of adders (pairwise, in order)."""
    while len(values) > 1:
        nxt = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]
