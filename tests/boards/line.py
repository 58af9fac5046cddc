"""Drive and watch a design's UART pins in the Amaranth simulator, bit by bit."""

from __future__ import annotations


def levels_of(data: bytes, divisor: int, stop: int = 1, gap: int = 0) -> list[int]:
    """Line levels, one per clock, sending ``data`` 8N1 (``stop``: level of every stop bit)."""
    out: list[int] = []
    for byte in data:
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [stop] + [1] * gap
        for b in bits:
            out += [b] * divisor
    return out


def decode(levels: list[int], divisor: int) -> bytes:
    """Bytes in a recorded line, sampling each bit in its middle after a falling edge."""
    out = bytearray()
    k = 0
    while k < len(levels):
        if levels[k] == 1:
            k += 1
            continue
        if k + 10 * divisor > len(levels):
            break  # a frame still being sent when recording stopped
        bits = [levels[k + b * divisor + divisor // 2] for b in range(10)]
        assert bits[0] == 0 and bits[9] == 1, f"bad frame at clock {k}: {bits}"
        out.append(sum(bit << i for i, bit in enumerate(bits[1:9])))
        k += 10 * divisor - divisor // 2  # resynchronise on the next falling edge
    return bytes(out)
