"""The SoC in the Amaranth simulator: a few frames against the reference, and what only the
gateware decides (a reply too large for a frame)."""

import numpy as np
from amaranth.sim import Simulator
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import get_config
from ohmflow.hdl.soc import SoC
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

CFG = get_config("tiny")


def run(frames: list[bytes], max_cycles: int = 60_000) -> bytes:
    """Stream ``frames`` into the SoC's rx and return everything it sends on tx."""
    dut = SoC(CFG, byte_timeout=300)
    data, out = b"".join(frames), bytearray()

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        pos = 0
        for _ in range(max_cycles):
            ctx.set(dut.rx.valid, pos < len(data))
            ctx.set(dut.rx.payload, data[pos] if pos < len(data) else 0)
            if ctx.get(dut.tx.valid):
                out.append(ctx.get(dut.tx.payload))
            if pos < len(data) and ctx.get(dut.rx.ready):
                pos += 1
            await ctx.tick()
            if pos == len(data) and ctx.get(dut.idle):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return bytes(out)


def test_frames_match_reference():
    sb = Scoreboard(CFG)
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(3), max_vectors=2)
    frames = [gen.frame("INFO"), gen.frame("GET"),
              gen.frame("PROGRAM", tile=0, k0=4, k=9, w=np.arange(9) * 300 - 1200),
              gen.frame("READ", tile=0, k0=0, k=35), gen.frame("FORWARD", tile=0, b=2, n=5,
                                                              x=np.arange(10) - 5),
              gen.frame("COUNTERS", tile=0), gen.frame("PULSE", tile=0, axis=2, index=0, n=7,
                                                       counts=np.zeros(7, dtype=int))]
    for f in frames:
        sb.sent(f)
    sb.received += run(frames)
    assert sb.compare() == len(frames)


def test_reply_larger_than_a_frame_is_refused():
    gen = FrameGen(CFG, Scoreboard(CFG).ref.twin, np.random.default_rng(4))
    b = gen.most("FORWARD", "b", n=CFG.rows, m=CFG.cols) + 1
    frame = gen.frame("FORWARD", tile=0, b=b, n=CFG.rows, x=np.zeros(b * CFG.rows, dtype=int))
    replies = P.FrameParser().feed(run([frame, gen.frame("INFO")]))
    assert [r.payload[:1] for r in replies] == [bytes((P.ST["BAD_ARGUMENT"],)),
                                                bytes((P.ST["OK"],))]


def test_the_tile_checks_step_shapes():
    """LOAD_SHAPE / READ_SHAPE on the tile engine (numerics §5.4.1): the linear shape, a table
    and the linear nodes under a table mode are taken and read back; a mode beyond the three,
    and the linear mode with a node off 1.0, are BAD_ARGUMENT and keep the loaded shape; every
    reply byte for byte the reference's."""
    from ohmflow.emulator.config import DeviceModel
    from ohmflow.emulator.step_shape import linear_shape, step_shape

    sb = Scoreboard(CFG)
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(5), max_vectors=2)
    lin, table = linear_shape(), step_shape(DeviceModel(model="ExpStep"))
    off = lin.up.copy()
    off[64] += 1
    frames = [gen.frame("LOAD_SHAPE", mode=0, up=lin.up, down=lin.down),
              gen.frame("READ_SHAPE"),
              gen.frame("LOAD_SHAPE", mode=table.code, up=table.up, down=table.down),
              gen.frame("READ_SHAPE"),
              gen.frame("LOAD_SHAPE", mode=3, up=table.up, down=table.down),
              gen.frame("LOAD_SHAPE", mode=0, up=off, down=lin.down),
              gen.frame("READ_SHAPE"),
              gen.frame("LOAD_SHAPE", mode=1, up=lin.up, down=lin.down),
              gen.frame("READ_SHAPE")]
    for f in frames:
        sb.sent(f)
    sb.received += run(frames)
    assert sb.compare() == len(frames)
    statuses = [r.payload[0] for r in P.FrameParser().feed(bytes(sb.expected))]
    assert statuses == [P.ST["OK"]] * 4 + [P.ST["BAD_ARGUMENT"]] * 2 + [P.ST["OK"]] * 3


def test_the_tile_executes_time_and_temperature():
    """SET_PHYSICS, GET_PHYSICS and ADVANCE on the tile engine (config.TIME_ENGINES, numerics
    §11): an ADVANCE of an hour at 350 K with drift, decay and their spreads moves the states
    as the reference's, a wrong length is BAD_LENGTH, T = 451 K is BAD_ARGUMENT and changes
    nothing, RESET restores the defaults and keeps the key; every reply byte for byte."""
    from ohmflow.emulator.config import TIME_ENGINES

    assert CFG.engine in TIME_ENGINES
    sb = Scoreboard(CFG)
    gen = FrameGen(CFG, sb.ref.twin, np.random.default_rng(6), max_vectors=2)
    physics = dict(drift_nu=4000, drift_nu_dtod=900, decay_rate=2**30, decay_dtod=2000,
                   temperature=350, device_key=9)
    cmd = P.command("ADVANCE")
    frames = [gen.frame("PROGRAM", tile=1, k0=0, k=35, w=np.arange(35) * 200 - 3500),
              gen.frame("SET_PHYSICS", **physics), gen.frame("GET_PHYSICS"),
              gen.frame("ADVANCE", dt=3_600_000),
              P.encode_frame(cmd.opcode, 200, b"\x01\x02\x03"),
              gen.frame("READ", tile=1, k0=0, k=35), gen.frame("GET"),
              gen.frame("SET_PHYSICS", **{**physics, "temperature": 451}),
              gen.frame("GET_PHYSICS"), gen.frame("RESET"), gen.frame("GET_PHYSICS")]
    for f in frames:
        sb.sent(f)
    sb.received += run(frames, max_cycles=200_000)
    assert sb.compare() == len(frames)
    statuses = [r.payload[0] for r in P.FrameParser().feed(bytes(sb.received))]
    assert statuses == [P.ST[s] for s in ("OK", "OK", "OK", "OK", "BAD_LENGTH", "OK", "OK",
                                          "BAD_ARGUMENT", "OK", "OK", "OK")]
    assert sb.ref.twin.device_key == 9 and sb.ref.twin.time == 0
