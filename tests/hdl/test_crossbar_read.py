"""The rv32 engine's crossbar read against exact integer sums: random 16-bit states in a model
of the SPRAM, random codes, rows (stride 2) and columns (stride 2 x rows) of odd lengths, back
to back and with pauses; one product a cycle, busy for n + 3 cycles after the cycle that
starts a sum."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from ohmflow.hdl.rv32.crossbar_read import CrossbarRead

from tests.hdl.hdlbench import signed32

BASE = 0x1000_0000


def simulate(states: np.ndarray, jobs: list[tuple[list[int], int, int, int]]):
    """``states``: int16 words of memory from BASE; each job: (codes, first state's address,
    stride, pause before it). Returns (sum, busy cycles) of each job."""
    dut = CrossbarRead()
    words = {}
    for k in range(0, len(states), 2):
        lo = int(states[k]) & 0xFFFF
        hi = int(states[k + 1]) & 0xFFFF if k + 1 < len(states) else 0
        words[BASE // 4 + k // 2] = lo | hi << 16
    out = []

    async def memory(ctx):
        async for _clk, _rst, en, addr in ctx.tick().sample(dut.mem_en, dut.mem_addr):
            if en:
                ctx.set(dut.mem_rdata, words.get(addr // 4, 0))

    async def firmware(ctx):
        for codes, start, stride, pause in jobs:
            await ctx.tick().repeat(pause + 1)
            ctx.set(dut.line, len(codes))
            ctx.set(dut.line_we, 1)
            await ctx.tick()
            ctx.set(dut.line_we, 0)
            for c in codes:
                ctx.set(dut.code, c)
                ctx.set(dut.code_we, 1)
                await ctx.tick()
            ctx.set(dut.code_we, 0)
            ctx.set(dut.stride, stride)
            ctx.set(dut.stride_we, 1)
            ctx.set(dut.start, start)
            ctx.set(dut.start_we, 1)
            await ctx.tick()
            ctx.set(dut.stride_we, 0)
            ctx.set(dut.start_we, 0)
            cycles = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            out.append((signed32(ctx.get(dut.total)), cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(firmware)
    sim.add_testbench(memory, background=True)
    sim.run()
    assert len(out) == len(jobs), "the sums did not finish"
    return out


@pytest.mark.parametrize("seed", range(3))
def test_row_and_column_sums_are_exact(seed):
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 70)), int(rng.integers(1, 40))
    w = rng.integers(-32767, 32768, (cols, rows)).astype(np.int16)
    jobs, want = [], []
    for _ in range(12):
        if rng.random() < 0.5:  # forward: along row j, n = a prefix of the inputs
            j, n = int(rng.integers(cols)), int(rng.integers(1, rows + 1))
            start, stride, line = BASE + 2 * j * rows, 2, w[j, :n]
        else:  # transposed: down column i, n = a prefix of the outputs
            i, n = int(rng.integers(rows)), int(rng.integers(1, cols + 1))
            start, stride, line = BASE + 2 * i, 2 * rows, w[:n, i]
        codes = rng.integers(-2047, 2048, n)
        jobs.append(([int(c) for c in codes], start, stride, int(rng.integers(0, 3))))
        want.append(int((line.astype(np.int64) * codes).sum()))
    got = simulate(w.ravel(), jobs)
    assert [s for s, _ in got] == want
    assert all(c == len(j[0]) + 3 for (_, c), j in zip(got, jobs, strict=True))


def test_extreme_products_fill_32_bits_exactly():
    """The largest sums the icebreaker chip can make (64 products of 2^15 x 63) and a mix of
    signs at the 16-bit edges."""
    w = np.array([-32767, 32767] * 32, dtype=np.int16)
    got = simulate(w, [([-63, 63] * 32, BASE, 2, 0), ([63] * 64, BASE, 2, 0),
                       ([-2047] * 64, BASE + 2, 4, 1)])
    assert [s for s, _ in got] == [64 * 32767 * 63, 0, -2047 * 32767 * 32]
