"""The stream register slice: beats in order, none lost or doubled, ready from a register."""

from __future__ import annotations

import numpy as np
import pytest
from ohmflow.hdl.lib.skid import Skid

from .hdlbench import recv, run, send


@pytest.mark.parametrize("p_valid, p_ready", [(1.0, 1.0), (0.6, 0.5), (1.0, 0.3), (0.3, 1.0)])
def test_skid_passes_every_beat_in_order(p_valid, p_ready):
    rng = np.random.default_rng(int(p_valid * 10 + p_ready * 100))
    dut = Skid(16)
    n = 200
    words = [int(v) for v in rng.integers(0, 2**16, size=n)]
    got = {}

    async def tb(ctx):
        await send(ctx, dut.i, words, rng, p_valid)

    async def mon(ctx):
        got["o"] = await recv(ctx, dut.o, n, rng, p_ready)

    run(dut, tb, mon, max_cycles=5000)
    assert got["o"] == words


def test_skid_full_rate_and_one_cycle_latency():
    dut = Skid(8)
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for k in range(20):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, k)
            assert ctx.get(dut.i.ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                seen.append(payload)
        ctx.set(dut.i.valid, 0)

    run(dut, tb, max_cycles=100)
    assert seen == list(range(19))  # a beat per cycle, each one cycle after it was offered
