"""The command processor: framed commands from a byte stream to the TileController and back.

It answers every frame as `ohmflow.emulator.executor.CommandExecutor` does, byte for byte: a
parser error gets its status and is forgotten; a repeat of the last executed frame (opcode, seq,
CRC) is answered from the reply buffer; otherwise the payload, buffered whole and CRC-checked
before anything happens, is decoded by the protocol table's layouts: BAD_LENGTH, then argument and
element-range checks (BAD_ARGUMENT), and only then TileController operations. Every constant comes
from `ohmflow.emulator.protocol`; offsets and counts are elaborated from its layouts.

Partial PROGRAM and LOAD_MAP (a range of devices) read the whole window or tile into a word buffer
and write it back merged, because the tile's PROGRAM and MAP_WRITE cover every device. COUNTERS
reports the ten counters of the protocol's list, ``cycles`` last (the twin has no cycles).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import NOISE_FRAC, SETTING_NAMES, ChipConfig, Settings
from ohmflow.emulator.fabrication import FIELDS
from ohmflow.hdl.lib.fixed import mul_const
from ohmflow.hdl.link.framing import (
    ADDR_BITS,
    BANKS,
    Command,
    ElementReader,
    FrameRx,
)
from ohmflow.hdl.link.reply_builder import ReplyBuilder, ReplyKind
from ohmflow.hdl.tile.tile_io import (
    COUNTER_NAMES,
    RESULT,
    Op,
    TileLink,
    settings_layout,
    settings_value,
)

__all__ = ["CommandProcessor"]

K = P.constants()
ST = P.ST
MAXP = K["MAX_PAYLOAD"]
#: the TileController's order of counters, and the protocol's
_TC_COUNTERS = COUNTER_NAMES
_SLOT = [P.TABLE.counters.index(n) for n in _TC_COUNTERS]


def _layout(fields, cfg: ChipConfig, start: int = 0):
    """Scalars ``{name: (offset, size)}`` (all before the arrays) and arrays ``[(field, size,
    signed)]`` of a payload layout."""
    scalars, arrays, off = {}, [], start
    for f in fields:
        dt = P.kind_dtype(f.kind, cfg)
        if f.count is None:
            assert not arrays, f"scalar {f.name} after an array"
            scalars[f.name] = (off, dt.itemsize)
            off += dt.itemsize
        else:
            arrays.append((f, dt.itemsize, dt.kind == "i"))
    return scalars, arrays, off


class CommandProcessor(wiring.Component):
    """Frames in on ``rx``, replies out on ``tx``; drives a TileController over ``tile``.

    Parameters
    ----------
    cfg: the chip config (INFO data, settings widths, element widths).
    byte_timeout: cycles of silence inside a frame before it is dropped as TRUNCATED
        (default: the protocol's byte timeout at ``cfg.clock_hz``).

    ``tile`` is a `TileLink` (its ``settings`` are the device's run-time settings); ``idle`` is high
    when no frame is being received, executed or answered.
    """

    def __init__(self, cfg: ChipConfig, byte_timeout: int | None = None):
        P.check_fits(cfg)
        self.cfg = cfg
        self.byte_timeout = byte_timeout or P.constants(cfg)["BYTE_TIMEOUT_CYCLES"]
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "idle": Out(1),
            "tile": Out(TileLink(cfg)),
        })

    def elaborate(self, platform):  # noqa: C901 - one FSM over the command table
        m = Module()
        cfg, link = self.cfg, self.tile
        W = {k.name: P.kind_dtype(k.name, cfg).itemsize for k in P.TABLE.kinds}
        req = {c.name: _layout(c.request, cfg) for c in P.TABLE.commands}
        rep = {c.name: _layout(c.reply, cfg, start=1) for c in P.TABLE.commands}
        devices = cfg.rows * cfg.cols

        # ----- buffers and the link layer -----
        pbuf = [Memory(shape=8, depth=-(-MAXP // BANKS), init=[]) for _ in range(BANKS)]
        for b, mem in enumerate(pbuf):
            m.submodules[f"pbuf{b}"] = mem
        xw = max(cfg.w_bits, cfg.step_bits + 1, cfg.slope_bits)
        m.submodules.xbuf = xbuf = Memory(shape=xw, depth=len(FIELDS) * devices, init=[])
        xwr, xrd = xbuf.write_port(), xbuf.read_port()
        m.submodules.frx = frx = FrameRx(self.byte_timeout)
        m.submodules.reader = rd = ElementReader()
        m.submodules.reply = rb = ReplyBuilder()
        wiring.connect(m, wiring.flipped(self.rx), frx.rx)
        wiring.connect(m, rb.tx, wiring.flipped(self.tx))
        for b, mem in enumerate(pbuf):  # the payload in four byte banks (address mod 4)
            pw, prd = mem.write_port(), mem.read_port()
            m.d.comb += [
                pw.addr.eq(frx.wr_addr >> 2), pw.data.eq(frx.wr_data),
                pw.en.eq(frx.wr_en & (frx.wr_addr[:2] == b)),
                prd.addr.eq(rd.rd_addr[b]), prd.en.eq(rd.rd_en), rd.rd_data[b].eq(prd.data),
            ]
        ev = frx.event.payload
        op = Command(ev.opcode)
        m.d.comb += [rb.opcode.eq(ev.opcode), rb.seq.eq(ev.seq)]

        # the opcode decoded into registers: it is set by the frame's header and used only once
        # the frame is in, so the sequencer's conditions start at a flip-flop
        op_is = {c.name: Signal(name=f"op_is_{c.name}") for c in P.TABLE.commands}
        m.d.sync += [v.eq(op == Command[n]) for n, v in op_is.items()]

        def is_op(*names):
            return Cat(*[op_is[n] for n in names]).any()

        # ----- device state: settings, seed, nonce; the reply cache -----
        slay = settings_layout(cfg)
        default = slay.const(settings_value(cfg, Settings.default(cfg)))
        cur = Signal(slay, init=settings_value(cfg, Settings.default(cfg)))
        seed, nonce = Signal(32), Signal(32)
        m.d.comb += link.settings.eq(cur)
        cached = Signal()
        key = Cat(ev.opcode, ev.seq, ev.crc)
        last = Signal(len(key))
        hstep = Signal(2)

        # ----- request scalars and the derived values -----
        f = {}
        for scalars, _a, _s in req.values():
            for name, (_o, size) in scalars.items():
                f.setdefault(name, Signal(8 * size, name=f"f_{name}", reset_less=True))
                assert len(f[name]) == 8 * size, f"field {name} has two widths"
        tile_ok = f["tile"] < cfg.tiles
        shape = cur.shapes[f["tile"][:max(1, (cfg.tiles - 1).bit_length())]]
        n_in, n_out = shape.n_in, shape.n_out

        def settled(v, name):
            """``v`` registered: for values of request scalars and settings that are used only
            once the payload is in (the CRC bytes leave them time), never while it arrives."""
            v = Value.cast(v)
            r = Signal(v.shape(), name=name, reset_less=True)
            m.d.sync += r.eq(v)
            return r

        window = settled(n_in * n_out, "window")
        k0, k, b = f["k0"], f["k"], f["b"]
        k_end = settled(k0 + k, "k_end")  # the span's end (the ULX3S's slowest path unregistered)
        m_out = Mux(is_op("BACKWARD"), n_in, n_out)

        # a count expression of the table as logic: request scalars are registers, config
        # fields constants
        count_env = {**{k: getattr(cfg, k) for k in cfg.to_dict() if k != "name"}, **f}

        def expr(text: str):
            return P.evaluate(text, count_env, operand=lambda v: v)

        memo = {}

        def arrays(name):
            """``[(field, offset, count, size, signed)]`` of a request's arrays, and its length
            (built once per command: every use shares the same arithmetic)."""
            if name not in memo:
                scalars, arrs, off = req[name]
                out = []
                for fld, size, sgn in arrs:
                    cnt = expr(fld.count)
                    out.append((fld, off, cnt, size, sgn))
                    off = off + cnt * size
                memo[name] = out, off
            return memo[name]

        map_w = [size for _f, size, _s in req["LOAD_MAP"][1]]  # su, sd, ku, kd, wmax, wmin
        assert [fld.name for fld, _z, _s in req["LOAD_MAP"][1]] == list(FIELDS)
        map_cum = [sum(map_w[:q]) for q in range(len(FIELDS))]
        y_off = rep["FORWARD"][2]
        y_bytes = settled(b * m_out * W["adc"], "y_bytes")
        fwd_len = settled(y_off + y_bytes + b * W["sat"], "fwd_len")
        rd_len = settled(rep["READ"][2] + k * W["w"], "rd_len")
        rdm_len = settled(rep["READ_MAP"][2] + k * sum(map_w), "rdm_len")
        rdm_base = [settled(rep["READ_MAP"][2] + k * map_cum[x], f"rdm_base{x}")
                    for x in range(len(FIELDS))]
        totals = {c.name: settled(arrays(c.name)[1], f"total_{c.name}")
                  for c in P.TABLE.commands}
        checks = {
            "SET": (f["in_bits"] >= 2) & (f["in_bits"] <= cfg.in_bits) & (f["out_bits"] >= 2)
            & (f["out_bits"] <= cfg.out_bits) & (f["fwd_shift"] >= NOISE_FRAC)
            & (f["fwd_shift"] < 2 ** len(cur.fwd_shift)) & (f["bwd_shift"] >= NOISE_FRAC)
            & (f["bwd_shift"] < 2 ** len(cur.bwd_shift)) & (f["bl"] >= 1)
            & (f["bl"] <= cfg.bl_max) & (f["restart"] <= 1) & (f["tiles"] == cfg.tiles),
            "PROGRAM": tile_ok & (k_end <= window),
            "READ": tile_ok & (k_end <= window) & (rd_len <= MAXP),
            "LOAD_MAP": tile_ok & (k_end <= devices),
            "READ_MAP": tile_ok & (k_end <= devices) & (rdm_len <= MAXP),
            "FORWARD": tile_ok & (b >= 1) & (f["n"] == n_in) & (fwd_len <= MAXP),
            "BACKWARD": tile_ok & (b >= 1) & (f["n"] == n_out) & (fwd_len <= MAXP),
            "UPDATE": tile_ok & (b >= 1) & (f["ni"] == n_in) & (f["nj"] == n_out),
            "PULSE": tile_ok & (f["axis"] <= 1) & (f["index"] < Mux(f["axis"], n_out, n_in))
            & (f["n"] == Mux(f["axis"], n_in, n_out)),
            "COUNTERS": tile_ok,
        }

        def bounds(name, fld):
            lo, hi = P.kind_range(fld.kind, cfg)
            if name == "LOAD_MAP" and fld.name == "wmax":
                return 0, hi
            if name == "LOAD_MAP" and fld.name == "wmin":
                return lo, 0
            return lo, hi

        # ----- sequencer registers -----
        t = Signal(range(max(len(FIELDS) * devices, MAXP) + 2))  # byte, element, word
        q = Signal(range(len(FIELDS)))  # map field of the current word
        dev = Signal(range(devices + 1))  # device of the current word
        ai = Signal(range(8))  # request array the arriving bytes belong to
        ce = Signal(range(MAXP + 1))  # element of that array
        nb = Signal(2)  # byte of that element
        acc = Signal(32, reset_less=True)  # bytes of the element so far
        started, bad, prev_zero, armed, xvalid = (Signal(name=n) for n in (
            "started", "bad", "prev_zero", "armed", "xvalid"))
        staged = Signal.like(cur.shapes)
        sat = Signal(range(max(cfg.rows, cfg.cols) + 1))
        sat_pending, upd_d = Signal(), Signal()
        addr = Signal(range(2 * MAXP), reset_less=True)
        addr2 = Signal(range(2 * MAXP), reset_less=True)
        tc_done = armed & ~link.busy
        per_dev = Mux(is_op("LOAD_MAP", "READ_MAP"), len(FIELDS), 1)
        in_span = (dev >= k0) & (dev < k_end)
        e = dev - k0
        # e times a constant as a shift-add tree on the address width: a multiplier here would
        # be shared between the fields, with a selected operand in front of it
        e_a = Signal(signed(ADDR_BITS + 1))
        m.d.comb += e_a.eq(e)

        def e_times(c: int):
            return mul_const(e_a, c, ADDR_BITS)

        tcmd = link.cmd.payload
        m.d.comb += [tcmd.tile.eq(f["tile"]), tcmd.axis.eq(f["axis"]), tcmd.index.eq(f["index"]),
                     tcmd.count.eq(b)]
        with m.If(link.cmd.valid & link.cmd.ready):
            m.d.sync += armed.eq(1)
            with m.If(is_op("FORWARD", "BACKWARD", "UPDATE")):
                m.d.sync += nonce.eq(nonce + b)
            with m.If(is_op("PULSE")):
                m.d.sync += nonce.eq(nonce + 1)

        def tc(opv, nxt):
            m.d.comb += [link.cmd.valid.eq(1), tcmd.op.eq(opv)]
            with m.If(link.cmd.ready):
                m.next = nxt

        def send(kind, st=0, length=1):
            m.d.comb += [rb.reply.valid.eq(1), rb.reply.payload.kind.eq(kind),
                         rb.reply.payload.status.eq(st), rb.reply.payload.length.eq(length)]
            return rb.reply.ready

        def reply(st, length=1):
            with m.If(send(ReplyKind.STATUS, st, length)):
                m.next = "REPLYING"

        def write(a, v, width, when=1):
            m.d.comb += [rb.write.valid.eq(when), rb.write.payload.addr.eq(a),
                         rb.write.payload.value.eq(v), rb.write.payload.width.eq(width)]
            return rb.write.valid & rb.write.ready

        def read_job(a, count, width, sgn):
            m.d.comb += [rd.job.valid.eq(1), rd.job.payload.addr.eq(a),
                         rd.job.payload.count.eq(count), rd.job.payload.width.eq(width),
                         rd.job.payload.signed.eq(sgn)]
            with m.If(rd.job.ready):
                m.d.sync += started.eq(1)

        def feed_from_reader():
            m.d.comb += [link.data_in.valid.eq(rd.o.valid), link.data_in.payload.eq(rd.o.payload),
                         rd.o.ready.eq(link.data_in.ready)]

        def next_word():
            m.d.sync += t.eq(t + 1)
            with m.If(q == per_dev - 1):
                m.d.sync += [q.eq(0), dev.eq(dev + 1)]
            with m.Else():
                m.d.sync += q.eq(q + 1)

        # ----- decode while the payload arrives: scalars into registers, array elements
        # range-checked (a frame whose length disagrees with its layout is refused anyway) -----
        pbyte, pidx = frx.wr_data, frx.wr_addr
        whole = Mux(nb == 0, 0, acc) | (pbyte << (nb * 8))
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
        with m.If(frx.wr_en), m.Switch(op):
            for c in P.TABLE.commands:
                scalars, _a, size = req[c.name]
                with m.Case(Command[c.name]):
                    for name, (o, sz) in scalars.items():
                        for i in range(sz):
                            with m.If(pidx == o + i):
                                m.d.sync += f[name][8 * i:8 * i + 8].eq(pbyte)
                    with m.If(pidx >= size), m.Switch(ai):
                        for n, (fld, _o, _cnt, sz, sgn) in enumerate(arrays(c.name)[0]):
                            with m.Case(n):
                                done = nb == sz - 1
                                v = whole[:8 * sz].as_signed() if sgn else whole[:8 * sz]
                                if c.name == "SET":  # shapes: (n_in, n_out) per tile
                                    ok = (v >= 1) & (v <= Mux(ce[0], cfg.cols, cfg.rows))
                                    with m.If(done & ce[0]):
                                        m.d.sync += staged[ce[1:]].n_out.eq(v)
                                    with m.If(done & ~ce[0]):
                                        m.d.sync += staged[ce[1:]].n_in.eq(v)
                                else:
                                    lo, hi = bounds(c.name, fld)
                                    ok = (v >= lo) & (v <= hi)
                                m.d.sync += [acc.eq(whole), nb.eq(nb + 1)]
                                with m.If(done):
                                    m.d.sync += [nb.eq(0), ce.eq(ce + 1), bad.eq(bad | ~ok)]
                                    if (c.name, n) in ends:
                                        with m.If(ce + 1 == ends[c.name, n]):
                                            m.d.sync += [ce.eq(0), ai.eq(ai + 1)]

        m.d.comb += [xrd.addr.eq(t), xwr.addr.eq(t), xwr.data.eq(link.data_out.payload)]
        with m.FSM(name="cp_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(frx.hunting & ~frx.event.valid)
                m.d.sync += [t.eq(0), q.eq(0), dev.eq(0), armed.eq(0), started.eq(0), sat.eq(0),
                             sat_pending.eq(0), upd_d.eq(0), xvalid.eq(0), prev_zero.eq(0),
                             hstep.eq(0)]
                with m.If(frx.event.valid):
                    with m.If(ev.status != ST["OK"]):
                        with m.If(send(ReplyKind.LINK_ERROR, ev.status)):
                            m.next = "REPLYING"
                    with m.Elif(cached & (last == key)):
                        with m.If(send(ReplyKind.RESEND)):
                            m.next = "REPLYING"
                    with m.Else():
                        m.d.sync += [cached.eq(1), last.eq(key)]
                        with m.Switch(op):
                            for c in P.TABLE.commands:
                                with m.Case(Command[c.name]):
                                    with m.If(ev.length < req[c.name][2]):
                                        reply(ST["BAD_LENGTH"])
                                    with m.Else():
                                        m.next = "CHECK"
                            with m.Default():
                                reply(ST["UNKNOWN_OPCODE"])
            with m.State("REPLYING"):
                with m.If(rb.done):
                    m.d.comb += frx.event.ready.eq(1)
                    m.d.sync += [ai.eq(0), ce.eq(0), nb.eq(0), bad.eq(0)]
                    m.next = "IDLE"

            # ----- decode: the scalars and element checks ran as the payload arrived -----
            with m.State("CHECK"):
                m.d.sync += [t.eq(0), started.eq(0)]
                with m.Switch(op):
                    for c in P.TABLE.commands:
                        with m.Case(Command[c.name]):
                            with m.If(totals[c.name] != ev.length):
                                reply(ST["BAD_LENGTH"])
                            with m.Elif(~checks.get(c.name, Const(1)) | bad):
                                reply(ST["BAD_ARGUMENT"])
                            with m.Else():
                                m.next = {"LOAD_MAP": "PAIR", "FORWARD": "F_HEAD",
                                          "BACKWARD": "F_HEAD"}.get(c.name, f"X_{c.name}")
            with m.State("PAIR"):  # LOAD_MAP: wmin < wmax; with wmin <= 0 <= wmax, not both 0
                offs = {fld.name: o for fld, o, _c, _s, _g in arrays("LOAD_MAP")[0]}
                with m.If(t[1:] == k):
                    with m.If(bad):
                        reply(ST["BAD_ARGUMENT"])
                    with m.Else():
                        m.d.sync += t.eq(0)
                        m.next = "X_LOAD_MAP"
                with m.Elif(~started):
                    read_job(Mux(t[0], offs["wmin"], offs["wmax"]) + t[1:] * W["w"], 1, W["w"], 1)
                with m.Elif(rd.o.valid):
                    zero = rd.o.payload == 0
                    m.d.comb += rd.o.ready.eq(1)
                    m.d.sync += [t.eq(t + 1), started.eq(0), prev_zero.eq(zero),
                                 bad.eq(bad | (t[0] & zero & prev_zero))]

            # ----- execution -----
            with m.State("X_INFO"):
                info = P.encode_payload(P.command("INFO").reply, P.info_fields(cfg), cfg)
                rom = Array(Const(x, 8) for x in info)
                with m.If(write(1 + t, rom[t], 1)):
                    m.d.sync += t.eq(t + 1)
                    with m.If(t == len(info) - 1):
                        reply(ST["OK"], 1 + len(info))
            with m.State("X_RESET"):
                tc(Op.RESET, "X_RESET_WAIT")
            with m.State("X_RESET_WAIT"):
                with m.If(tc_done):
                    m.d.sync += [cur.eq(default), seed.eq(0), nonce.eq(0)]
                    reply(ST["OK"])
            with m.State("X_SET"):
                m.d.sync += [getattr(cur, n).eq(f[n]) for n in SETTING_NAMES]
                m.d.sync += cur.shapes.eq(staged)
                with m.If(f["restart"][0] | (f["seed"] != seed)):  # a seed write: nonce to 0
                    m.d.sync += [seed.eq(f["seed"]), nonce.eq(0)]
                    m.next = "X_SEED"
                with m.Else():
                    reply(ST["OK"])
            with m.State("X_SEED"):
                tc(Op.SEED, "X_SEED_WORD")
            with m.State("X_SEED_WORD"):
                m.d.comb += [link.data_in.valid.eq(1), link.data_in.payload.eq(seed)]
                with m.If(link.data_in.ready):
                    m.next = "X_WAIT"
            with m.State("X_GET"):
                off = rep["GET"][2]  # the shapes array follows the scalars
                gv = {**{n: getattr(cur, n) for n in SETTING_NAMES}, "seed": seed,
                      "nonce": nonce, "tiles": Const(cfg.tiles, 16)}
                items = [(o, gv[n], sz) for n, (o, sz) in rep["GET"][0].items()]
                fld, size, _sg = rep["GET"][1][0]  # shapes, (n_in, n_out) per tile
                for sh in cur.shapes:
                    items += [(off, sh.n_in, size), (off + size, sh.n_out, size)]
                    off += 2 * size
                with m.Switch(t):
                    for n, (o, val, sz) in enumerate(items):
                        with m.Case(n), m.If(write(o, val, sz)):
                            m.d.sync += t.eq(t + 1)
                            if n == len(items) - 1:
                                reply(ST["OK"], off)
            with m.State("X_WAIT"):
                with m.If(tc_done):
                    reply(ST["OK"])

            # PROGRAM, LOAD_MAP: old words to xbuf (unless all are new), then the merged write
            for name, read_op, full in (("PROGRAM", Op.READ, window), ("LOAD_MAP", Op.MAP_READ,
                                                                       devices)):
                with m.State(f"X_{name}"):
                    with m.If(k == 0):
                        reply(ST["OK"])
                    with m.Elif((k0 == 0) & (k == full)):
                        m.next = "W_CMD"
                    with m.Else():
                        tc(read_op, "R_FILL")
            with m.State("R_FILL"):
                m.d.comb += [link.data_out.ready.eq(1), xwr.en.eq(link.data_out.valid)]
                with m.If(link.data_out.valid):
                    m.d.sync += t.eq(t + 1)
                with m.If(tc_done):
                    m.d.sync += [armed.eq(0), t.eq(0)]
                    m.next = "W_CMD"
            with m.State("W_CMD"):
                tc(Mux(is_op("PROGRAM"), Op.PROGRAM, Op.MAP_WRITE), "MERGE")
            with m.State("MERGE"):
                prog, mp = arrays("PROGRAM")[0][0], arrays("LOAD_MAP")[0]
                src = Mux(is_op("PROGRAM"), prog[1] + e_times(prog[3]),
                          Array(o + e_times(sz) for _f, o, _c, sz, _g in mp)[q])
                width = Mux(is_op("PROGRAM"), prog[3], Array(Const(x) for x in map_w)[q])
                sgn = Mux(is_op("PROGRAM"), 1, Array(Const(g) for *_x, g in mp)[q])
                adv = Signal()
                m.d.comb += xrd.addr.eq(Mux(adv, t + 1, t))
                with m.If(dev == Mux(is_op("PROGRAM"), window, devices)):
                    m.next = "X_WAIT"
                with m.Elif(in_span):
                    with m.If(~started):
                        read_job(src, 1, width, sgn)
                    with m.Else():
                        feed_from_reader()
                        with m.If(link.data_in.valid & link.data_in.ready):
                            m.d.sync += [started.eq(0), xvalid.eq(0)]
                            next_word()
                with m.Elif(~xvalid):
                    m.d.sync += xvalid.eq(1)  # xbuf answers the address of this cycle next
                with m.Else():
                    m.d.comb += [link.data_in.valid.eq(1),
                                 link.data_in.payload.eq(xrd.data.as_signed()),
                                 adv.eq(link.data_in.ready)]
                    with m.If(link.data_in.ready):
                        next_word()

            # READ, READ_MAP, COUNTERS: result words into the reply
            for name, read_op in (("READ", Op.READ), ("READ_MAP", Op.MAP_READ)):
                with m.State(f"X_{name}"):
                    with m.If(k == 0):
                        m.next = "HDR"
                    with m.Else():
                        tc(read_op, "COLLECT")
            with m.State("X_COUNTERS"):
                tc(Op.COUNTERS, "COLLECT")
            with m.State("COLLECT"):
                word = link.data_out.payload
                vals = rep["COUNTERS"][0]["n"][0] + 1  # offset of values[0]
                slot = Array(Const(vals + 8 * s, range(MAXP)) for s in _SLOT)[t[1:]] + t[0] * 4
                rd_dst = rep["READ"][2] + e_times(W["w"])
                rdm_dst = Array(rdm_base[x] + e_times(map_w[x]) for x in range(len(FIELDS)))[q]
                dst = Mux(is_op("COUNTERS"), slot, Mux(is_op("READ"), rd_dst, rdm_dst))
                width = Mux(is_op("COUNTERS"), 4, Mux(is_op("READ"), W["w"],
                                                      Array(Const(x) for x in map_w)[q]))
                keep = is_op("COUNTERS") | in_span
                m.d.comb += link.data_out.ready.eq(~keep | rb.write.ready)
                write(dst, word, width, when=link.data_out.valid & keep)
                with m.If(link.data_out.valid & link.data_out.ready):
                    next_word()
                with m.If(tc_done & ~link.data_out.valid):
                    m.next = "HDR"
            assert rep["READ"][0]["k"] == rep["READ_MAP"][0]["k"]
            with m.State("HDR"):
                with m.If(is_op("COUNTERS")):
                    o, sz = rep["COUNTERS"][0]["n"]
                    with m.If(write(o, len(_TC_COUNTERS), sz)):
                        reply(ST["OK"], vals + 8 * len(_TC_COUNTERS))
                with m.Else():  # READ, READ_MAP
                    o, sz = rep["READ"][0]["k"]
                    with m.If(write(o, k, sz)):
                        reply(ST["OK"], Mux(is_op("READ"), rd_len, rdm_len))

            # FORWARD, BACKWARD: the reply leaves while the results are written. Its head
            # (status, b, m) is written first, then the transmitter starts and sends each byte
            # once the writer has passed it (`wm`, bytes written in order from 0); the saturation
            # counts at the end follow when the operation is complete.
            (ob, szb), (om, szm) = rep["FORWARD"][0]["b"], rep["FORWARD"][0]["m"]
            assert ob == 1 and om == ob + szb and y_off == om + szm, "the head precedes y"
            with m.State("F_HEAD"):
                with m.Switch(hstep):
                    with m.Case(0):
                        with m.If(write(0, ST["OK"], 1)):
                            m.d.sync += hstep.eq(1)
                    with m.Case(1):
                        with m.If(write(ob, b, szb)):
                            m.d.sync += hstep.eq(2)
                    with m.Case(2):
                        with m.If(write(om, m_out, szm)):
                            m.d.sync += hstep.eq(3)
                    with m.Default():
                        with m.If(send(ReplyKind.STREAM, length=fwd_len)):
                            with m.If(is_op("FORWARD")):
                                m.next = "X_FORWARD"
                            with m.Else():
                                m.next = "X_BACKWARD"
            with m.State("F_DRAIN"):  # the last writes land, then the rest may leave
                with m.If(send(ReplyKind.STREAM_END, ST["OK"], fwd_len)):
                    m.next = "REPLYING"

            # FORWARD, BACKWARD: x from the payload; y and saturation counts into the reply
            for name, vop in (("FORWARD", Op.FORWARD), ("BACKWARD", Op.BACKWARD)):
                with m.State(f"X_{name}"):
                    m.d.sync += [addr.eq(y_off), addr2.eq(y_off + y_bytes)]
                    tc(vop, "V_RUN")
            with m.State("V_RUN"):
                x = arrays("FORWARD")[0][0]
                with m.If(~started):
                    read_job(x[1], b * f["n"], x[3], 1)
                with m.Else():
                    feed_from_reader()
                result = RESULT(link.data_out.payload[:RESULT.size])
                s_now = sat + result.saturated
                with m.If(sat_pending):
                    with m.If(write(addr2, sat, W["sat"])):
                        m.d.sync += [sat_pending.eq(0), sat.eq(0), addr2.eq(addr2 + W["sat"])]
                with m.Else():
                    m.d.comb += link.data_out.ready.eq(rb.write.ready)
                    with m.If(write(addr, result.code, W["adc"],
                                    when=link.data_out.valid)):
                        m.d.sync += [addr.eq(addr + W["adc"]), sat.eq(s_now), t.eq(t + 1)]
                        with m.If(t == m_out - 1):
                            m.d.sync += [t.eq(0), sat_pending.eq(1)]
                with m.If(tc_done & ~sat_pending & ~link.data_out.valid):
                    m.d.sync += started.eq(0)
                    m.next = "F_DRAIN"

            # UPDATE: per sample, x then d; PULSE: the counts
            with m.State("X_UPDATE"):
                xs, ds = arrays("UPDATE")[0]
                m.d.sync += [addr.eq(xs[1]), addr2.eq(ds[1])]
                tc(Op.UPDATE, "U_RUN")
            with m.State("U_RUN"):
                with m.If(t == b):
                    m.next = "X_WAIT"
                with m.Elif(~started):
                    read_job(Mux(upd_d, addr2, addr), Mux(upd_d, f["nj"], f["ni"]), W["p"], 1)
                with m.Else():
                    feed_from_reader()
                    with m.If(~rd.busy):
                        m.d.sync += [started.eq(0), upd_d.eq(~upd_d)]
                        with m.If(upd_d):
                            m.d.sync += [t.eq(t + 1), addr2.eq(addr2 + f["nj"] * W["p"])]
                        with m.Else():
                            m.d.sync += addr.eq(addr + f["ni"] * W["p"])
            with m.State("X_PULSE"):
                tc(Op.PULSE, "P_RUN")
            with m.State("P_RUN"):
                cnts = arrays("PULSE")[0][0]
                with m.If(~started):
                    read_job(cnts[1], f["n"], cnts[3], 1)
                with m.Else():
                    feed_from_reader()
                    with m.If(~rd.busy):
                        m.next = "X_WAIT"
        return m
