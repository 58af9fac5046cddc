"""Host-side fuzzing: the frame codec on arbitrary bytes, the reference executor on arbitrary
field values, and the Device API's argument checks (TwinDevice and LinkDevice alike)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import FIELDS, DeviceModel, fabricate
from ohmflow.emulator.twin import Twin
from ohmflow.host.device import TwinDevice
from ohmflow.host.link import LinkDevice
from ohmflow.sim.fuzz import pack
from ohmflow.sim.twin_server import TwinServer

CFG = PRESETS["tiny"]
SYNCY = st.lists(st.sampled_from([b"\xa5", b"\x5a", b"\xa5\x5a", b"\x00", b"\xff", b"\x10"]),
                 max_size=60).map(b"".join)
STREAMS = st.lists(st.one_of(st.binary(max_size=40), SYNCY), max_size=6).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=STREAMS, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_parser_events_do_not_depend_on_chunking(data, cuts):
    whole = P.FrameParser()
    a = whole.feed(data)
    split = P.FrameParser()
    b, pos = [], 0
    for c in sorted(cuts):
        b += split.feed(data[pos:c])
        pos = max(pos, c)
    b += split.feed(data[pos:])
    assert a == b and whole.dropped == split.dropped and whole.needed() == split.needed() >= 1
    assert whole.timeout() == split.timeout()


@settings(max_examples=100, deadline=None)
@given(op=st.integers(-3, 300), seq=st.integers(-3, 300))
def test_frame_encoder_refuses_non_byte_headers(op, seq):
    if 0 <= op <= 255 and 0 <= seq <= 255:
        assert P.FrameParser().feed(P.encode_frame(op, seq, b"x"))[0].seq == seq
    else:
        with pytest.raises(ValueError, match="bytes"):
            P.encode_frame(op, seq, b"")


LAYOUTS = [lay for c in P.TABLE.commands for lay in (c.request, c.reply) if lay]


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, len(LAYOUTS) - 1), raw=st.binary(max_size=120))
def test_payload_decoder_raises_only_payload_errors(which, raw):
    try:
        P.decode_payload(LAYOUTS[which], raw, CFG)
    except P.PayloadError:
        pass


@st.composite
def wire_fields(draw, cmd):
    """Any values the wire can carry: scalars over their whole type, short arrays."""
    v = {}
    for f in cmd.request:
        info = np.iinfo(P.kind_dtype(f.kind, CFG))
        lo, hi = P.kind_range(f.kind, CFG)
        ints = st.one_of(st.integers(int(info.min), int(info.max)),
                         st.sampled_from([x for x in (lo, hi, lo - 1, hi + 1, 0, 1)
                                          if info.min <= x <= info.max]))
        if f.count is None:
            v[f.name] = draw(ints)
        else:
            v[f.name] = np.array(draw(st.lists(ints, max_size=40)), dtype=np.int64)
    return v


def snapshot(ex):
    t = ex.twin
    return ([t.read(i).copy() for i in range(CFG.tiles)], t.settings, t.nonce,
            [dict(c) for c in t.counters], t.read_device_map())


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True)) and \
        a[1:4] == b[1:4] and all(np.array_equal(getattr(a[4], f), getattr(b[4], f))
                                 for f in FIELDS)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_executor_never_faults_and_refusals_change_nothing(data):
    cmd = data.draw(st.sampled_from([c for c in P.TABLE.commands if c.request]))
    ex = CommandExecutor(Twin(CFG))
    ex.twin.program(0, np.full((CFG.cols, CFG.rows), 1234))
    before = snapshot(ex)
    status, _ = ex.execute(cmd.opcode, pack(cmd.request, data.draw(wire_fields(cmd)), CFG))
    assert status != P.ST["DEVICE_FAULT"], ex.last_fault
    assert status in (P.ST["OK"], P.ST["BAD_LENGTH"], P.ST["BAD_ARGUMENT"])
    if status != P.ST["OK"]:
        assert same(before, snapshot(ex))


# ----- the Device API: the same bad arguments, the same error class, nothing changed -----
@pytest.fixture(scope="module")
def link():
    with TwinServer(CFG) as srv:
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", CFG, timeout=2.0)
        yield dev
        dev.close()


def arrays(shape_pool, kinds):
    shapes = st.sampled_from(shape_pool)
    elems = st.sampled_from(kinds)
    return st.tuples(shapes, elems)


def make(shape, elem):
    """An argument array of ``shape`` filled by ``elem`` (a value, NaN, a float, a string)."""
    if elem == "str":
        return np.full(shape, "a")
    if elem == "obj":
        return np.full(shape, None, dtype=object)
    return np.full(shape, elem)


SHAPES = [(1, 5), (2, 5), (1, 7), (2, 7), (5,), (7,), (0, 5), (1, 4), (2, 5, 1), (7, 5), (5, 7), ()]
ELEMS = [0, 3, -3, 63, 64, -64, 256, 257, 40000, -40000, 2.0, 2.5, np.nan, np.inf, True, "str",
         "obj"]
TILES = [0, 1, 2, -1, True, 1.0, "0", None, np.int64(1)]


@st.composite
def calls(draw):
    m = draw(st.sampled_from(["forward", "backward", "update", "pulse", "program", "read",
                              "configure", "read_device_map"]))
    tile = draw(st.sampled_from(TILES))
    arr = lambda: make(*draw(arrays(SHAPES, ELEMS)))  # noqa: E731
    if m in ("forward", "backward", "program"):
        return m, (tile, arr()), {}
    if m == "update":
        return m, (tile, arr(), arr()), {}
    if m == "pulse":
        return m, (tile, draw(st.sampled_from(["row", "col", "diag", 0])),
                   draw(st.sampled_from([0, 4, 5, 6, -1, 2.0, True])), arr()), {}
    if m == "configure":
        name = draw(st.sampled_from(["in_bits", "out_bits", "bl", "seed", "fwd_shift", "dw_std",
                                     "shapes", "nonsense"]))
        val = draw(st.sampled_from([[(5, 7), (5, 7)], [(6, 7), (5, 7)], [(5, 7)], [(0, 7), (1, 1)],
                                    [(5, 7, 1), (5, 7)], 0, "x"] if name == "shapes" else
                                   [0, 1, 2, 7, 8, 63, 64, -1, 2**32, 2.5, np.nan, "x"]))
        return m, (), {name: val}
    return m, (tile,), {}


def outcome(dev, m, args, kw):
    try:
        r = getattr(dev, m)(*args, **kw)
    except Exception as e:  # noqa: BLE001 - the class is the point
        return ("raised", type(e))
    return ("ok", r)


def equal(a, b) -> bool:
    """Results compared by value: arrays, tuples, device maps, settings, None."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if hasattr(a, "su"):
        return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
    return a == b


def device_state(dev):
    return ([dev.read(t) for t in range(CFG.tiles)], dev.settings(), dev.counters(),
            dev.read_device_map())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls())
def test_twin_and_link_refuse_the_same_arguments_and_change_nothing(link, call):
    m, args, kw = call
    twin = TwinDevice(CFG, device_map=fabricate(CFG, DeviceModel(), 3))
    link.reset()
    link.load_device_map(twin.read_device_map())
    for d in (twin, link):
        d.program(0, np.full((CFG.cols, CFG.rows), 700))
    before = device_state(twin)
    a, b = outcome(twin, m, args, kw), outcome(link, m, args, kw)
    assert a[0] == b[0], (m, args, kw, a, b)
    if a[0] == "raised":
        assert a[1] is b[1] and issubclass(a[1], ValueError), (m, args, kw, a, b)
        after = device_state(twin)
        assert all(np.array_equal(x, y) for x, y in zip(before[0], after[0], strict=True))
        assert before[1:3] == after[1:3]
    else:
        assert equal(a[1], b[1]), (m, args, kw)
    t, lk = device_state(twin), device_state(link)
    assert all(np.array_equal(x, y) for x, y in zip(t[0], lk[0], strict=True))
    assert t[1] == lk[1] and t[2] == lk[2]
    assert all(np.array_equal(getattr(t[3], f), getattr(lk[3], f)) for f in FIELDS)


@pytest.mark.parametrize("make_dev", [lambda link: TwinDevice(CFG), lambda link: link])
def test_configure_refuses_scalar_shapes_with_value_error(link, make_dev):
    with pytest.raises(ValueError):
        make_dev(link).configure(shapes=0)
