"""cocotb test of the echo design: checks the stream source and sink under idle and stalls."""

import os
import random

import cocotb
from cocotb.triggers import ClockCycles
from ohmflow.sim.cocotb_stream import StreamSink, StreamSource, random_pause, reset, start_clock


@cocotb.test()
async def echo_with_pauses(dut):
    mask = int(os.environ["ECHO_MASK"])
    rng = random.Random(cocotb.RANDOM_SEED)
    start_clock(dut)
    source = StreamSource(dut, "rx", pause=random_pause(rng, 0.3))
    sink = StreamSink(dut, "tx", pause=random_pause(rng, 0.5, burst=30))
    await reset(dut)
    data = rng.randbytes(600)
    source.send(data)
    got = await sink.wait_bytes(len(data), max_cycles=20_000)
    assert got == bytes(b ^ mask for b in data)
    await ClockCycles(dut.clk, 2)
    assert dut.idle.value == 1
