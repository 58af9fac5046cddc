"""A fixed stream of frames through the SoC in the Amaranth simulator: the replies match the
reference executor, and the cycle of every byte in and out matches a recorded trace.

The trace pins the gateware's timing as a whole (command processor, tile controller, datapath):
a restructuring must leave it unchanged. A change that alters timing on purpose updates
``TRACE`` with ``python -m tests.soc.test_cycle_trace`` and says so.
"""

from __future__ import annotations

import hashlib

import numpy as np
from amaranth.sim import Simulator
from ohmflow.emulator.config import get_config
from ohmflow.hdl.soc import SoC
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

CFG = get_config("tiny")
BYTE_TIMEOUT = 300
#: (bytes in, bytes out, last cycle, sha256 of the (cycle, direction, byte) list)
#: (LOAD_SHAPE and READ_SHAPE, new opcodes, moved frame 11's unknown opcode from 0x9E to 0x9F:
#: same bytes otherwise, same cycle for every byte; the frames of before still give the trace
#: of before, 07e46387…)
#: (SET_PHYSICS, GET_PHYSICS and ADVANCE, new opcodes 0x05, 0x06, 0x16, moved frame 5's unknown
#: opcode from 0x06 to 0x08 and frame 11's from 0x9F to 0xA0: the gateware before them gives
#: this same trace for these frames, byte for byte and cycle for cycle)
TRACE = (1054, 1198, 7851, "2b5400b4688c4464a59984a75d66ac7fffdf5fa581ac5b5d6cf4be324c49eda6")


def stream(seed: int = 21, commands: int = 36):
    """Frames (bytes, silence after) with their scoreboard: random commands of every kind,
    some malformed, a repeat, cut frames followed by silence."""
    sb = Scoreboard(CFG)
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(seed), max_vectors=2)
    frames = []
    for k in range(commands):
        if k % 6 == 5:
            data, cut = gen.malformed()
        else:
            data, cut = gen.command(), False
        sb.sent(data)
        if cut:
            sb.silence()
        frames.append((data, cut))
    return frames, sb


def run(frames) -> tuple[list[tuple[int, int, int]], bytes]:
    """Send the frames (idle ``2 * BYTE_TIMEOUT`` cycles after a cut one); return the
    (cycle, 0 = in / 1 = out, byte) events and the bytes out."""
    dut = SoC(CFG, byte_timeout=BYTE_TIMEOUT)
    events, out = [], bytearray()

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        cycle = 0
        for data, cut in frames:
            pos = 0
            while pos < len(data):
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, data[pos])
                _, _, ready, tx_valid, tx_byte = await ctx.tick().sample(
                    dut.rx.ready, dut.tx.valid, dut.tx.payload)
                if ready:
                    events.append((cycle, 0, data[pos]))
                    pos += 1
                if tx_valid:
                    events.append((cycle, 1, tx_byte))
                    out.append(tx_byte)
                cycle += 1
            ctx.set(dut.rx.valid, 0)
            quiet = 2 * BYTE_TIMEOUT if cut else 0
            while quiet > 0 or not ctx.get(dut.idle):
                _, _, tx_valid, tx_byte = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
                if tx_valid:
                    events.append((cycle, 1, tx_byte))
                    out.append(tx_byte)
                cycle += 1
                quiet -= 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return events, bytes(out)


def summary(events) -> tuple[int, int, int, str]:
    n_in = sum(1 for e in events if e[1] == 0)
    digest = hashlib.sha256(repr(events).encode()).hexdigest()
    return n_in, len(events) - n_in, events[-1][0], digest


def test_replies_and_their_cycles_are_unchanged():
    frames, sb = stream()
    events, out = run(frames)
    sb.received += out
    assert sb.compare() > 20
    assert summary(events) == TRACE


if __name__ == "__main__":
    print(summary(run(stream()[0])[0]))
