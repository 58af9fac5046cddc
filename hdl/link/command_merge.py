"""PROGRAM and LOAD_MAP in the command processor: a range of devices merged into the whole.

The tile's PROGRAM and MAP_WRITE cover every device of the window (PROGRAM) or of the tile
(MAP_WRITE), so a partial request reads the old words first (READ or MAP_READ) into a word
buffer, unless every device is new, and writes them back with the request's words in its span.
LOAD_MAP first checks its pairs: wmin < wmax, that is with wmin <= 0 <= wmax, not both 0.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import FIELDS
from ohmflow.hdl.link.command_layouts import RequestArrays, kind_sizes
from ohmflow.hdl.link.command_walk import CommandWalker
from ohmflow.hdl.tile.tile_io import Op

__all__ = ["MergeWalker"]

MAX_PAYLOAD = P.constants()["MAX_PAYLOAD"]


class MergeWalker(CommandWalker):
    """PROGRAM and LOAD_MAP: the pair check, the old words, the merged write.

    ``refused`` (with ``done``): a LOAD_MAP pair is out of order (BAD_ARGUMENT).
    """

    def __init__(self, cfg: ChipConfig):
        super().__init__(cfg, ("go", "done", "op", "request", "spans", "tile_op", "tile_busy",
                               "reader", "elements", "data_in", "data_out"),
                         {"refused": Out(1)})

    def elaborate(self, platform):
        m = Module()
        self.moves(m)
        cfg, op, f = self.cfg, self.op, self.request
        devices = cfg.rows * cfg.cols
        width = max(cfg.w_bits, cfg.step_bits + 1, cfg.slope_bits)
        m.submodules.old_words = old_words = Memory(shape=width, depth=len(FIELDS) * devices,
                                                    init=[])
        old_wr, old_rd = old_words.write_port(), old_words.read_port()
        arrays = RequestArrays(cfg, f)
        assert [fld.name for fld, *_x in arrays("LOAD_MAP")[0]] == list(FIELDS)
        w_size = kind_sizes(cfg)["w"]
        k0, k = f["k0"], f["k"]
        window, span_end = self.spans.window, self.spans.span_end
        # word of the tile's walk, or element of the pairs
        word = Signal(range(max(len(FIELDS) * devices, MAX_PAYLOAD) + 2))
        field = Signal(range(len(FIELDS)))  # map field of the current word
        device = Signal(range(devices + 1))  # device of the current word
        old_ready = Signal()  # old_words shows the current word
        prev_zero, pair_bad = Signal(), Signal()  # pairs: wmax of this pair was 0; a bad pair
        in_span = (device >= k0) & (device < span_end)
        span_times = self.times(m, device - k0, "span_index")
        per_device = Mux(op.LOAD_MAP, len(FIELDS), 1)
        m.d.comb += [old_rd.addr.eq(word), old_wr.addr.eq(word),
                     old_wr.data.eq(self.data_out.payload)]

        def next_word():
            m.d.sync += word.eq(word + 1)
            with m.If(field == per_device - 1):
                m.d.sync += [field.eq(0), device.eq(device + 1)]
            with m.Else():
                m.d.sync += field.eq(field + 1)

        with m.FSM(name="merge_fsm"):
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [word.eq(0), field.eq(0), device.eq(0), old_ready.eq(0),
                                 prev_zero.eq(0), pair_bad.eq(0)]
                    with m.If(op.LOAD_MAP):
                        m.next = "PAIRS"
                    with m.Else():
                        m.next = "START"
            with m.State("PAIRS"):
                offs = {fld.name: o for fld, o, _c, _s, _g in arrays("LOAD_MAP")[0]}
                with m.If(word[1:] == k):
                    with m.If(pair_bad):
                        m.d.comb += [self.done.eq(1), self.refused.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += word.eq(0)
                        m.next = "START"
                with m.Elif(~self.reading):
                    self.read(m, Mux(word[0], offs["wmin"], offs["wmax"]) + word[1:] * w_size,
                              1, w_size, 1)
                with m.Elif(self.elements.valid):
                    zero = self.elements.payload == 0
                    m.d.comb += self.elements.ready.eq(1)
                    m.d.sync += [word.eq(word + 1), self.reading.eq(0), prev_zero.eq(zero),
                                 pair_bad.eq(pair_bad | (word[0] & zero & prev_zero))]
            with m.State("START"):
                full = Mux(op.PROGRAM, window, devices)
                with m.If(k == 0):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif((k0 == 0) & (k == full)):
                    m.next = "WRITE_CMD"
                with m.Else():
                    self.run_tile(m, Mux(op.PROGRAM, Op.READ, Op.MAP_READ), "READ_OLD")
            with m.State("READ_OLD"):
                m.d.comb += [self.data_out.ready.eq(1), old_wr.en.eq(self.data_out.valid)]
                with m.If(self.data_out.valid):
                    m.d.sync += word.eq(word + 1)
                with m.If(self.tile_done):
                    m.d.sync += [self.tile_started.eq(0), word.eq(0)]
                    m.next = "WRITE_CMD"
            with m.State("WRITE_CMD"):
                self.run_tile(m, Mux(op.PROGRAM, Op.PROGRAM, Op.MAP_WRITE), "MERGE")
            with m.State("MERGE"):
                prog, mp = arrays("PROGRAM")[0][0], arrays("LOAD_MAP")[0]
                src = Mux(op.PROGRAM, prog[1] + span_times(prog[3]),
                          Array(o + span_times(sz) for _f, o, _c, sz, _g in mp)[field])
                width = Mux(op.PROGRAM, prog[3], Array(Const(sz) for *_x, sz, _g in mp)[field])
                sgn = Mux(op.PROGRAM, 1, Array(Const(g) for *_x, g in mp)[field])
                advance = Signal()
                m.d.comb += old_rd.addr.eq(Mux(advance, word + 1, word))
                with m.If(device == Mux(op.PROGRAM, window, devices)):
                    m.next = "WAIT"
                with m.Elif(in_span):
                    with m.If(~self.reading):
                        self.read(m, src, 1, width, sgn)
                    with m.Else():
                        self.feed_from_reader(m)
                        with m.If(self.data_in.valid & self.data_in.ready):
                            m.d.sync += [self.reading.eq(0), old_ready.eq(0)]
                            next_word()
                with m.Elif(~old_ready):
                    m.d.sync += old_ready.eq(1)  # old_words answers this cycle's address next
                with m.Else():
                    m.d.comb += [self.data_in.valid.eq(1),
                                 self.data_in.payload.eq(old_rd.data.as_signed()),
                                 advance.eq(self.data_in.ready)]
                    with m.If(self.data_in.ready):
                        next_word()
            with m.State("WAIT"):
                with m.If(self.tile_done):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        return m

