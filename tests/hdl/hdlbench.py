"""Stream drivers and monitors for the Amaranth-simulator tests, with random stalls."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator


async def send(ctx, port, payloads, rng: np.random.Generator | None = None, p_valid=1.0):
    """Drive ``payloads`` on stream ``port``, idling with probability 1 - p_valid per beat."""
    for p in payloads:
        while rng is not None and rng.random() >= p_valid:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload, p)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def recv(ctx, port, count: int, rng: np.random.Generator | None = None, p_ready=1.0):
    """Collect ``count`` payloads from ``port``, holding ready low with probability 1 - p_ready."""
    out = []
    while len(out) < count:
        r = rng is None or rng.random() < p_ready
        ctx.set(port.ready, r)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if r and valid:
            out.append(payload)
    ctx.set(port.ready, 0)
    return out


class Timeout(AssertionError):
    pass


def run(dut, *testbenches, max_cycles: int = 200_000, vcd: str | None = None, clock=True):
    """Simulate ``dut`` until every testbench returns; fail after ``max_cycles`` clock cycles.

    ``clock=False`` for purely combinational designs (no ``sync`` domain).
    """
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)

    async def watchdog(ctx):
        await ctx.delay(max_cycles * 1e-6)
        raise Timeout(f"simulation still running after {max_cycles} cycles")

    sim.add_testbench(watchdog, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return sim


def signed32(x: int) -> int:
    """A word as a signed 32-bit integer."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & (1 << 31) else x
