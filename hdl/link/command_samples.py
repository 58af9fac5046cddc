"""UPDATE and PULSE in the command processor: the payload's codes to the tile.

UPDATE sends each sample's x codes, then its d codes (the request holds all x, then all d);
PULSE sends its counts. The walker finishes when the tile has completed the operation.
"""

from amaranth.hdl import Module, Mux, Signal
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.link.command_layouts import RequestArrays, kind_sizes
from ohmflow.hdl.link.command_walk import CommandWalker
from ohmflow.hdl.tile.tile_io import Op

__all__ = ["SampleFeeder"]

MAX_PAYLOAD = P.constants()["MAX_PAYLOAD"]


class SampleFeeder(CommandWalker):
    """UPDATE and PULSE: the codes, in the tile's order, then the wait for the tile."""

    def __init__(self, cfg: ChipConfig):
        super().__init__(cfg, ("go", "done", "op", "request", "tile_op", "tile_busy", "reader",
                               "elements", "reader_busy", "data_in"))

    def elaborate(self, platform):
        m = Module()
        self.moves(m)
        f = self.request
        arrays = RequestArrays(self.cfg, f)
        p_size = kind_sizes(self.cfg)["p"]
        samples_sent = Signal(range(MAX_PAYLOAD + 2))
        sending_d = Signal()  # the current sample's d codes (else its x codes)
        x_addr = Signal(range(2 * MAX_PAYLOAD), reset_less=True)  # next sample's x codes
        d_addr = Signal(range(2 * MAX_PAYLOAD), reset_less=True)  # next sample's d codes

        with m.FSM(name="samples_fsm"):
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [samples_sent.eq(0), sending_d.eq(0)]
                    with m.If(self.op.UPDATE):
                        m.next = "START_UPDATE"
                    with m.Else():
                        m.next = "START_PULSE"
            with m.State("START_UPDATE"):
                xs, ds = arrays("UPDATE")[0]
                m.d.sync += [x_addr.eq(xs[1]), d_addr.eq(ds[1])]
                self.run_tile(m, Op.UPDATE, "UPDATE")
            with m.State("UPDATE"):
                with m.If(samples_sent == f["b"]):
                    m.next = "WAIT"
                with m.Elif(~self.reading):
                    self.read(m, Mux(sending_d, d_addr, x_addr),
                              Mux(sending_d, f["nj"], f["ni"]), p_size, 1)
                with m.Else():
                    self.feed_from_reader(m)
                    with m.If(~self.reader_busy):
                        m.d.sync += [self.reading.eq(0), sending_d.eq(~sending_d)]
                        with m.If(sending_d):
                            m.d.sync += [samples_sent.eq(samples_sent + 1),
                                         d_addr.eq(d_addr + f["nj"] * p_size)]
                        with m.Else():
                            m.d.sync += x_addr.eq(x_addr + f["ni"] * p_size)
            with m.State("START_PULSE"):
                self.run_tile(m, Op.PULSE, "PULSE")
            with m.State("PULSE"):
                counts = arrays("PULSE")[0][0]
                with m.If(~self.reading):
                    self.read(m, counts[1], f["n"], counts[3], 1)
                with m.Else():
                    self.feed_from_reader(m)
                    with m.If(~self.reader_busy):
                        m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.tile_done):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        return m
