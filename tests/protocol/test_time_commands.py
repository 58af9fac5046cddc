"""SET_PHYSICS, GET_PHYSICS and ADVANCE in the reference executor (numerics §11): on an engine of
config.TIME_ENGINES they do what the twin's own calls do; elsewhere, and out of range, they are
refused with BAD_ARGUMENT and change nothing."""

import numpy as np
import pytest
from ohmflow.emulator import config as C
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PHYSICS_NAMES, PRESETS, RATE_BITS, T_MAX, T_MIN, DeviceModel
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.twin import Twin

CFG = PRESETS["tiny"]  # 2 tiles of 5 x 7: odd sizes


def chip() -> Twin:
    twin = Twin(CFG, device_map=fabricate(CFG, DeviceModel.soft_bounds(), 3))
    rng = np.random.default_rng(5)
    for t in range(CFG.tiles):
        twin.program(t, rng.integers(-9000, 9000, (CFG.cols, CFG.rows)))
    return twin


def call(ex: CommandExecutor, name: str, seq: int = 1, **values) -> tuple[int, dict | None]:
    raw = P.encode_request(name, seq, values, CFG)
    (r,) = P.FrameParser().feed(ex.feed(raw))
    status = r.payload[0]
    ok = status == P.ST["OK"]
    return status, P.decode_payload(P.command(name).reply, r.payload[1:], CFG) if ok else None


def physics(**kw) -> dict:
    return {"drift_nu": 0, "drift_nu_dtod": 0, "decay_rate": 0, "decay_dtod": 0,
            "temperature": 300, "device_key": 0, **kw}


def state(twin: Twin):
    return (twin.weights.copy(), twin.settings, twin.device_key, twin.time, list(twin.ages),
            twin.nonce)


def same(a, b) -> bool:
    return np.array_equal(a[0], b[0]) and a[1:] == b[1:]


@pytest.fixture
def timed():
    """The tiny chip's engine (the tile) is among the engines with time and temperature."""
    assert C.has_time(CFG)


@pytest.mark.parametrize("name", P.TIME_COMMANDS)
def test_an_engine_without_time_refuses_them_and_changes_nothing(name, monkeypatch):
    monkeypatch.setattr(C, "TIME_ENGINES", tuple(e for e in C.TIME_ENGINES if e != CFG.engine))
    assert not C.has_time(CFG)  # an engine without time (the iCEBreaker's, by TIME_UNFIT)
    ex = CommandExecutor(chip())
    before = state(ex.twin)
    values = {"ADVANCE": {"dt": 3_600_000}, "SET_PHYSICS": physics(temperature=350),
              "GET_PHYSICS": {}}[name]
    assert call(ex, name, **values) == (P.ST["BAD_ARGUMENT"], None)
    # a payload of the wrong length is BAD_LENGTH first, as for every command
    cmd = P.command(name)
    raw = P.encode_payload(cmd.request, values, CFG) + b"\0"
    (r,) = P.FrameParser().feed(ex.feed(P.encode_frame(cmd.opcode, 2, raw)))
    assert r.payload[0] == P.ST["BAD_LENGTH"]
    assert same(before, state(ex.twin))


def test_commands_do_what_the_twin_does(timed):
    """SET_PHYSICS, ADVANCE at 1 s, 1 h, 30 days with drift and decay at 350 K, reads: the
    executor's chip ends as a twin driven by its own calls."""
    ex, ref = CommandExecutor(chip()), chip()
    codes = physics(drift_nu=4000, drift_nu_dtod=900, decay_rate=2**48 // 10**9,
                    decay_dtod=5000, temperature=350, device_key=0xC0FFEE)
    assert call(ex, "SET_PHYSICS", **codes) == (P.ST["OK"], {})
    ref.set(**{n: codes[n] for n in PHYSICS_NAMES})
    ref.load_device_key(codes["device_key"])
    for seq, dt in enumerate((1000, 3_600_000, 30 * 86_400_000), start=2):
        status, v = call(ex, "ADVANCE", seq, dt=dt)
        assert status == P.ST["OK"] and v["time"] == ref.advance(dt)
        assert np.array_equal(ex.twin.weights, ref.weights)
    assert not np.array_equal(ex.twin.weights, chip().weights)  # time did something
    status, v = call(ex, "GET_PHYSICS", 9)
    assert status == P.ST["OK"]
    assert {n: v[n] for n in codes} == codes
    assert (v["time"], v["tiles"], v["ages"].tolist()) == (ref.time, CFG.tiles, ref.ages)
    x = np.random.default_rng(1).integers(-63, 64, (3, CFG.rows))
    assert all(np.array_equal(a, b) for a, b in zip(ex.twin.forward(1, x), ref.forward(1, x),
                                                    strict=True))


def test_a_repeated_advance_is_answered_from_the_cache(timed):
    ex = CommandExecutor(chip())
    call(ex, "SET_PHYSICS", **physics(drift_nu=6000))
    first = call(ex, "ADVANCE", 7, dt=50_000)
    assert call(ex, "ADVANCE", 7, dt=50_000) == first and ex.twin.time == 50_000
    assert call(ex, "ADVANCE", 8, dt=50_000)[1]["time"] == 100_000


def test_program_restarts_an_age_and_reset_keeps_the_key(timed):
    ex = CommandExecutor(chip())
    call(ex, "SET_PHYSICS", **physics(temperature=400, device_key=77))
    call(ex, "ADVANCE", 2, dt=1000)
    w = np.zeros(CFG.rows * CFG.cols, dtype=np.int64)
    assert call(ex, "PROGRAM", 3, tile=1, k0=0, k=w.size, w=w)[0] == P.ST["OK"]
    ages = call(ex, "GET_PHYSICS", 4)[1]["ages"].tolist()
    assert ages[1] == 0 and ages[0] == ex.twin.ages[0] > 1000  # 1 s at 400 K ages faster
    assert call(ex, "RESET", 5)[0] == P.ST["OK"]
    v = call(ex, "GET_PHYSICS", 6)[1]
    assert v == {**v, **physics(device_key=77), "time": 0} and not v["ages"].any()


@pytest.mark.parametrize("bad", [{"temperature": T_MIN - 1}, {"temperature": T_MAX + 1},
                                 {"decay_rate": 2**RATE_BITS}])
def test_settings_out_of_range_are_refused(timed, bad):
    ex = CommandExecutor(chip())
    call(ex, "SET_PHYSICS", **physics(drift_nu=100, device_key=5))
    before = state(ex.twin)
    assert call(ex, "SET_PHYSICS", 2, **physics(**bad))[0] == P.ST["BAD_ARGUMENT"]
    assert same(before, state(ex.twin))


def test_an_advance_past_the_64_bit_time_is_refused(timed):
    ex = CommandExecutor(chip())
    call(ex, "SET_PHYSICS", **physics(drift_nu=3000))
    call(ex, "ADVANCE", 2, dt=40_000)
    ex.twin.time = 2**64 - 10  # a chip that ran for 584 million years
    before = state(ex.twin)
    assert call(ex, "ADVANCE", 3, dt=10)[0] == P.ST["BAD_ARGUMENT"]
    assert same(before, state(ex.twin))
    assert call(ex, "ADVANCE", 4, dt=9)[1]["time"] == 2**64 - 1
