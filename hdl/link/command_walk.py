"""What the command processor's walkers share: their ports and the moves they are made of.

A walker runs one family of commands once the decoder has accepted them (`MergeWalker`,
`ResultCollector`, `VectorRunner`, `SampleFeeder`). The sequencer starts it with ``go`` and
replies when it raises ``done``. Walkers share the tile link, the payload reader and the reply
writer: each drives its outputs only while it runs (zero otherwise), so the sequencer joins them
by OR (`join_sources`, `join_sinks`).
"""

from functools import reduce
from operator import or_

from amaranth.hdl import Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import mul_const
from ohmflow.hdl.link.command_layouts import op_flags_layout, request_layout, spans_layout
from ohmflow.hdl.link.framing import ADDR_BITS, ReadJob, WriteJob
from ohmflow.hdl.tile.tile_io import WORD, Op, settings_layout

__all__ = ["CommandWalker", "join_sources", "join_sinks"]


def _ports(cfg: ChipConfig) -> dict:
    """Every port a walker may have (each takes those it uses)."""
    shapes = settings_layout(cfg)["shapes"].shape
    return {
        "go": In(1),
        "done": Out(1),
        "op": In(op_flags_layout()),
        "request": In(request_layout(cfg)),
        "spans": In(spans_layout(cfg, shapes)),
        "tile_op": Out(stream.Signature(Op)),
        "tile_busy": In(1),
        "reader": Out(stream.Signature(ReadJob)),
        "elements": In(stream.Signature(32)),
        "reader_busy": In(1),
        "write": Out(stream.Signature(WriteJob)),
        "data_in": Out(stream.Signature(WORD)),
        "data_out": In(stream.Signature(WORD)),
    }


class CommandWalker(wiring.Component):
    """A walker: the ports it names (of those below, plus ``extra``) and the moves it is made of.

    Ports
    -----
    go: start (in the cycle the command is accepted); done: finished (one cycle).
    op, request, spans: the decoded command.
    tile_op, tile_busy: the tile operation to start, and the tile's busy.
    reader, elements, reader_busy: element reads from the request's payload.
    write: bytes into the reply buffer. data_in, data_out: the tile's operand and result words.
    """

    def __init__(self, cfg: ChipConfig, names, extra=None):
        self.cfg = cfg
        ports = _ports(cfg)
        super().__init__({**{n: ports[n] for n in names}, **(extra or {})})

    def moves(self, m):
        """Set up the walker's registers; call once at the start of ``elaborate``."""
        #: the tile has accepted this walker's operation
        self.tile_started = Signal(name="tile_started")
        #: a read job is out for the current element(s)
        self.reading = Signal(name="reading")
        with m.If(self.go):
            m.d.sync += [self.tile_started.eq(0), self.reading.eq(0)]
        if "tile_op" in self.signature.members:
            with m.If(self.tile_op.valid & self.tile_op.ready):
                m.d.sync += self.tile_started.eq(1)
            self.tile_done = self.tile_started & ~self.tile_busy

    def run_tile(self, m, op: Op, nxt: str):
        """Start tile operation ``op``; go to state ``nxt`` once it is accepted."""
        m.d.comb += [self.tile_op.valid.eq(1), self.tile_op.payload.eq(op)]
        with m.If(self.tile_op.ready):
            m.next = nxt

    def read(self, m, addr, count, width, sgn):
        """Ask the reader for ``count`` elements of ``width`` bytes at ``addr``."""
        job = self.reader.payload
        m.d.comb += [self.reader.valid.eq(1), job.addr.eq(addr), job.count.eq(count),
                     job.width.eq(width), job.signed.eq(sgn)]
        with m.If(self.reader.ready):
            m.d.sync += self.reading.eq(1)

    def write_bytes(self, m, addr, value, width, when=1):
        """Offer ``value``'s ``width`` low bytes at reply offset ``addr``; the handshake."""
        job = self.write.payload
        m.d.comb += [self.write.valid.eq(when), job.addr.eq(addr), job.value.eq(value),
                     job.width.eq(width)]
        return self.write.valid & self.write.ready

    def feed_from_reader(self, m):
        """The reader's elements to the tile's ``data_in``."""
        m.d.comb += [self.data_in.valid.eq(self.elements.valid),
                     self.data_in.payload.eq(self.elements.payload),
                     self.elements.ready.eq(self.data_in.ready)]

    def times(self, m, value, name: str):
        """``value * c`` (on the address width) for constants c: a shift-add tree for each, not
        a multiplier shared between them with a selected operand in front of it."""
        a = Signal(signed(ADDR_BITS + 1), name=name)
        m.d.comb += a.eq(value)
        return lambda c: mul_const(a, c, ADDR_BITS)


def join_sources(m, sink, sources):
    """Streams into ``sink`` from ``sources``, of which one at a time drives (others drive 0)."""
    m.d.comb += [
        sink.valid.eq(reduce(or_, [s.valid for s in sources])),
        sink.payload.eq(reduce(or_, [Value.cast(s.payload) for s in sources])),
    ]
    m.d.comb += [s.ready.eq(sink.ready) for s in sources]


def join_sinks(m, source, sinks):
    """Stream ``source`` to every sink of ``sinks``; the one that runs takes it."""
    m.d.comb += [s.valid.eq(source.valid) for s in sinks]
    m.d.comb += [s.payload.eq(source.payload) for s in sinks]
    m.d.comb += source.ready.eq(reduce(or_, [s.ready for s in sinks]))
