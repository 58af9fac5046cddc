"""READ, READ_MAP and COUNTERS in the command processor: the tile's words into the reply.

READ and READ_MAP walk every device of the window (READ) or the tile (READ_MAP, six words a
device) and keep the words of the request's span; COUNTERS takes the counters (two words each,
low then high) in the TileController's order and places them in the protocol's. Then the head of
the reply (k, or the counter count) is written, and ``length`` is the reply's length.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib.wiring import Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import FIELDS
from ohmflow.hdl.link.command_layouts import kind_sizes, payload_layout
from ohmflow.hdl.link.command_walk import CommandWalker
from ohmflow.hdl.tile.tile_io import COUNTER_NAMES, Op

__all__ = ["ResultCollector"]

MAX_PAYLOAD = P.constants()["MAX_PAYLOAD"]
#: the protocol's slot of each of the TileController's counters
_SLOT = [P.TABLE.counters.index(n) for n in COUNTER_NAMES]


class ResultCollector(CommandWalker):
    """READ, READ_MAP and COUNTERS: result words to reply bytes, then the reply's head.

    ``length`` (with ``done``): the reply's payload length.
    """

    def __init__(self, cfg: ChipConfig):
        super().__init__(cfg, ("go", "done", "op", "request", "spans", "tile_op", "tile_busy",
                               "write", "data_out"),
                         {"length": Out(range(MAX_PAYLOAD + 1))})

    def elaborate(self, platform):
        m = Module()
        self.moves(m)
        cfg, op, f, spans = self.cfg, self.op, self.request, self.spans
        devices = cfg.rows * cfg.cols
        rep = {c.name: payload_layout(c.reply, cfg, start=1) for c in P.TABLE.commands}
        map_sizes = [sz for _f, sz, _s in payload_layout(P.command("LOAD_MAP").request, cfg)[1]]
        w_size = kind_sizes(cfg)["w"]
        word = Signal(range(max(len(FIELDS) * devices, MAX_PAYLOAD) + 2))  # words received
        field = Signal(range(len(FIELDS)))  # map field of the current word
        device = Signal(range(devices + 1))  # device of the current word
        in_span = (device >= f["k0"]) & (device < spans.span_end)
        span_times = self.times(m, device - f["k0"], "span_index")
        per_device = Mux(op.READ_MAP, len(FIELDS), 1)
        values = rep["COUNTERS"][0]["n"][0] + 1  # offset of values[0]
        assert rep["READ"][0]["k"] == rep["READ_MAP"][0]["k"]

        with m.FSM(name="results_fsm"):
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [word.eq(0), field.eq(0), device.eq(0)]
                    m.next = "START"
            with m.State("START"):
                with m.If(op.COUNTERS):
                    self.run_tile(m, Op.COUNTERS, "COLLECT")
                with m.Elif(f["k"] == 0):
                    m.next = "HEAD"
                with m.Else():
                    self.run_tile(m, Mux(op.READ, Op.READ, Op.MAP_READ), "COLLECT")
            with m.State("COLLECT"):
                slot = (Array(Const(values + 8 * s, range(MAX_PAYLOAD)) for s in _SLOT)[word[1:]]
                        + word[0] * 4)
                rd_dst = rep["READ"][2] + span_times(w_size)
                rdm_dst = Array(spans.rdm_base[x] + span_times(map_sizes[x])
                                for x in range(len(FIELDS)))[field]
                dst = Mux(op.COUNTERS, slot, Mux(op.READ, rd_dst, rdm_dst))
                width = Mux(op.COUNTERS, 4, Mux(op.READ, w_size,
                                                Array(Const(x) for x in map_sizes)[field]))
                keep = op.COUNTERS | in_span
                m.d.comb += self.data_out.ready.eq(~keep | self.write.ready)
                self.write_bytes(m, dst, self.data_out.payload, width,
                                 when=self.data_out.valid & keep)
                with m.If(self.data_out.valid & self.data_out.ready):
                    m.d.sync += word.eq(word + 1)
                    with m.If(field == per_device - 1):
                        m.d.sync += [field.eq(0), device.eq(device + 1)]
                    with m.Else():
                        m.d.sync += field.eq(field + 1)
                with m.If(self.tile_done & ~self.data_out.valid):
                    m.next = "HEAD"
            with m.State("HEAD"):
                with m.If(op.COUNTERS):
                    o, sz = rep["COUNTERS"][0]["n"]
                    with m.If(self.write_bytes(m, o, len(COUNTER_NAMES), sz)):
                        m.d.comb += [self.done.eq(1),
                                     self.length.eq(values + 8 * len(COUNTER_NAMES))]
                        m.next = "IDLE"
                with m.Else():  # READ, READ_MAP
                    o, sz = rep["READ"][0]["k"]
                    with m.If(self.write_bytes(m, o, f["k"], sz)):
                        m.d.comb += [self.done.eq(1),
                                     self.length.eq(Mux(op.READ, spans.rd_len, spans.rdm_len))]
                        m.next = "IDLE"
        return m
