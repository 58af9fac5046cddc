"""Frame and payload codecs: round trips, corruption always rejected, resynchronisation."""

import ast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS

CFG = PRESETS["tiny"]
payloads = st.binary(max_size=300)
garbage = st.binary(max_size=40).map(lambda b: b.replace(b"\xa5", b"\x00"))


def frames_of(parser, data, chunks):
    """Feed data to parser in the given chunk sizes; return all events."""
    out, pos = [], 0
    for n in chunks:
        out += parser.feed(data[pos : pos + n])
        pos += n
    return out + parser.feed(data[pos:])


@settings(max_examples=150, deadline=None)
@given(op=st.integers(0, 255), seq=st.integers(0, 255), payload=payloads,
       chunks=st.lists(st.integers(1, 64), max_size=20))
def test_frame_round_trip_in_any_chunking(op, seq, payload, chunks):
    raw = P.encode_frame(op, seq, payload)
    assert len(raw) == len(payload) + P.OVERHEAD
    evs = frames_of(P.FrameParser(), raw, chunks)
    assert [(e.opcode, e.seq, e.payload) for e in evs] == [(op, seq, payload)]


def test_max_payload_frame_round_trips_and_larger_is_refused():
    raw = P.encode_frame(1, 2, bytes(range(256)) * 16)
    (ev,) = P.FrameParser().feed(raw)
    assert len(ev.payload) == P.TABLE.max_payload
    with pytest.raises(ValueError, match="max_payload"):
        P.encode_frame(1, 2, bytes(P.TABLE.max_payload + 1))


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.tuples(garbage, st.integers(0, 127), payloads), min_size=1, max_size=5),
       tail=garbage)
def test_garbage_between_frames_is_skipped(items, tail):
    stream = b"".join(g + P.encode_frame(op, i, p) for i, (g, op, p) in enumerate(items)) + tail
    parser = P.FrameParser()
    evs = parser.feed(stream)
    assert [(e.opcode, e.payload) for e in evs] == [(op, p) for _, op, p in items]
    assert parser.dropped == sum(len(g) for g, _, _ in items) + len(tail)


@settings(max_examples=300, deadline=None)
@given(op=st.integers(0, 127), payload=payloads, data=st.data())
def test_every_flipped_bit_is_rejected_and_the_next_frame_recovered(op, payload, data):
    raw = bytearray(P.encode_frame(op, 7, payload))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    parser = P.FrameParser()
    evs = parser.feed(bytes(raw))
    late = parser.timeout()  # the line goes quiet before the host resends
    evs += [late] if late else []
    assert not any(isinstance(e, P.Frame) for e in evs)
    errors = [e for e in evs if isinstance(e, P.FrameError)]
    for e in errors:
        assert e.status in (P.ST["BAD_CRC"], P.ST["TOO_LONG"], P.ST["TRUNCATED"]) and e.message
    assert errors or parser.dropped  # a broken sync is dropped as garbage
    good = P.encode_frame(op, 8, payload)
    assert [(e.opcode, e.seq, e.payload) for e in parser.feed(good)] == [(op, 8, payload)]


@settings(max_examples=100, deadline=None)
@given(payload=payloads, data=st.data())
def test_truncated_frame_times_out_and_the_next_frame_parses(payload, data):
    raw = P.encode_frame(0x20, 3, payload)
    cut = data.draw(st.integers(1, len(raw) - 1))
    parser = P.FrameParser()
    assert parser.feed(raw[:cut]) == []
    err = parser.timeout()
    if cut >= P.HEADER_SIZE:
        assert err.status == P.ST["TRUNCATED"] and (err.opcode, err.seq) == (0x20, 3)
    else:
        assert err is None
    assert [e.seq for e in parser.feed(P.encode_frame(0x20, 4, payload))] == [4]


def test_length_above_max_is_too_long_at_the_header():
    head = P.TABLE.sync + bytes((0x20, 9)) + (P.TABLE.max_payload + 1).to_bytes(2, "little")
    parser = P.FrameParser()
    (err,) = parser.feed(head)
    assert err.status == P.ST["TOO_LONG"] and err.seq == 9 and "max_payload" in err.message
    assert not parser.partial


def test_a_shorter_length_field_fails_the_crc():
    raw = bytearray(P.encode_frame(0x20, 1, bytes(20)))
    raw[4] = 10
    (err,) = P.FrameParser().feed(bytes(raw))
    assert err.status == P.ST["BAD_CRC"]


def test_needed_counts_the_bytes_to_complete_a_frame():
    raw = P.encode_frame(1, 1, bytes(50))
    parser = P.FrameParser()
    assert parser.needed() == 2
    parser.feed(raw[:3])
    assert parser.needed() == P.HEADER_SIZE - 3
    parser.feed(raw[3:10])
    assert parser.needed() == len(raw) - 10


# ----- payload codec: every layout of the table -----
def count_names(layout):
    return {n.id for f in layout if f.count for n in ast.walk(ast.parse(f.count))
            if isinstance(n, ast.Name)}


@st.composite
def layout_values(draw, layout):
    counters, vals, env = count_names(layout), {}, {}
    for f in layout:
        lo, hi = P.kind_range(f.kind, CFG)
        if f.count is None:
            v = draw(st.integers(0, 3) if f.name in counters else st.integers(max(lo, -2**63),
                                                                              min(hi, 2**63 - 1)))
            vals[f.name] = env[f.name] = v
        else:
            n = P.evaluate(f.count, env)
            vals[f.name] = np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)),
                                    dtype=np.uint64 if f.kind == "u64" else np.int64)
    return vals


LAYOUTS = [(c.name, side, lay) for c in P.TABLE.commands
           for side, lay in (("request", c.request), ("reply", c.reply))]


@pytest.mark.parametrize("name,side,layout", LAYOUTS, ids=[f"{n}-{s}" for n, s, _ in LAYOUTS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_payload_round_trip(name, side, layout, data):
    vals = data.draw(layout_values(layout))
    raw = P.encode_payload(layout, vals, CFG)
    counts = {f.name: vals[f.name] for f in layout if f.count is None}
    assert len(raw) == P.payload_size(layout, counts, CFG)
    back = P.decode_payload(layout, raw, CFG)
    for f in layout:
        assert np.array_equal(np.asarray(back[f.name]), np.asarray(vals[f.name])), f.name
    with pytest.raises(P.PayloadError, match="beyond"):
        P.decode_payload(layout, raw + b"\0", CFG)
    if raw:
        with pytest.raises(P.PayloadError, match="ends inside"):
            P.decode_payload(layout, raw[:-1], CFG)


def test_encoder_refuses_values_that_do_not_fit():
    lay = P.command("FORWARD").request
    with pytest.raises(ValueError, match="does not fit"):
        P.encode_payload(lay, {"tile": 0, "b": 1, "n": 2, "x": [300, 0]}, CFG)
    with pytest.raises(ValueError, match="elements"):
        P.encode_payload(lay, {"tile": 0, "b": 1, "n": 2, "x": [1, 2, 3]}, CFG)
