"""A bit-level 8N1 line model: waveforms for the UART receiver, decoding of its transmitter."""

from __future__ import annotations


def encode(frames, period: float, idle: float = 0.0) -> list[int]:
    """Line levels, one per clock, for ``frames`` sent at ``period`` clocks per bit.

    ``frames`` holds bytes, or ``(byte, stop_level)`` pairs to make framing errors. ``idle`` bits
    of high line precede every frame; the period may be fractional (a baud-rate mismatch).
    """
    segs: list[tuple[int, float]] = []
    for f in frames:
        byte, stop = (f, 1) if isinstance(f, int) else f
        segs.append((1, idle))
        segs += [(0, 1.0)] + [((byte >> i) & 1, 1.0) for i in range(8)] + [(stop, 1.0)]
    levels: list[int] = []
    t = 0.0
    for level, nbits in segs:
        t += nbits * period
        levels += [level] * (round(t) - len(levels))
    return levels + [1] * int(2 * period)


def decode(levels: list[int], divisor: int) -> list[int]:
    """Bytes in a recorded line, checking exact timing: every bit is ``divisor`` clocks long."""
    out = []
    k = 0
    n = len(levels)
    while k < n:
        if levels[k] == 1:
            k += 1
            continue
        if k + 10 * divisor > n:
            raise AssertionError(f"truncated frame at clock {k}")
        bits = []
        for b in range(10):
            seg = levels[k + b * divisor: k + (b + 1) * divisor]
            if len(set(seg)) != 1:
                raise AssertionError(f"bit {b} of the frame at clock {k} is not {divisor} clocks "
                                     f"of one level: {seg}")
            bits.append(seg[0])
        if bits[0] != 0 or bits[9] != 1:
            raise AssertionError(f"bad start/stop bit in the frame at clock {k}: {bits}")
        out.append(sum(bit << i for i, bit in enumerate(bits[1:9])))
        k += 10 * divisor
    return out
