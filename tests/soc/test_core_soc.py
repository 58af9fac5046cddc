"""The rv32 engine (RV32 core + firmware, `CoreSoC`) in Verilator against the reference device.

The same bytes in must give the same bytes out as `CommandExecutor(Twin(cfg))`, for the
iCEBreaker's config and for an odd-sized one (2 tiles of 5x7): random valid and refused
commands, frames as large as the protocol allows, retransmissions; the cycles counter counts the
firmware's work; the model rests between frames. (Training on it: tests/host; link faults and
fuzzing: tests/reliability.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy as np
import pytest
import serial
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS, DeviceModel, Settings, dw_std_code, get_config
from ohmflow.emulator.fabrication import FIELDS, fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.sim import verilator_server
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

from .test_emulator_e2e import call

#: the odd-sized chip of the tile tests, on the rv32 engine
ODD = dataclasses.replace(PRESETS["tiny"], lanes=1, engine="rv32", name="tiny-rv32")
CONFIGS = {"icebreaker": get_config("icebreaker"), "tiny-rv32": ODD}


@contextlib.contextmanager
def served(cfg):
    """(cfg, server process, serial link) of a running emulator server of ``cfg``."""
    exe = verilator_server.build(cfg)
    proc, port = verilator_server.start(exe)
    link = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=10)
    try:
        yield cfg, proc, link
    finally:
        link.close()
        verilator_server.stop(proc)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def server(request):
    with served(CONFIGS[request.param]) as s:
        yield s


def session(cfg, link, rng_seed: int, frames: int) -> int:
    """``frames`` random commands one at a time; every reply compared with the reference's."""
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(rng_seed), max_vectors=6, shapes=True,
                   times=True)
    first = gen.frame("INFO")  # a session starts with INFO: it replaces the reply cache
    for n in range(frames):
        f = first if n == 0 else gen.last if n % 25 == 0 else \
            gen.large() if n % 10 == 3 else gen.command()
        sb.sent(f)
        reply = call(link, f, timeout=60.0)
        sb.received += P.encode_frame(reply.opcode, reply.seq, reply.payload)
    return sb.compare()


def test_random_sessions_are_byte_exact(server):
    cfg, _proc, link = server
    assert session(cfg, link, 11, 250) == 250


def test_info_reports_the_engine_and_counters_include_cycles(server):
    cfg, _proc, link = server
    info = call(link, P.encode_frame(P.command("INFO").opcode, 1, b""))
    v = P.decode_payload(P.command("INFO").reply, info.payload[1:], cfg)
    assert P.config_from_info(v) == cfg and cfg.engine == "rv32"

    def counters(seq):
        r = call(link, P.encode_frame(P.command("COUNTERS").opcode, seq, bytes([0])))
        v = P.decode_payload(P.command("COUNTERS").reply, r.payload[1:], cfg)
        assert v["n"] == len(P.TABLE.counters)
        return dict(zip(P.TABLE.counters, (int(x) for x in v["values"]), strict=True))

    def forward(seq, b):
        x = np.ones(b * cfg.rows, dtype=np.int64)
        payload = P.encode_payload(P.command("FORWARD").request,
                                   {"tile": 0, "b": b, "n": cfg.rows, "x": x}, cfg)
        return call(link, P.encode_frame(P.command("FORWARD").opcode, seq, payload))

    call(link, P.encode_frame(P.command("RESET").opcode, 2, b""))
    c0 = counters(3)
    assert c0["cycles"] == 0 and c0["fwd_vectors"] == 0
    forward(4, 1)
    c1 = counters(5)
    forward(6, 4)
    c2 = counters(7)
    one, four = c1["cycles"] - c0["cycles"], c2["cycles"] - c1["cycles"]
    # the firmware's cycles grow with the work: at least one multiply-add a device
    assert one >= cfg.rows * cfg.cols and 3 * one < four < 5 * one, (one, four)
    assert (c1["fwd_vectors"], c2["fwd_vectors"]) == (1, 5)
    assert c2["macs"] == 5 * cfg.rows * cfg.cols


def test_the_model_rests_while_no_byte_arrives(server):
    """Between frames the core waits for a byte and the SoC reports idle: the harness stops
    clocking it (the emulator's cycle count stands still while the line is quiet)."""
    _cfg, proc, link = server
    call(link, P.encode_frame(P.command("GET").opcode, 9, b""))
    before = verilator_server.stats(proc)["cycles"]
    time.sleep(0.3)
    after = verilator_server.stats(proc)["cycles"]
    assert after - before < 5000, (before, after)


@pytest.mark.parametrize("model", ["ExpStep", "PowStep", "PiecewiseStep"])
def test_step_shape_models_update_as_the_twin(server, model):
    """numerics §5.4.1 on the firmware: a fabricated map (every device its own range, so its own
    rinv), the model's tables (LOAD_SHAPE), random states, stochastic updates with c2c noise and
    deterministic pulses on every tile; every reply byte for byte the reference's. The same
    frames without the table give other states (the table is what is tested)."""
    cfg, _proc, link = server
    kw = {"PiecewiseStep": {"piecewise_up": (1.5, 1.0, 0.4, 0.1),
                            "piecewise_down": (0.2, 0.7, 1.0, 2.5)}}
    dev = DeviceModel(model=model, dw_min=0.01, **kw.get(model, {}))
    shape, dmap = step_shape(dev), fabricate(cfg, dev, 3)
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(21))
    rng = np.random.default_rng(22)
    frames = [gen.frame("INFO"), gen.frame("SET", **{**P.settings_fields(
        Settings.default(cfg).replace(cfg, seed=5, dw_std=dw_std_code(0.3))), "restart": 1})]
    devices = cfg.rows * cfg.cols
    k = gen.most("LOAD_MAP", "k")
    for t in range(cfg.tiles):
        flat = {f: getattr(dmap, f)[t].ravel() for f in FIELDS}
        for k0 in range(0, devices, k):
            part = {f: a[k0:k0 + k] for f, a in flat.items()}
            frames.append(gen.frame("LOAD_MAP", tile=t, k0=k0, k=len(part["su"]), **part))
    shape_frame = gen.frame("LOAD_SHAPE", mode=shape.code, up=shape.up, down=shape.down)
    frames += [shape_frame, gen.frame("READ_SHAPE")]
    for t in range(cfg.tiles):
        w = rng.integers(-12000, 12000, devices)
        step = gen.most("PROGRAM", "k")
        frames += [gen.frame("PROGRAM", tile=t, k0=k0, k=len(w[k0:k0 + step]),
                             w=w[k0:k0 + step]) for k0 in range(0, devices, step)]
        for _ in range(3):
            frames.append(gen.frame("UPDATE", tile=t, b=4, ni=cfg.rows, nj=cfg.cols,
                                    x=rng.integers(-256, 257, 4 * cfg.rows),
                                    d=rng.integers(-256, 257, 4 * cfg.cols)))
        frames += [gen.frame("PULSE", tile=t, axis=0, index=1, n=cfg.cols,
                             counts=rng.integers(-cfg.bl_max, cfg.bl_max + 1, cfg.cols)),
                   gen.frame("PULSE", tile=t, axis=1, index=cfg.cols - 1, n=cfg.rows,
                             counts=rng.integers(-cfg.bl_max, cfg.bl_max + 1, cfg.rows)),
                   gen.frame("READ", tile=t, k0=0, k=min(devices, gen.most("READ", "k")))]
    for f in frames:
        sb.sent(f)
        reply = call(link, f, timeout=120.0)
        sb.received += P.encode_frame(reply.opcode, reply.seq, reply.payload)
    assert sb.compare() == len(frames)
    assert sb.ref.twin.read_step_shape().equals(shape)
    linear = Scoreboard(cfg)
    for f in frames:
        if f != shape_frame:
            linear.sent(f)

    def last_reply(data):
        return P.FrameParser().feed(bytes(data))[-1].payload

    assert last_reply(linear.expected) != last_reply(sb.expected)  # the last READ differs


@pytest.mark.parametrize("model", ["ConstantStep", "PowStep"])
def test_time_and_temperature_as_the_twin(server, model):
    """numerics §11 on the firmware where config.has_time: a fabricated map, drift with spread
    and decay with spread (SET_PHYSICS, a device key), ADVANCE by 1 s, 1 h and 30 days at 350 K
    and at 450 K, reads (gain and noise factors) and updates (step factor, linear mode and a
    PowStep table) at 350 K, PROGRAM restarting a tile's age, GET_PHYSICS, an ADVANCE past the
    64-bit time refused, RESET; every reply byte for byte the reference's. Where the config has
    no time (the iCEBreaker) each of them is refused as the reference refuses it."""
    from ohmflow.emulator.config import has_time
    from ohmflow.emulator.physics import decay_rate_code, drift_nu_code, dtod_code

    cfg, _proc, link = server
    dev = DeviceModel(model=model, dw_min=0.01)
    dmap = fabricate(cfg, dev, 4)
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(31))
    rng = np.random.default_rng(32)
    devices = cfg.rows * cfg.cols
    frames = [gen.frame("INFO"), gen.frame("SET", **{**P.settings_fields(
        Settings.default(cfg).replace(cfg, seed=6, dw_std=dw_std_code(0.3),
                                      fwd_sigma=300, bwd_sigma=200)), "restart": 1})]
    k = gen.most("LOAD_MAP", "k")
    for t in range(cfg.tiles):
        flat = {f: getattr(dmap, f)[t].ravel() for f in FIELDS}
        frames += [gen.frame("LOAD_MAP", tile=t, k0=k0, k=len(flat["su"][k0:k0 + k]),
                             **{f: a[k0:k0 + k] for f, a in flat.items()})
                   for k0 in range(0, devices, k)]
    shape = step_shape(dev)  # ConstantStep: the linear shape (the chip keeps an earlier one)
    frames.append(gen.frame("LOAD_SHAPE", mode=shape.code, up=shape.up, down=shape.down))
    physics = dict(drift_nu=drift_nu_code(0.06), drift_nu_dtod=dtod_code("drift_nu_dtod", 0.02),
                   decay_rate=decay_rate_code(86400.0 * 10),
                   decay_dtod=dtod_code("decay_dtod", 0.3), temperature=350, device_key=0xA5A5)
    step, read = gen.most("PROGRAM", "k"), min(devices, gen.most("READ", "k"))

    def reads(t):
        return [gen.frame("READ", tile=t, k0=k0, k=min(read, devices - k0))
                for k0 in range(0, devices, read)]

    frames.append(gen.frame("SET_PHYSICS", **physics))
    for t in range(cfg.tiles):
        w = rng.integers(-12000, 12000, devices)
        frames += [gen.frame("PROGRAM", tile=t, k0=k0, k=len(w[k0:k0 + step]),
                             w=w[k0:k0 + step]) for k0 in range(0, devices, step)]
    for dt in (1000, 3_600_000, 30 * 86_400_000):
        frames += [gen.frame("ADVANCE", dt=dt), gen.frame("GET_PHYSICS"), *reads(0), *reads(1)]
    for t in range(cfg.tiles):  # reads and updates at 350 K
        frames += [gen.frame("FORWARD", tile=t, b=2, n=cfg.rows,
                             x=rng.integers(-63, 64, 2 * cfg.rows)),
                   gen.frame("BACKWARD", tile=t, b=2, n=cfg.cols,
                             x=rng.integers(-63, 64, 2 * cfg.cols)),
                   gen.frame("UPDATE", tile=t, b=3, ni=cfg.rows, nj=cfg.cols,
                             x=rng.integers(-256, 257, 3 * cfg.rows),
                             d=rng.integers(-256, 257, 3 * cfg.cols)),
                   gen.frame("PULSE", tile=t, axis=0, index=2, n=cfg.cols,
                             counts=rng.integers(-cfg.bl_max, cfg.bl_max + 1, cfg.cols)),
                   *reads(t)]
    w = rng.integers(-9000, 9000, devices)  # tile 1 programmed again: its age restarts
    frames += [gen.frame("PROGRAM", tile=1, k0=k0, k=len(w[k0:k0 + step]), w=w[k0:k0 + step])
               for k0 in range(0, devices, step)]
    frames += [gen.frame("SET_PHYSICS", **{**physics, "temperature": 450}),
               gen.frame("ADVANCE", dt=4_000_000_000), gen.frame("GET_PHYSICS"),
               *reads(0), *reads(1),
               gen.frame("SET_PHYSICS", **{**physics, "temperature": 451}),  # refused
               gen.frame("ADVANCE", dt=2**32 - 1), gen.frame("RESET"), gen.frame("GET_PHYSICS")]
    for f in frames:
        sb.sent(f)
        reply = call(link, f, timeout=120.0)
        sb.received += P.encode_frame(reply.opcode, reply.seq, reply.payload)
    assert sb.compare() == len(frames)
    statuses = [r.payload[0] for r in P.FrameParser().feed(bytes(sb.expected))]
    names = [P.command(f[2]).name for f in frames]
    timed = [s for s, n in zip(statuses, names, strict=True) if n in P.TIME_COMMANDS]
    if has_time(cfg):
        assert timed.count(P.ST["BAD_ARGUMENT"]) == 1 and sb.ref.twin.time == 0
        assert sb.ref.twin.device_key == 0xA5A5
    else:
        assert set(timed) == {P.ST["BAD_ARGUMENT"]}
