"""The reference device: exact replies, and no state change on malformed or refused input."""

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS, DeviceModel, Settings
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import SHAPE_MODES, linear_shape, step_shape
from ohmflow.emulator.twin import Twin

CFG = PRESETS["tiny"]  # tiles 2, rows (n_in) 5, cols (n_out) 7


def prepared() -> CommandExecutor:
    """An executor whose chip has a varied map, weights, a seed and some history."""
    ex = CommandExecutor(Twin(CFG, device_map=fabricate(CFG, DeviceModel.soft_bounds(), 1)))
    rng = np.random.default_rng(4)
    ex.twin.set(seed=11)
    for t in range(CFG.tiles):
        ex.twin.program(t, rng.integers(-6000, 6000, (CFG.cols, CFG.rows)))
    ex.twin.forward(0, rng.integers(-63, 64, (3, CFG.rows)))
    return ex


def state(ex: CommandExecutor):
    t = ex.twin
    return (t.weights.copy(), t.device_map.copy(), t.read_step_shape(), t.settings, t.nonce,
            [dict(c) for c in t.counters])


def same_state(a, b) -> bool:
    return (np.array_equal(a[0], b[0]) and a[1].equals(b[1]) and a[2].equals(b[2])
            and a[3:] == b[3:])


def frame(name, seq=1, **values):
    return P.encode_request(name, seq, values, CFG)


def replies(data: bytes) -> list[P.Frame]:
    evs = P.FrameParser().feed(data)
    assert all(isinstance(e, P.Frame) and e.opcode & 0x80 for e in evs)
    return evs


def status_of(ex, raw) -> int:
    (r,) = replies(ex.feed(raw))
    return r.payload[0]


def test_info_reply():
    ex = prepared()
    (r,) = replies(ex.feed(frame("INFO", seq=42)))
    assert (r.opcode, r.seq, r.payload[0]) == (0x81, 42, P.ST["OK"])
    v = P.decode_payload(P.command("INFO").reply, r.payload[1:], CFG)
    assert P.config_from_info(v) == CFG
    assert (v["version"], v["fingerprint"]) == (P.CONTRACT_VERSION, CFG.fingerprint())


def good_forward():
    return dict(tile=1, b=2, n=CFG.rows, x=np.ones(2 * CFG.rows, dtype=np.int64))


M = CFG.rows * CFG.cols
W = CFG.rows * CFG.cols
BAD_ARGS = {
    "tile": ("FORWARD", {**good_forward(), "tile": 2}),
    "no vectors": ("FORWARD", dict(tile=0, b=0, n=CFG.rows, x=[])),
    "wrong n": ("FORWARD", dict(tile=0, b=1, n=CFG.cols, x=[0] * CFG.cols)),
    "dac code": ("FORWARD", {**good_forward(), "x": [64] + [0] * (2 * CFG.rows - 1)}),
    "bwd n": ("BACKWARD", dict(tile=0, b=1, n=CFG.rows, x=[0] * CFG.rows)),
    "weight range": ("PROGRAM", dict(tile=0, k0=0, k=1, w=[-32768])),
    "program span": ("PROGRAM", dict(tile=0, k0=W - 1, k=2, w=[0, 0])),
    "read span": ("READ", dict(tile=1, k0=W, k=1)),
    "map span": ("READ_MAP", dict(tile=0, k0=M, k=1)),
    "map crossed": ("LOAD_MAP", dict(tile=0, k0=0, k=1, su=[1], sd=[1], ku=[0], kd=[0],
                                     wmax=[0], wmin=[0])),
    "map step": ("LOAD_MAP", dict(tile=0, k0=0, k=1, su=[4096], sd=[1], ku=[0], kd=[0],
                                  wmax=[10], wmin=[-10])),
    "p code": ("UPDATE", dict(tile=0, b=1, ni=CFG.rows, nj=CFG.cols, x=[257] + [0] * 4,
                              d=[1] * CFG.cols)),
    "update shape": ("UPDATE", dict(tile=0, b=1, ni=CFG.cols, nj=CFG.rows, x=[0] * CFG.cols,
                                    d=[0] * CFG.rows)),
    "axis": ("PULSE", dict(tile=0, axis=2, index=0, n=CFG.cols, counts=[1] * CFG.cols)),
    "index": ("PULSE", dict(tile=0, axis=0, index=CFG.rows, n=CFG.cols, counts=[1] * CFG.cols)),
    "count": ("PULSE", dict(tile=0, axis=1, index=0, n=CFG.rows, counts=[64] * CFG.rows)),
    "counters tile": ("COUNTERS", dict(tile=9)),
}


def set_fields(**kw):
    v = {**P.settings_fields(Settings.default(CFG)), "restart": 1}
    v.update(kw)
    return v


LINEAR = linear_shape()
BAD_ARGS.update({
    "shape mode": ("LOAD_SHAPE", dict(mode=3, up=LINEAR.up, down=LINEAR.down)),
    "shape node": ("LOAD_SHAPE", dict(mode=0, up=LINEAR.up, down=np.r_[LINEAR.down[:-1], 1 << 20])),
    "linear node": ("LOAD_SHAPE", dict(mode=0, up=np.r_[LINEAR.up[:-1], 4095], down=LINEAR.down)),
    "table node": ("LOAD_SHAPE", dict(mode=2, up=np.r_[1 << 20, LINEAR.up[1:]], down=LINEAR.down)),
    "in_bits": ("SET", set_fields(in_bits=8)),
    "restart": ("SET", set_fields(restart=2)),
    "shape": ("SET", set_fields(shapes=np.array([5, 7, 6, 7]))),
    "tiles": ("SET", set_fields(tiles=1, shapes=np.array([5, 7]))),
    "shift": ("SET", set_fields(fwd_shift=3)),
})


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_argument_changes_nothing(case):
    name, values = BAD_ARGS[case]
    ex = prepared()
    before = state(ex)
    assert status_of(ex, frame(name, **values)) == P.ST["BAD_ARGUMENT"]
    assert same_state(before, state(ex))


def test_unknown_opcode_bad_length_and_reply_flag():
    ex = prepared()
    before = state(ex)
    assert status_of(ex, P.encode_frame(0x7E, 1, b"")) == P.ST["UNKNOWN_OPCODE"]
    assert status_of(ex, P.encode_frame(0xA0, 2, b"")) == P.ST["UNKNOWN_OPCODE"]
    fwd = frame("FORWARD", **good_forward())
    body = fwd[P.HEADER_SIZE : -P.CRC_SIZE]
    for bad in (body[:-1], body + b"\0", b""):
        assert status_of(ex, P.encode_frame(0x20, 3, bad)) == P.ST["BAD_LENGTH"]
    assert status_of(ex, P.encode_frame(0x02, 4, b"\0")) == P.ST["BAD_LENGTH"]  # RESET + junk
    assert same_state(before, state(ex))


def test_link_errors_are_answered_with_the_frames_header():
    ex = prepared()
    before = state(ex)
    raw = bytearray(frame("RESET", seq=5))
    raw[-1] ^= 0xFF
    (r,) = replies(ex.feed(bytes(raw)))
    assert (r.opcode, r.seq, r.payload) == (0x82, 5, bytes((P.ST["BAD_CRC"],)))
    assert replies(ex.feed(frame("RESET", seq=6)[:-3])) == []
    assert ex.pending
    (r,) = replies(ex.timeout())
    assert (r.seq, r.payload[0]) == (6, P.ST["TRUNCATED"])
    assert same_state(before, state(ex))


def test_retransmission_is_answered_from_the_cache_not_executed_again():
    ex, ref = prepared(), prepared()
    upd = frame("UPDATE", seq=9, tile=0, b=2, ni=CFG.rows, nj=CFG.cols,
                x=np.full(2 * CFG.rows, 200), d=np.full(2 * CFG.cols, -256))
    first = ex.feed(upd)
    assert ex.feed(upd) == first  # same bytes, not applied twice
    ref.twin.update(0, np.full((2, CFG.rows), 200), np.full((2, CFG.cols), -256))
    assert same_state(state(ref), state(ex))
    fwd = frame("FORWARD", seq=10, **good_forward())
    a = ex.feed(fwd)
    assert ex.feed(fwd) == a and ex.twin.nonce == ref.twin.nonce + 2
    # the same seq with another payload is a new command
    assert ex.feed(frame("FORWARD", seq=10, **{**good_forward(), "tile": 0})) != a


def test_frames_and_replies_one_to_one_with_garbage_between():
    ex = prepared()
    stream = b"\x00\x13garbage" + frame("INFO", 1) + b"\x5a\xa5" + frame("GET", 2) + b"\xff"
    rs = replies(ex.feed(stream))
    assert [(r.opcode, r.seq, r.payload[0]) for r in rs] == [(0x81, 1, 0), (0x84, 2, 0)]


VALID = [frame("PROGRAM", tile=0, k0=3, k=4, w=[100, -200, 300, 9999]),
         frame("UPDATE", tile=1, b=1, ni=CFG.rows, nj=CFG.cols, x=[256] * CFG.rows,
               d=[-256] * CFG.cols),
         frame("PULSE", tile=0, axis=0, index=1, n=CFG.cols, counts=[63] * CFG.cols),
         frame("SET", **set_fields(seed=77)),
         frame("RESET"),
         frame("LOAD_MAP", tile=1, k0=0, k=2, su=[5, 5], sd=[5, 5], ku=[0, 0], kd=[0, 0],
               wmax=[1, 1], wmin=[-1, -1])]


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, len(VALID) - 1), data=st.data())
def test_fuzzed_frames_never_change_state(which, data):
    """Flip bits, cut, or splice garbage into state-changing frames: no change, every frame
    answered or dropped, and a good frame afterwards is executed normally."""
    ex = prepared()
    before = state(ex)
    raw = bytearray(VALID[which])
    mode = data.draw(st.sampled_from(["flip", "cut", "splice", "noise"]))
    if mode == "flip":
        for bit in data.draw(st.lists(st.integers(0, len(raw) * 8 - 1), min_size=1, max_size=4,
                                      unique=True)):
            raw[bit // 8] ^= 1 << (bit % 8)
    elif mode == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif mode == "splice":
        at = data.draw(st.integers(2, len(raw) - 1))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        assume(VALID[which] not in raw)  # bytes equal to the frame's last ones leave it whole
    else:
        raw = bytearray(data.draw(st.binary(max_size=200)))
    out = ex.feed(bytes(raw)) + ex.timeout()
    for r in replies(out):
        assert r.payload[0] != P.ST["OK"] or raw == VALID[which]
    assert same_state(before, state(ex)) or mode == "noise" and P.FrameParser().feed(bytes(raw))
    (r,) = replies(ex.feed(frame("GET", seq=200)))
    assert r.payload[0] == P.ST["OK"]


def test_a_reply_larger_than_a_frame_is_refused_before_anything_runs():
    """FORWARD of 273 vectors on tiny: its reply would exceed max_payload; BAD_ARGUMENT, as the
    gateware answers, with the nonce and counters untouched."""
    from ohmflow.emulator import protocol as P
    from ohmflow.emulator.config import PRESETS
    from ohmflow.emulator.executor import CommandExecutor
    from ohmflow.emulator.twin import Twin

    cfg = PRESETS["tiny"]
    ex = CommandExecutor(Twin(cfg))
    cmd = P.command("FORWARD")
    b = 273
    payload = P.encode_payload(cmd.request, {"tile": 0, "b": b, "n": cfg.rows,
                                             "x": np.zeros(b * cfg.rows, dtype=np.int64)}, cfg)
    assert 1 + P.payload_size(cmd.reply, {"b": b, "m": cfg.cols}, cfg) > P.TABLE.max_payload
    status, data = ex.execute(cmd.opcode, payload)
    assert status == P.ST["BAD_ARGUMENT"] and data == b""
    assert ex.twin.nonce == 0 and ex.twin.counters[0]["fwd_vectors"] == 0


def shape_fields(shape) -> dict:
    return {"mode": SHAPE_MODES.index(shape.mode), "up": shape.up, "down": shape.down}


@pytest.mark.parametrize("model", ["ExpStep", "PowStep", "PiecewiseStep"])
def test_load_shape_on_the_rv32_engine_sets_the_twins_tables_and_read_shape_returns_them(model):
    """LOAD_SHAPE is the twin's load_step_shape (the next UPDATE uses the table); READ_SHAPE
    answers what was loaded; RESET keeps it."""
    cfg = dataclasses.replace(CFG, lanes=1, engine="rv32", name="tiny-rv32")
    kw = {"PiecewiseStep": {"piecewise_up": (1.0, 0.5, 2.0), "piecewise_down": (0.3, 1.0, 1.5)}}
    shape = step_shape(DeviceModel(model=model, **kw.get(model, {})))
    ex = CommandExecutor(Twin(cfg))
    ref = Twin(cfg, step_shape=shape)

    def call(name, **values):
        (r,) = replies(ex.feed(P.encode_request(name, 1 + ex.frames % 200, values, cfg)))
        assert r.payload[0] == P.ST["OK"], (name, r.payload[0])
        return P.decode_payload(P.command(name).reply, r.payload[1:], cfg)

    v = call("READ_SHAPE")  # the power-up shape
    assert v["mode"] == 0 and (v["up"] == LINEAR.up).all() and (v["down"] == LINEAR.down).all()
    call("LOAD_SHAPE", **shape_fields(shape))
    v = call("READ_SHAPE")
    assert v["mode"] == shape.code and np.array_equal(v["up"], shape.up)
    assert np.array_equal(v["down"], shape.down)
    rng = np.random.default_rng(3)
    w = rng.integers(-8000, 8000, (cfg.cols, cfg.rows))
    x, d = rng.integers(-256, 257, (4, cfg.rows)), rng.integers(-256, 257, (4, cfg.cols))
    for t in (ex.twin, ref):
        t.program(0, w)
        t.update(0, x, d)
    assert np.array_equal(ex.twin.read(0), ref.read(0))
    call("RESET")
    assert ex.twin.read_step_shape().equals(shape)


def test_the_tile_engine_holds_tables():
    ex = prepared()
    assert ex.cfg.engine == "tile"
    table = step_shape(DeviceModel(model="PowStep"))
    assert status_of(ex, frame("LOAD_SHAPE", **shape_fields(table))) == P.ST["OK"]
    assert ex.twin.read_step_shape().equals(table)
    assert status_of(ex, frame("LOAD_SHAPE", **shape_fields(LINEAR))) == P.ST["OK"]
    assert ex.twin.read_step_shape().equals(LINEAR)


def test_set_keeps_the_time_and_temperature_settings():
    """SET carries no time or temperature settings (numerics §11): a SET leaves them as set."""
    ex = prepared()
    ex.twin.set(temperature=350, drift_nu=4000)
    values = {**P.settings_fields(ex.twin.settings.replace(ex.cfg, bl=5)), "restart": 0}
    (r,) = replies(ex.feed(frame("SET", seq=9, **values)))
    assert r.payload[0] == P.ST["OK"]
    s = ex.twin.settings
    assert (s.bl, s.temperature, s.drift_nu) == (5, 350, 4000)
