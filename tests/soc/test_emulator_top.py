"""The emulator's top: the SoC behind registered byte ports with a power-on reset."""

import random
import re

import numpy as np
from amaranth.sim import Simulator
from ohmflow.emulator.config import get_config
from ohmflow.hdl.emulator_top import POWER_ON_CYCLES, EmulatorTop
from ohmflow.hdl.lib.clock_gate import GATE_TAIL
from ohmflow.hdl.soc import SoC
from ohmflow.hdl.tile.tile_io import Op, op_cycles
from ohmflow.sim import verilator_server
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

CFG = get_config("tiny")


def test_ports_have_no_reset():
    v = verilator_server.soc_verilog(CFG)
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


def _forward_and_update(sb: Scoreboard, seed: int, b: int, read_back: bool = False
                        ) -> list[bytes]:
    """A FORWARD frame of 2 vectors on tile 0, then an UPDATE frame of ``b`` random samples on
    tile 1 (5 x 7 devices); with ``read_back``, then a FORWARD frame on tile 1, whose reply
    shows the updated weights."""
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(seed), max_vectors=2)
    rng = np.random.default_rng(seed)
    frames = [gen.frame("FORWARD", tile=0, b=2, n=5, x=np.arange(10) - 5),
              gen.frame("UPDATE", tile=1, b=b, ni=5, nj=7, x=rng.integers(-255, 256, b * 5),
                        d=rng.integers(-255, 256, b * 7))]
    if read_back:
        frames.append(gen.frame("FORWARD", tile=1, b=2, n=5, x=rng.integers(-63, 64, 10)))
    return frames


def test_gated_tile_clock_runs_only_for_the_tile():
    """The tile's clock is off while a frame is received and after its tail; it runs at least
    the operation's busy cycles; the replies are the reference's."""
    dut = SoC(CFG, byte_timeout=300, gate_tile_clock=True)
    sb = Scoreboard(CFG)
    b = 8
    frames = _forward_and_update(sb, seed=6, b=b)
    log = []  # per frame: clock-on cycles while receiving, after the reply, in all

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        out = bytearray()
        for f in frames:
            sb.sent(f)
            on_rx = on_all = 0
            for byte in f:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                _, _, ready, clock_on = await ctx.tick().sample(dut.rx.ready, dut.tile_clock_on)
                on_rx += clock_on
                while not ready:
                    _, _, ready, clock_on = await ctx.tick().sample(dut.rx.ready,
                                                                    dut.tile_clock_on)
                    on_rx += clock_on
            ctx.set(dut.rx.valid, 0)
            for _ in range(20_000):
                _, _, valid, byte, idle, clock_on = await ctx.tick().sample(
                    dut.tx.valid, dut.tx.payload, dut.idle, dut.tile_clock_on)
                on_all += clock_on
                if valid:
                    out.append(byte)
                if idle and not valid:
                    break
            tail = [await ctx.tick().sample(dut.tile_clock_on) for _ in range(GATE_TAIL + 8)]
            log.append((on_rx, on_all, [t[-1] for t in tail]))
        sb.received += bytes(out)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert sb.compare() == len(frames)
    for *_, tail in log:
        assert tail[-4:] == [0] * 4  # stopped once the tail has run out
    assert log[1][0] == 0  # the UPDATE frame's bytes arrive with the tile's clock stopped
    upd_busy = op_cycles(CFG, sb.ref.twin.settings, Op.UPDATE, tile=1, count=b)
    assert log[1][1] >= upd_busy


def _gated_soc(monkeypatch):
    """A `SoC` with gated clocks and its `TileController` (recorded as it is made)."""
    from ohmflow.hdl import soc as soc_module

    made = []

    class Recorded(soc_module.TileController):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(soc_module, "TileController", Recorded)
    dut = SoC(CFG, byte_timeout=300, gate_tile_clock=True)
    sim = Simulator(dut)  # elaborates the SoC, so its TileController exists from here
    return dut, made[0], sim


def _clock_ticks(dut, sim, sb, frames, clock_on):
    """Run ``frames`` through the SoC; returns the ticks in which ``clock_on`` was high, the tick
    at which each frame's first byte was offered, and the ticks of the tile's clock."""
    counts, on, starts = {"tile": 0, "ticks": 0}, [], []

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        out = bytearray()

        async def tick():
            _, _, *got = await ctx.tick().sample(clock_on, dut.tile_clock_on, dut.rx.ready,
                                                 dut.tx.valid, dut.tx.payload, dut.idle)
            if got[0]:
                on.append(counts["ticks"])
            counts["tile"] += got[1]
            counts["ticks"] += 1
            return got[2:]

        for f in frames:
            sb.sent(f)
            starts.append(counts["ticks"])
            for byte in f:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                while not (await tick())[0]:
                    pass
            ctx.set(dut.rx.valid, 0)
            for _ in range(20_000):
                _, valid, byte, idle = await tick()
                if valid:
                    out.append(byte)
                if idle and not valid:
                    break
        sb.received += bytes(out)

    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert sb.compare() == len(frames)
    return on, starts, counts["tile"]


def test_table_mode_clock_stands_still_in_the_linear_mode(monkeypatch):
    """In the linear mode (the reset state) the array's table-mode registers are never clocked
    through FORWARD and UPDATE frames, while the tile's clock runs; the replies are the
    reference's."""
    dut, tc, sim = _gated_soc(monkeypatch)
    sb = Scoreboard(CFG)
    shape_cycles, _, tile = _clock_ticks(dut, sim, sb, _forward_and_update(sb, seed=7, b=4),
                                         tc.shape_clock_on)
    assert tile > 0
    # the gate's enable starts high (power-on), so only the first cycle may be clocked
    assert shape_cycles in ([], [0]), shape_cycles


def test_pulse_and_program_path_clock_stands_still_through_reads(monkeypatch):
    """The array's pulse and program path is not clocked through a FORWARD frame (after the
    power-on tail), and is through the UPDATE frame after it; the replies are the reference's,
    the last a FORWARD through the updated devices: every pulse landed as in the twin."""
    dut, tc, sim = _gated_soc(monkeypatch)
    sb = Scoreboard(CFG)
    frames = _forward_and_update(sb, seed=8, b=4, read_back=True)
    on, (fwd, upd, _), _ = _clock_ticks(dut, sim, sb, frames, tc.store_clock_on)
    assert [t for t in on if fwd + GATE_TAIL < t < upd] == []
    assert len([t for t in on if t >= upd]) >= 4  # at least one cycle a sample's beats
