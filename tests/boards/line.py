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


def exchange(core, request: bytes, divisor: int, done, max_cycles: int, extra=None) -> bytes:
    """Send ``request`` into ``core.rx_pin`` and record ``core.tx_pin`` in the Amaranth simulator
    until ``done(received_bytes)`` holds (checked once per received byte) or ``max_cycles``;
    ``extra`` is another (background) process to run alongside."""
    from amaranth.sim import Simulator

    levels = levels_of(request, divisor)
    line: list[int] = []

    async def tb(ctx):
        seen = 0
        for k in range(max_cycles):
            ctx.set(core.rx_pin, levels[k] if k < len(levels) else 1)
            await ctx.tick()
            line.append(ctx.get(core.tx_pin))
            # a byte has ended when the line has been high for a bit after a stop bit
            if k >= len(levels) and line[-1] and k % divisor == 0:
                got = decode(line, divisor)
                if len(got) > seen:
                    seen = len(got)
                    if done(got):
                        return

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    if extra is not None:
        sim.add_process(extra)
    sim.run()
    return decode(line, divisor)
