"""The command processor's sequencer: a decoded command to tile operations and a reply.

It holds the device state the tile does not (run-time settings, seed, nonce, and a copy of the
step-shape tables and mode for READ_SHAPE), runs INFO, RESET, SET (with SEED), GET, LOAD_SHAPE
(the nodes into its copy and every lane's tables, then the mode) and READ_SHAPE itself, and
hands the other commands to their walker: `MergeWalker` (PROGRAM, LOAD_MAP), `ResultCollector`
(READ, READ_MAP, COUNTERS), `VectorRunner` (FORWARD, BACKWARD), `SampleFeeder` (UPDATE, PULSE),
`PhysicsWalker` (SET_PHYSICS, GET_PHYSICS, ADVANCE; it also gives the tile its settings at the
temperature). Refusals and the walkers' ends become requests to the `ReplyBuilder`; the
sequencer is idle again when the reply has left.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import SETTING_NAMES, SHAPE_NODES, ChipConfig, Settings
from ohmflow.emulator.step_shape import ONE
from ohmflow.hdl.link.command_decode import Action, Verdict
from ohmflow.hdl.link.command_layouts import (
    RequestArrays,
    op_flags_layout,
    payload_layout,
    request_layout,
    spans_layout,
)
from ohmflow.hdl.link.command_merge import MergeWalker
from ohmflow.hdl.link.command_physics import PhysicsWalker
from ohmflow.hdl.link.command_results import ResultCollector
from ohmflow.hdl.link.command_samples import SampleFeeder
from ohmflow.hdl.link.command_vectors import VectorRunner
from ohmflow.hdl.link.command_walk import join_sinks, join_sources
from ohmflow.hdl.link.framing import ReadJob, WriteJob
from ohmflow.hdl.link.reply_builder import ReplyKind, ReplyRequest
from ohmflow.hdl.tile.tile_io import WORD, Op, TileLink, settings_layout, settings_value

__all__ = ["CommandSequencer"]

ST = P.ST
#: LOAD_SHAPE's cycles before its first read: a gated tile clock, then the array's, are running
#: before the first node is written (hdl/lib/clock_gate.py)
WARM_UP = 2


class CommandSequencer(wiring.Component):
    """Settings, seed and nonce; INFO, RESET, SET, GET; the walkers of the other commands.

    Ports
    -----
    verdict: the decoder's verdict on each frame; op, request, staged_shapes, spans: the
        decoded command.
    reader, elements, reader_busy: element reads from the payload buffer.
    write: bytes into the reply buffer; reply: the reply to make; reply_done: it has left.
    tile: the TileController (``tile.settings``: the settings). idle: waiting for a verdict.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        shapes = settings_layout(cfg)["shapes"].shape
        super().__init__({
            "verdict": In(stream.Signature(Verdict)),
            "op": In(op_flags_layout()),
            "request": In(request_layout(cfg)),
            "staged_shapes": In(shapes),
            "spans": In(spans_layout(cfg, shapes)),
            "reader": Out(stream.Signature(ReadJob)),
            "elements": In(stream.Signature(32)),
            "reader_busy": In(1),
            "write": Out(stream.Signature(WriteJob)),
            "reply": Out(stream.Signature(ReplyRequest)),
            "reply_done": In(1),
            "tile": Out(TileLink(cfg)),
            "idle": Out(1),
        })

    def _walkers(self, m):
        """The walkers, joined to the sequencer's own moves on the shared streams."""
        cfg = self.cfg
        walkers = {"merge": MergeWalker(cfg), "results": ResultCollector(cfg),
                   "vectors": VectorRunner(cfg), "samples": SampleFeeder(cfg),
                   "physics": PhysicsWalker(cfg)}
        own = {n: stream.Signature(s).create() for n, s in (
            ("tile_op", Op), ("write", WriteJob), ("data_in", WORD), ("reply", ReplyRequest),
            ("reader", ReadJob), ("elements", 32))}
        link = self.tile
        for name, w in walkers.items():
            m.submodules[name] = w
            for port in ("op", "request", "spans"):
                if port in w.signature.members:
                    m.d.comb += getattr(w, port).eq(getattr(self, port))
            for port, value in (("tile_busy", link.busy), ("reader_busy", self.reader_busy)):
                if port in w.signature.members:
                    m.d.comb += getattr(w, port).eq(value)

        def having(port):
            return [getattr(w, port) for w in walkers.values() if port in w.signature.members]

        tile_op = stream.Signature(Op).create()
        join_sources(m, tile_op, [own["tile_op"], *having("tile_op")])
        m.d.comb += [link.cmd.valid.eq(tile_op.valid), link.cmd.payload.op.eq(tile_op.payload),
                     tile_op.ready.eq(link.cmd.ready)]
        join_sources(m, self.reader, [own["reader"], *having("reader")])
        join_sinks(m, self.elements, [own["elements"], *having("elements")])
        join_sources(m, self.write, [own["write"], *having("write")])
        join_sources(m, link.data_in, [own["data_in"], *having("data_in")])
        join_sinks(m, link.data_out, having("data_out"))
        join_sources(m, self.reply, [own["reply"], walkers["vectors"].reply])
        return walkers, own

    def elaborate(self, platform):
        m = Module()
        cfg, link, op, f = self.cfg, self.tile, self.op, self.request
        walkers, own = self._walkers(m)
        layout = settings_layout(cfg)
        settings = Signal(layout, init=settings_value(cfg, Settings.default(cfg)))
        default = layout.const(settings_value(cfg, Settings.default(cfg)))
        seed, nonce = Signal(32), Signal(32)
        phys = walkers["physics"]  # the tile's settings at the set temperature (§11.4)
        m.d.comb += [phys.settings.eq(settings), link.settings.eq(phys.tile_settings),
                     link.step_factor.eq(phys.step_factor)]
        byte = Signal(range(P.constants()["MAX_PAYLOAD"] + 1))  # INFO's byte, GET's field
        tile_started = Signal()
        # the step shape: its mode, and both tables (T_up, then T_down) for READ_SHAPE
        nodes = 2 * SHAPE_NODES
        m.submodules.shape_table = table = Memory(shape=len(link.shape_wr.value), depth=nodes,
                                                  init=[ONE] * nodes)
        shape_mode, job_sent = Signal.like(link.shape_mode), Signal()
        warm = Signal(range(WARM_UP + 1))
        m.d.comb += [phys.shape_mode.eq(shape_mode), link.shape_mode.eq(phys.tile_shape_mode)]
        cmd = link.cmd.payload
        m.d.comb += [cmd.tile.eq(Mux(op.ADVANCE, phys.tile, f["tile"])), cmd.axis.eq(f["axis"]),
                     cmd.index.eq(f["index"]), cmd.count.eq(f["b"]),
                     phys.programmed.eq(walkers["merge"].done & op.PROGRAM),
                     phys.programmed_tile.eq(f["tile"])]
        with m.If(link.cmd.valid & link.cmd.ready):
            m.d.sync += tile_started.eq(1)
            with m.If(op.FORWARD | op.BACKWARD | op.UPDATE):
                m.d.sync += nonce.eq(nonce + f["b"])
            with m.If(op.PULSE):
                m.d.sync += nonce.eq(nonce + 1)

        def run_tile(opv, nxt):
            m.d.comb += [own["tile_op"].valid.eq(1), own["tile_op"].payload.eq(opv)]
            with m.If(own["tile_op"].ready):
                m.next = nxt

        def reply(kind, status=0, length=1):
            r = own["reply"]
            m.d.comb += [r.valid.eq(1), r.payload.kind.eq(kind), r.payload.status.eq(status),
                         r.payload.length.eq(length)]
            with m.If(r.ready):
                m.next = "REPLYING"

        def write(addr, value, width):
            w = own["write"]
            m.d.comb += [w.valid.eq(1), w.payload.addr.eq(addr), w.payload.value.eq(value),
                         w.payload.width.eq(width)]
            return w.ready

        with m.FSM(name="sequencer_fsm"):
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.verdict.ready.eq(1)]
                m.d.sync += [byte.eq(0), tile_started.eq(0), job_sent.eq(0), warm.eq(0)]
                v = self.verdict.payload
                with m.If(self.verdict.valid):
                    with m.Switch(v.action):
                        with m.Case(Action.LINK_ERROR):
                            reply(ReplyKind.LINK_ERROR, v.status)
                        with m.Case(Action.RESEND):
                            reply(ReplyKind.RESEND)
                        with m.Case(Action.REFUSE):
                            reply(ReplyKind.STATUS, v.status)
                        with m.Case(Action.EXECUTE):
                            self._dispatch(m, walkers)
            with m.State("INFO"):
                info = P.encode_payload(P.command("INFO").reply, P.info_fields(cfg), cfg)
                with m.If(write(1 + byte, Array(Const(x, 8) for x in info)[byte], 1)):
                    m.d.sync += byte.eq(byte + 1)
                    with m.If(byte == len(info) - 1):
                        reply(ReplyKind.STATUS, ST["OK"], 1 + len(info))
            with m.State("RESET"):
                run_tile(Op.RESET, "RESET_WAIT")
            with m.State("RESET_WAIT"):
                with m.If(tile_started & ~link.busy):
                    m.d.sync += [settings.eq(default), seed.eq(0), nonce.eq(0)]
                    m.d.comb += phys.reset.eq(1)
                    reply(ReplyKind.STATUS, ST["OK"])
            with m.State("SET"):
                m.d.sync += [getattr(settings, n).eq(f[n]) for n in SETTING_NAMES]
                m.d.sync += settings.shapes.eq(self.staged_shapes)
                with m.If(f["restart"][0] | (f["seed"] != seed)):  # a seed write: nonce to 0
                    m.d.sync += [seed.eq(f["seed"]), nonce.eq(0)]
                    m.next = "SEED"
                with m.Else():
                    reply(ReplyKind.STATUS, ST["OK"])
            with m.State("SEED"):
                run_tile(Op.SEED, "SEED_WORD")
            with m.State("SEED_WORD"):
                m.d.comb += [own["data_in"].valid.eq(1), own["data_in"].payload.eq(seed)]
                with m.If(own["data_in"].ready):
                    m.next = "SEED_WAIT"
            with m.State("SEED_WAIT"):
                with m.If(tile_started & ~link.busy):
                    reply(ReplyKind.STATUS, ST["OK"])
            with m.State("GET"):
                self._get(m, settings, seed, nonce, byte, write, reply)
            with m.State("LOAD_SHAPE"):  # the decoder checked the mode and the nodes
                self._load_shape(m, own, table.write_port(), byte, job_sent, warm, shape_mode,
                                 reply)
            with m.State("READ_SHAPE"):
                self._read_shape(m, table.read_port(domain="comb"), shape_mode, byte, write,
                                 reply)
            with m.State("MERGE"):
                with m.If(walkers["merge"].done):
                    reply(ReplyKind.STATUS,
                          Mux(walkers["merge"].refused, ST["BAD_ARGUMENT"], ST["OK"]))
            with m.State("RESULTS"):
                with m.If(walkers["results"].done):
                    reply(ReplyKind.STATUS, ST["OK"], walkers["results"].length)
            with m.State("VECTORS"):  # the walker ends its streamed reply
                with m.If(walkers["vectors"].done):
                    m.next = "REPLYING"
            with m.State("SAMPLES"):
                with m.If(walkers["samples"].done):
                    reply(ReplyKind.STATUS, ST["OK"])
            with m.State("PHYSICS"):
                with m.If(phys.done):
                    reply(ReplyKind.STATUS, Mux(phys.refused, ST["BAD_ARGUMENT"], ST["OK"]),
                          phys.length)
            with m.State("REPLYING"):
                with m.If(self.reply_done):
                    m.next = "IDLE"
        return m

    def _dispatch(self, m, walkers):
        """An accepted command: to its state, or to its walker."""
        op = self.op
        families = (("merge", "MERGE", ("PROGRAM", "LOAD_MAP")),
                    ("results", "RESULTS", ("READ", "READ_MAP", "COUNTERS")),
                    ("vectors", "VECTORS", ("FORWARD", "BACKWARD")),
                    ("samples", "SAMPLES", ("UPDATE", "PULSE")),
                    ("physics", "PHYSICS", P.TIME_COMMANDS))
        own = ("INFO", "RESET", "SET", "GET", "LOAD_SHAPE", "READ_SHAPE")
        known = {n for *_x, ns in families for n in ns} | set(own)
        assert known == set(op.shape().members)
        for name in own:
            with m.If(op[name]):
                m.next = name
        for walker, state, names in families:
            with m.If(sum(op[n] for n in names) != 0):
                m.d.comb += walkers[walker].go.eq(1)
                m.next = state

    def _load_shape(self, m, own, wp, node, job_sent, warm, shape_mode, reply):
        """LOAD_SHAPE: both tables' nodes, one a cycle, into the copy and the tile; the mode."""
        (up, off, cnt, size, _sg), (down, off2, *_x) = RequestArrays(self.cfg, self.request)(
            "LOAD_SHAPE")[0]
        assert (up.name, down.name, cnt, off2) == ("up", "down", SHAPE_NODES, off + cnt * size)
        job, el, wr = own["reader"], own["elements"], self.tile.shape_wr
        m.d.comb += wr.load.eq(1)
        with m.If(warm != WARM_UP):  # gated simulation clocks start before the first write
            m.d.sync += warm.eq(warm + 1)
        with m.Elif(~job_sent):
            m.d.comb += [job.valid.eq(1), job.payload.addr.eq(off),
                         job.payload.count.eq(2 * SHAPE_NODES), job.payload.width.eq(size)]
            with m.If(job.ready):
                m.d.sync += job_sent.eq(1)
        with m.Elif(node == 2 * SHAPE_NODES):
            m.d.sync += shape_mode.eq(self.request["mode"])
            reply(ReplyKind.STATUS, ST["OK"])
        with m.Else():
            is_down = node >= SHAPE_NODES
            m.d.comb += [el.ready.eq(1), wp.addr.eq(node), wp.data.eq(el.payload),
                         wp.en.eq(el.valid), wr.en.eq(el.valid), wr.down.eq(is_down),
                         wr.node.eq(Mux(is_down, node - SHAPE_NODES, node)),
                         wr.value.eq(el.payload)]
            with m.If(el.valid):
                m.d.sync += node.eq(node + 1)

    def _read_shape(self, m, rp, shape_mode, field, write, reply):
        """READ_SHAPE: the mode, then both tables' nodes, one field a step."""
        scalars, arrays, off = payload_layout(P.command("READ_SHAPE").reply, self.cfg, start=1)
        (o, sz), = scalars.values()
        nodes = sum(int(fld.count) for fld, _sz, _sg in arrays)
        size = arrays[0][1]
        assert all(a[1] == size for a in arrays) and nodes == 2 * SHAPE_NODES
        m.d.comb += rp.addr.eq(field - 1)
        with m.If(field == 0):
            with m.If(write(o, shape_mode, sz)):
                m.d.sync += field.eq(1)
        with m.Else():
            with m.If(write(off + (field - 1) * size, rp.data, size)):
                m.d.sync += field.eq(field + 1)
                with m.If(field == nodes):
                    reply(ReplyKind.STATUS, ST["OK"], off + nodes * size)

    def _get(self, m, settings, seed, nonce, field, write, reply):
        """GET: the settings, seed, nonce, tile count and shapes, one field a step."""
        cfg = self.cfg
        scalars, arrays, off = payload_layout(P.command("GET").reply, cfg, start=1)
        values = {**{n: getattr(settings, n) for n in SETTING_NAMES}, "seed": seed,
                  "nonce": nonce, "tiles": Const(cfg.tiles, 16)}
        items = [(o, values[n], sz) for n, (o, sz) in scalars.items()]
        _fld, size, _sg = arrays[0]  # shapes, (n_in, n_out) per tile
        for shape in settings.shapes:
            items += [(off, shape.n_in, size), (off + size, shape.n_out, size)]
            off += 2 * size
        with m.Switch(field):
            for n, (o, val, sz) in enumerate(items):
                with m.Case(n), m.If(write(o, val, sz)):
                    m.d.sync += field.eq(field + 1)
                    if n == len(items) - 1:
                        reply(ReplyKind.STATUS, ST["OK"], off)
