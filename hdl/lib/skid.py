"""A register slice for a stream: two entries, every output and ``i.ready`` from registers.

Put between two components, it cuts the combinational paths that a stream's handshake otherwise
carries across them (valid and payload forward, ready backward), at one cycle of latency and no
loss of throughput: with ``o.ready`` high a beat per cycle passes. Order and contents of the
beats are unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Skid"]


class Skid(wiring.Component):
    """Stream register slice (skid buffer) of payload ``shape``.

    Ports
    -----
    i: In stream; ``i.ready`` is high while the skid entry is empty.
    o: Out stream; ``o.valid`` and ``o.payload`` are registers.
    busy: a beat is held (``o.valid``, or one waits in the skid entry).
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        held = Signal(self.shape, reset_less=True)
        held_valid = Signal()
        m.d.comb += [self.i.ready.eq(~held_valid), self.busy.eq(self.o.valid | held_valid)]
        with m.If(~self.o.valid | self.o.ready):  # the output register takes the next beat
            with m.If(held_valid):
                m.d.sync += [self.o.payload.eq(held), self.o.valid.eq(1), held_valid.eq(0)]
            with m.Else():
                m.d.sync += self.o.valid.eq(self.i.valid)
                with m.If(self.i.valid):
                    m.d.sync += self.o.payload.eq(self.i.payload)
        with m.Elif(self.i.valid & ~held_valid):  # output stalled: the beat waits aside
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1)]
        return m
