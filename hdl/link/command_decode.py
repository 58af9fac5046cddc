"""The command processor's decoder: a received frame to a verdict, and its request to registers.

While the payload arrives (``wr_*``, the receiver's buffer writes) the request's scalars are kept
in registers and every array element is range-checked; SET's shapes are staged. When the frame
is in (``frame_valid``), the verdict follows as the reference executor decides it: a receiver
error (LINK_ERROR with its status), a repeat of the last executed frame (RESEND, from the reply
buffer), an unknown opcode or a payload shorter than its scalars (REFUSE) at once; a length that
disagrees with the layout (BAD_LENGTH) or an argument out of range (BAD_ARGUMENT) a cycle later,
else EXECUTE. ``release`` (the reply has left) makes the decoder ready for the next frame.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    NOISE_FRAC,
    RATE_BITS,
    SHAPE_ENGINES,
    SHAPE_FRAC,
    SHAPE_MODES,
    T_MAX,
    T_MIN,
    ChipConfig,
    has_time,
)
from ohmflow.hdl.link.command_layouts import (
    RequestArrays,
    op_flags_layout,
    payload_layout,
    request_layout,
    spans,
    spans_layout,
)
from ohmflow.hdl.link.framing import PAYLOAD_BITS, Command, Event
from ohmflow.hdl.tile.tile_io import settings_layout

__all__ = ["Action", "Verdict", "CommandDecoder"]

ST = P.ST


class Action(enum.Enum, shape=2):
    """What is done with a frame."""

    EXECUTE = 0  #: run the command
    REFUSE = 1  #: reply with the verdict's status
    RESEND = 2  #: send the last reply again
    LINK_ERROR = 3  #: the receiver's status alone


class Verdict(data.Struct):
    """A frame's verdict: the action, and the status of a refusal or a receiver error."""

    action: Action
    status: 8


class CommandDecoder(wiring.Component):
    """Request registers, element range checks, the repeat check and the frame's verdict.

    Ports
    -----
    frame, frame_valid: the frame the receiver holds; release: its reply has left.
    wr_addr, wr_data, wr_en: the payload bytes as the receiver writes them.
    shapes: the tiles' active shapes (the settings).
    verdict: one per frame. op: the frame's opcode, one flag per command. request: the
        request's scalars. staged_shapes: SET's shapes. spans: the lengths of `spans`.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        shapes = settings_layout(cfg)["shapes"].shape
        super().__init__({
            "frame": In(Event),
            "frame_valid": In(1),
            "release": In(1),
            "wr_addr": In(PAYLOAD_BITS),
            "wr_data": In(8),
            "wr_en": In(1),
            "shapes": In(shapes),
            "verdict": Out(stream.Signature(Verdict)),
            "op": Out(op_flags_layout()),
            "request": Out(request_layout(cfg)),
            "staged_shapes": Out(shapes),
            "spans": Out(spans_layout(cfg, shapes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, frame = self.cfg, self.frame
        req = {c.name: payload_layout(c.request, cfg) for c in P.TABLE.commands}
        op = Command(frame.opcode)
        # the opcode decoded into registers: it is set by the frame's header and used only once
        # the frame is in, so the sequencer's conditions start at a flip-flop
        m.d.sync += [self.op[c.name].eq(op == Command[c.name]) for c in P.TABLE.commands]
        f = {n: Signal(len(self.request[n]), name=f"f_{n}", reset_less=True)
             for n in request_layout(cfg).members}
        m.d.comb += [self.request[n].eq(v) for n, v in f.items()]

        def settled(v, name):
            """``v`` registered: for values of request scalars and settings that are used only
            once the payload is in (the CRC bytes leave them time), never while it arrives."""
            v = Value.cast(v)
            r = Signal(v.shape(), name=name, reset_less=True)
            m.d.sync += r.eq(v)
            return r

        tile = f["tile"][:max(1, (cfg.tiles - 1).bit_length())]
        s = spans(cfg, f, self.shapes[tile], self.op.BACKWARD, settled)
        m.d.comb += [self.spans[n].eq(v) for n, v in s.items() if n != "rdm_base"]
        m.d.comb += [self.spans.rdm_base[x].eq(v) for x, v in enumerate(s["rdm_base"])]
        arrays = RequestArrays(cfg, f)
        totals = {c.name: settled(arrays(c.name)[1], f"total_{c.name}") for c in P.TABLE.commands}
        bad = Signal()  # an element out of range
        self._arrival(m, f, arrays, bad, settled)
        checks = self._checks(f, s)

        cached = Signal()
        key = Cat(frame.opcode, frame.seq, frame.crc)
        last = Signal(len(key))
        v = self.verdict.payload
        link_ok = frame.status == ST["OK"]
        repeat = cached & (last == key)
        checking = Signal()  # a known opcode with its scalars: the checks follow next cycle
        with m.FSM(name="decode_fsm"):
            with m.State("AWAIT"):
                with m.If(self.frame_valid):
                    m.d.comb += self.verdict.valid.eq(~checking)
                    with m.If(~link_ok):
                        m.d.comb += [v.action.eq(Action.LINK_ERROR), v.status.eq(frame.status)]
                    with m.Elif(repeat):
                        m.d.comb += v.action.eq(Action.RESEND)
                    with m.Else():
                        m.d.comb += v.action.eq(Action.REFUSE)
                        with m.Switch(op):
                            for c in P.TABLE.commands:
                                with m.Case(Command[c.name]):
                                    with m.If(frame.length < req[c.name][2]):
                                        m.d.comb += v.status.eq(ST["BAD_LENGTH"])
                                    with m.Else():
                                        m.d.comb += checking.eq(1)
                            with m.Default():
                                m.d.comb += v.status.eq(ST["UNKNOWN_OPCODE"])
                    with m.If(checking | self.verdict.ready):
                        with m.If(link_ok & ~repeat):  # the frame to answer a repeat of
                            m.d.sync += [cached.eq(1), last.eq(key)]
                        with m.If(checking):
                            m.next = "CHECK"
                        with m.Else():
                            m.next = "HELD"
            with m.State("CHECK"):  # the scalars and element checks ran as the payload arrived
                m.d.comb += [self.verdict.valid.eq(1), v.action.eq(Action.REFUSE)]
                with m.If(self.verdict.ready):
                    m.next = "HELD"
                with m.Switch(op):
                    for c in P.TABLE.commands:
                        with m.Case(Command[c.name]):
                            with m.If(totals[c.name] != frame.length):
                                m.d.comb += v.status.eq(ST["BAD_LENGTH"])
                            with m.Elif(~checks.get(c.name, Const(1)) | bad):
                                m.d.comb += v.status.eq(ST["BAD_ARGUMENT"])
                            with m.Else():
                                m.d.comb += v.action.eq(Action.EXECUTE)
            with m.State("HELD"):
                with m.If(self.release):
                    m.next = "AWAIT"
        return m

    def _arrival(self, m, f, arrays, bad, settled):
        """Scalars into registers and elements range-checked as the payload arrives (a frame
        whose length disagrees with its layout is refused anyway)."""
        cfg = self.cfg
        op = Command(self.frame.opcode)
        array_no = Signal(range(8))  # request array the arriving bytes belong to
        element = Signal(range(P.constants()["MAX_PAYLOAD"] + 1))  # element of that array
        byte_no = Signal(2)  # byte of that element
        partial = Signal(32, reset_less=True)  # bytes of the element so far
        with m.If(self.release):
            m.d.sync += [array_no.eq(0), element.eq(0), byte_no.eq(0), bad.eq(0)]
        pbyte, pidx = self.wr_data, self.wr_addr
        whole = Mux(byte_no == 0, 0, partial) | (pbyte << (byte_no * 8))
        # where an array ends: an element count that is a product of request scalars comes out
        # of a multiplier, so it is registered (settled: an array before the last has elements of
        # two bytes or more, so none ends in the cycle after the last scalar byte); the last array
        # runs on to the payload's end (bytes past the layout are refused as BAD_LENGTH anyway)
        ends = {}
        for c in P.TABLE.commands:
            arrs = arrays(c.name)[0]
            for n, (fld, _o, cnt, sz, _sg) in enumerate(arrs):
                if not (isinstance(cnt, Value) and "*" in fld.count):
                    ends[c.name, n] = cnt
                elif n < len(arrs) - 1:
                    assert sz >= 2, f"{c.name}.{fld.name}: a settled count needs 2-byte elements"
                    ends[c.name, n] = settled(cnt, f"count_{c.name}_{fld.name}")
        with m.If(self.wr_en), m.Switch(op):
            for c in P.TABLE.commands:
                scalars, _a, size = payload_layout(c.request, cfg)
                with m.Case(Command[c.name]):
                    for name, (o, sz) in scalars.items():
                        for i in range(sz):
                            with m.If(pidx == o + i):
                                m.d.sync += f[name][8 * i:8 * i + 8].eq(pbyte)
                    with m.If(pidx >= size), m.Switch(array_no):
                        for n, (fld, _o, _cnt, sz, sgn) in enumerate(arrays(c.name)[0]):
                            with m.Case(n):
                                done = byte_no == sz - 1
                                v = whole[:8 * sz].as_signed() if sgn else whole[:8 * sz]
                                if c.name == "SET":  # shapes: (n_in, n_out) per tile
                                    ok = (v >= 1) & (v <= Mux(element[0], cfg.cols, cfg.rows))
                                    staged = self.staged_shapes[element[1:]]
                                    with m.If(done & element[0]):
                                        m.d.sync += staged.n_out.eq(v)
                                    with m.If(done & ~element[0]):
                                        m.d.sync += staged.n_in.eq(v)
                                else:
                                    lo, hi = self._bounds(c.name, fld, f)
                                    ok = (v >= lo) & (v <= hi)
                                m.d.sync += [partial.eq(whole), byte_no.eq(byte_no + 1)]
                                with m.If(done):
                                    m.d.sync += [byte_no.eq(0), element.eq(element + 1),
                                                 bad.eq(bad | ~ok)]
                                    if (c.name, n) in ends:
                                        with m.If(element + 1 == ends[c.name, n]):
                                            m.d.sync += [element.eq(0), array_no.eq(array_no + 1)]

    def _bounds(self, name, fld, f):
        """An element's range: its kind's, but LOAD_MAP's wmax >= 0 and wmin <= 0, and
        LOAD_SHAPE's nodes 1.0 in the linear mode (or on an engine without tables)."""
        lo, hi = P.kind_range(fld.kind, self.cfg)
        if name == "LOAD_SHAPE":
            one = 1 << SHAPE_FRAC
            if self.cfg.engine not in SHAPE_ENGINES:
                return one, one
            linear = f["mode"] == 0
            return Mux(linear, one, lo), Mux(linear, one, hi)
        if name == "LOAD_MAP" and fld.name == "wmax":
            return 0, hi
        if name == "LOAD_MAP" and fld.name == "wmin":
            return lo, 0
        return lo, hi

    def _checks(self, f, s):
        """Each command's argument checks, from its scalars and the spans."""
        cfg, shapes = self.cfg, self.shapes
        settings = settings_layout(cfg)
        max_payload = P.constants()["MAX_PAYLOAD"]
        devices = cfg.rows * cfg.cols
        tile_ok = f["tile"] < cfg.tiles
        shape = shapes[f["tile"][:max(1, (cfg.tiles - 1).bit_length())]]
        n_in, n_out, b = shape.n_in, shape.n_out, f["b"]
        window, span_end = s["window"], s["span_end"]
        shift_max = 2 ** Shape.cast(settings["fwd_shift"].shape).width
        assert settings["bwd_shift"].shape == settings["fwd_shift"].shape
        return {
            "SET": (f["in_bits"] >= 2) & (f["in_bits"] <= cfg.in_bits) & (f["out_bits"] >= 2)
            & (f["out_bits"] <= cfg.out_bits) & (f["fwd_shift"] >= NOISE_FRAC)
            & (f["fwd_shift"] < shift_max) & (f["bwd_shift"] >= NOISE_FRAC)
            & (f["bwd_shift"] < shift_max) & (f["bl"] >= 1)
            & (f["bl"] <= cfg.bl_max) & (f["restart"] <= 1) & (f["tiles"] == cfg.tiles),
            "PROGRAM": tile_ok & (span_end <= window),
            "READ": tile_ok & (span_end <= window) & (s["rd_len"] <= max_payload),
            "LOAD_MAP": tile_ok & (span_end <= devices),
            "READ_MAP": tile_ok & (span_end <= devices) & (s["rdm_len"] <= max_payload),
            "FORWARD": tile_ok & (b >= 1) & (f["n"] == n_in) & (s["fwd_len"] <= max_payload),
            "BACKWARD": tile_ok & (b >= 1) & (f["n"] == n_out) & (s["fwd_len"] <= max_payload),
            "UPDATE": tile_ok & (b >= 1) & (f["ni"] == n_in) & (f["nj"] == n_out),
            "PULSE": tile_ok & (f["axis"] <= 1) & (f["index"] < Mux(f["axis"], n_out, n_in))
            & (f["n"] == Mux(f["axis"], n_in, n_out)),
            "COUNTERS": tile_ok,
            "LOAD_SHAPE": f["mode"] < (len(SHAPE_MODES) if cfg.engine in SHAPE_ENGINES else 1),
            # time and temperature where config.has_time (numerics §11.5), else refused
            **({"SET_PHYSICS": (f["decay_rate"] < 2**RATE_BITS) & (f["temperature"] >= T_MIN)
                & (f["temperature"] <= T_MAX)} if has_time(cfg) else
               {name: Const(0) for name in P.TIME_COMMANDS}),
        }

