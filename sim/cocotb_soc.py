"""cocotb testbenches of the SoC: frames on the byte stream (or the UART pins) against the
reference executor.

The toplevel is `ohmflow.hdl.soc.SoC` exported as ``top``; the launcher (tests/soc) passes the
chip config name (``OHMFLOW_CONFIG``), the byte timeout in cycles the SoC was built with
(``OHMFLOW_TIMEOUT``), the UART divisor when the link is a UART (``OHMFLOW_UART``) and a frame
count (``OHMFLOW_FRAMES``). Every test ends by comparing each reply with the reference's.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge
from ohmflow.emulator.config import get_config
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard
from ohmflow.sim.cocotb_stream import StreamSink, StreamSource, random_pause, reset, start_clock

#: cycles the device may take no byte while bytes wait before a test fails as hung (a long
#: operation of the tiny config answers in far fewer)
STALL_CYCLES = 500_000


class TB:
    """Clock, reset, a frame driver on ``rx`` and a monitor on ``tx`` feeding the scoreboard."""

    def __init__(self, dut, idle: float = 0.2, stall: float = 0.3):
        self.dut = dut
        self.cfg = get_config(os.environ.get("OHMFLOW_CONFIG", "tiny"))
        self.timeout = int(os.environ["OHMFLOW_TIMEOUT"])
        self.frames = int(os.environ.get("OHMFLOW_FRAMES", "150"))
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED)
        self.sb = Scoreboard(self.cfg)
        self.gen = FrameGen(self.cfg, self.sb.ref.twin, self.rng, shapes=True, times=True)
        prng = random.Random(cocotb.RANDOM_SEED)
        self.source = StreamSource(dut, "rx", pause=random_pause(prng, idle))
        self.sink = StreamSink(dut, "tx", pause=random_pause(prng, stall, burst=20),
                               on_byte=self.sb.on_byte)

    async def start(self) -> None:
        start_clock(self.dut)
        await reset(self.dut)

    async def send(self, data: bytes) -> None:
        """Queue bytes (the driver streams them with idle cycles; the DUT may stall them)."""
        self.sb.sent(data)
        self.source.send(data)

    async def wait_sent(self, max_stall: int = STALL_CYCLES) -> None:
        """Until the design took every queued byte; AssertionError if it takes none for
        ``max_stall`` cycles while bytes are waiting (a hung device fails instead of waiting)."""
        last, still = self.source.sent, 0
        while self.source.queue:
            await ClockCycles(self.dut.clk, 100)
            if self.source.sent != last:
                last, still = self.source.sent, 0
                continue
            still += 100
            if still >= max_stall:
                got, want = self.sb.replies()
                raise AssertionError(
                    f"the device took no byte for {max_stall} cycles: {self.source.sent} bytes "
                    f"taken, {len(self.source.queue)} waiting; {got} of {want} replies")

    async def silence(self) -> None:
        """Let the line go quiet for longer than the byte timeout, after every byte was taken."""
        await self.wait_sent()
        await ClockCycles(self.dut.clk, self.timeout + 20)
        self.sb.silence()

    async def finish(self, max_cycles: int = 2_000_000) -> None:
        """Until every byte was taken and every reply came, then compare them with the
        reference's; AssertionError on a stall (`wait_sent`) or a missing reply after
        ``max_cycles``."""
        await self.wait_sent()
        await wait_replies(self.dut, self.sb, max_cycles)
        await ClockCycles(self.dut.clk, 50)
        n = self.sb.compare()
        self.dut._log.info(f"{n} replies identical to the reference")


async def wait_replies(dut, sb: Scoreboard, max_cycles: int) -> None:
    """Until the device sent as many replies as the reference; AssertionError on timeout."""
    for _ in range(0, max_cycles, 100):
        got, want = sb.replies()
        if got >= want:
            return
        await ClockCycles(dut.clk, 100)
    got, want = sb.replies()
    raise AssertionError(f"timeout: {got} of {want} replies after {max_cycles} cycles")


@cocotb.test()
async def random_commands(dut):
    """Random commands, settings and data, with idle cycles and back-pressure."""
    tb = TB(dut)
    await tb.start()
    await tb.send(tb.gen.frame("INFO"))
    for _ in range(tb.frames):
        await tb.send(tb.gen.command())
    await tb.finish()


@cocotb.test()
async def malformed_frames(dut):
    """Damaged frames, garbage, cut frames and timeouts, unknown opcodes, bad lengths and
    retransmissions, between valid commands; weights and replies must follow the reference."""
    tb = TB(dut, idle=0.1, stall=0.1)
    await tb.start()
    for _ in range(tb.frames // 2):
        data, cut = tb.gen.malformed()
        await tb.send(data)
        if cut:
            await tb.silence()
        await tb.send(tb.gen.command())
    for t in range(tb.cfg.tiles):  # the state must not have moved where the reference did not
        await tb.send(tb.gen.frame("READ", tile=t, k0=0, k=int(np.prod(tb.sb.ref.twin.settings
                                                                       .shapes[t]))))
    await tb.finish()


@cocotb.test()
async def back_to_back_no_stalls(dut):
    """Frames streamed without idle cycles into a sink that never stalls."""
    tb = TB(dut, idle=0.0, stall=0.0)
    await tb.start()
    for _ in range(tb.frames // 3):
        await tb.send(tb.gen.command())
    await tb.finish()


@cocotb.test()
async def large_frames(dut):
    """Frames with the most vectors, samples or devices a frame can carry, among others."""
    tb = TB(dut, idle=0.05, stall=0.1)
    await tb.start()
    for _ in range(tb.frames):
        await tb.send(tb.gen.large())
        await tb.send(tb.gen.command())
    await tb.finish(max_cycles=20_000_000)


# ----- the UART variant: frames on the serial pins -----
async def uart_send(dut, data: bytes, divisor: int) -> None:
    for byte in data:
        for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
            dut.rx_pin.value = bit
            await ClockCycles(dut.clk, divisor)


async def uart_receive(dut, divisor: int, out: bytearray) -> None:
    while True:
        await FallingEdge(dut.clk)
        if dut.tx_pin.value == 0:
            await ClockCycles(dut.clk, divisor // 2, rising=False)
            bits = []
            for _ in range(9):
                await ClockCycles(dut.clk, divisor, rising=False)
                bits.append(int(dut.tx_pin.value))
            assert bits[8] == 1, "stop bit low on tx_pin"
            out.append(sum(b << i for i, b in enumerate(bits[:8])))


@cocotb.test()
async def uart_link(dut):
    """Commands through the UART pins, one at a time as a host does (stop and wait)."""
    divisor = int(os.environ["OHMFLOW_UART"])
    cfg = get_config(os.environ.get("OHMFLOW_CONFIG", "tiny"))
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(cocotb.RANDOM_SEED), max_vectors=2)
    received = bytearray()
    dut.rx_pin.value = 1
    start_clock(dut)
    await reset(dut)
    cocotb.start_soon(uart_receive(dut, divisor, received))
    frames = [gen.frame("INFO")] + [gen.command() for _ in range(int(os.environ.get(
        "OHMFLOW_FRAMES", "12")))]
    sb.received = received
    for f in frames:
        sb.sent(f)
        await uart_send(dut, f, divisor)
        await wait_replies(dut, sb, 200_000)
    dut._log.info(f"{sb.compare()} replies over the UART identical to the reference")
