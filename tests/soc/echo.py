"""A byte-stream test design for the emulator harness: an echo through a FIFO."""

from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out


class Echo(wiring.Component):
    """Returns every byte it receives, XORed with ``mask``, through a ``depth``-byte FIFO.

    It has the emulator's top-level interface: ``rx`` and ``tx`` byte streams and ``idle``.
    """

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    idle: Out(1)

    def __init__(self, mask: int = 0, depth: int = 16):
        self.mask, self.depth = mask, depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=8, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.rx.payload ^ self.mask),
            q.w_en.eq(self.rx.valid),
            self.rx.ready.eq(q.w_rdy),
            self.tx.payload.eq(q.r_data),
            self.tx.valid.eq(q.r_rdy),
            q.r_en.eq(self.tx.ready),
            self.idle.eq(~q.r_rdy & (q.level == 0)),
        ]
        return m
