"""The emulator's top: the SoC behind registered byte ports with a power-on reset."""

import random
import re

import numpy as np
from amaranth.sim import Simulator
from ohmflow.emulator.config import get_config
from ohmflow.hdl.emulator_top import POWER_ON_CYCLES, EmulatorTop
from ohmflow.sim import emulator
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

CFG = get_config("tiny")


def test_ports_have_no_reset():
    v = emulator.soc_verilog(CFG)
    ports = re.search(r"^module top\(([^)]*)\)", v, re.M).group(1)
    assert sorted(p.strip() for p in ports.split(",")) == sorted(
        ["clk", "rx__valid", "rx__ready", "rx__payload", "tx__valid", "tx__ready", "tx__payload",
         "idle"])


def test_power_on_then_frames_match_reference():
    """Neither ready nor idle while the power-on reset holds; then replies byte for byte as the
    reference's, with the reply stream under random back-pressure."""
    dut = EmulatorTop(CFG, byte_timeout=300)
    sb = Scoreboard(CFG)
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(5), max_vectors=2)
    frames = [gen.frame("INFO"), gen.frame("FORWARD", tile=0, b=2, n=5, x=np.arange(10) - 5),
              gen.frame("UPDATE", tile=1, b=1, ni=5, nj=7, x=np.arange(5) * 40,
                        d=np.arange(7) * -30), gen.frame("COUNTERS", tile=1)]
    for f in frames:
        sb.sent(f)
    data, out, early, done = b"".join(frames), bytearray(), [], []
    rng = random.Random(5)

    async def clock(ctx):
        while not done:
            ctx.set(dut.clk, 0)
            await ctx.delay(5e-9)
            ctx.set(dut.clk, 1)
            await ctx.delay(5e-9)

    async def tb(ctx):
        pos = 0
        for cycle in range(80_000):
            ready = rng.random() < 0.7
            ctx.set(dut.tx.ready, ready)
            ctx.set(dut.rx.valid, pos < len(data))
            ctx.set(dut.rx.payload, data[pos] if pos < len(data) else 0)
            await ctx.delay(1e-9)
            if cycle < POWER_ON_CYCLES:
                early.append((ctx.get(dut.rx.ready), ctx.get(dut.idle)))
            if ready and ctx.get(dut.tx.valid):
                out.append(ctx.get(dut.tx.payload))
            if pos < len(data) and ctx.get(dut.rx.ready):
                pos += 1
            await ctx.posedge(dut.clk)
            if pos == len(data) and ctx.get(dut.idle) and cycle > POWER_ON_CYCLES:
                break
        done.append(True)

    sim = Simulator(dut)
    sim.add_process(clock)
    sim.add_testbench(tb)
    sim.run()
    assert early == [(0, 0)] * POWER_ON_CYCLES
    sb.received += bytes(out)
    assert sb.compare() == len(frames)
