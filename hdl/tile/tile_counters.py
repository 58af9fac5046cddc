"""The tile's per-tile counters: a memory row per tile, worked on in registers during an operation.

An operation loads its tile's row (`load`), adds the increments of every cycle, and stores the
row back (`store`) with ``cycles`` advanced by the operation's length; COUNTERS reports a row as
two words per counter (bits 31..0, then 47..32), in `COUNTER_NAMES` order.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.tile.tile_io import COUNTER_BITS, COUNTER_NAMES, WORD

__all__ = ["CounterBank", "INC_BITS"]

INC_BITS = 16  #: width of a counter's increment in one cycle


class CounterBank(wiring.Component):
    """Counters of ``cfg.tiles`` tiles.

    Ports
    -----
    tile: the operation's tile (its row is read continuously).
    restart: an operation is accepted: its cycle count restarts.
    load: the row read for ``tile`` is loaded into the registers (no increment this cycle).
    inc: per-counter increments, added every cycle but ``load``'s.
    store: the registers are written back to ``tile``'s row, ``cycles`` plus the operation's.
    report: Out stream of the row's words while ``reporting``; ``reported``: the last is taken.
    clear: every tile's row is zeroed, one a cycle; ``cleared`` in the cycle of the last.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        n = len(COUNTER_NAMES)
        super().__init__({
            "tile": In(range(max(2, cfg.tiles))),
            "restart": In(1),
            "load": In(1),
            "inc": In(data.ArrayLayout(INC_BITS, n)),
            "store": In(1),
            "reporting": In(1),
            "report": Out(stream.Signature(WORD)),
            "reported": Out(1),
            "clear": In(1),
            "cleared": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        names = COUNTER_NAMES
        m.submodules.mem = mem = Memory(shape=data.ArrayLayout(COUNTER_BITS, len(names)),
                                        depth=max(2, cfg.tiles), init=[])
        rd, wr = mem.read_port(), mem.write_port()
        cnt = [Signal(COUNTER_BITS, reset_less=True, name=f"cnt_{n}") for n in names]
        elapsed = Signal(COUNTER_BITS, reset_less=True)
        m.d.comb += [rd.addr.eq(self.tile), rd.en.eq(1)]
        m.d.sync += elapsed.eq(elapsed + 1)
        with m.If(self.restart):
            m.d.sync += elapsed.eq(0)
        with m.If(self.load):
            m.d.sync += [cnt[k].eq(rd.data[k]) for k in range(len(cnt))]
        with m.Else():
            m.d.sync += [v.eq(v + self.inc[k]) for k, v in enumerate(cnt)]

        with m.If(self.store):
            m.d.comb += [wr.addr.eq(self.tile), wr.en.eq(1)]
            for k, v in enumerate(cnt):
                m.d.comb += wr.data[k].eq(v + elapsed + 1 if names[k] == "cycles" else v)

        halves = []
        for v in cnt:
            halves += [v[:32], v[32:]]
        half = Signal(range(len(halves)))
        with m.If(self.reporting):
            m.d.comb += [self.report.valid.eq(1), self.report.payload.eq(Array(halves)[half])]
            with m.If(self.report.ready):
                m.d.sync += half.eq(half + 1)
                with m.If(half == len(halves) - 1):
                    m.d.sync += half.eq(0)
                    m.d.comb += self.reported.eq(1)

        cleared_tile = Signal(range(cfg.tiles + 1))
        with m.If(self.clear):
            m.d.comb += [wr.addr.eq(cleared_tile), wr.en.eq(1), wr.data.eq(0)]
            m.d.sync += cleared_tile.eq(cleared_tile + 1)
            with m.If(cleared_tile == cfg.tiles - 1):
                m.d.sync += cleared_tile.eq(0)
                m.d.comb += self.cleared.eq(1)
        return m
