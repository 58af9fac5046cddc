"""FORWARD and BACKWARD in the command processor: the reply leaves while the results come.

The reply's head (status, b, m) is written first; then the transmitter starts (a STREAM reply)
and sends each byte once the writer has passed it. The vectors' codes go from the payload to the
tile; each result word's code is written into the reply, and after each vector's m results its
count of saturated results. When the operation is complete and the last bytes are written the
reply ends (STREAM_END).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.link.command_layouts import RequestArrays, kind_sizes, payload_layout
from ohmflow.hdl.link.command_walk import CommandWalker
from ohmflow.hdl.link.reply_builder import ReplyKind, ReplyRequest
from ohmflow.hdl.tile.tile_io import RESULT, Op

__all__ = ["VectorRunner"]

MAX_PAYLOAD = P.constants()["MAX_PAYLOAD"]


class VectorRunner(CommandWalker):
    """FORWARD and BACKWARD: head, codes in, results and saturation counts out, as a stream.

    ``reply``: the STREAM and STREAM_END requests of the reply.
    """

    def __init__(self, cfg: ChipConfig):
        super().__init__(cfg, ("go", "done", "op", "request", "spans", "tile_op", "tile_busy",
                               "reader", "elements", "write", "data_in", "data_out"),
                         {"reply": Out(stream.Signature(ReplyRequest))})

    def elaborate(self, platform):
        m = Module()
        self.moves(m)
        cfg, op, f, spans = self.cfg, self.op, self.request, self.spans
        size = kind_sizes(cfg)
        rep = payload_layout(P.command("FORWARD").reply, cfg, start=1)
        (ob, szb), (om, szm) = rep[0]["b"], rep[0]["m"]
        y_off = rep[2]
        assert ob == 1 and om == ob + szb and y_off == om + szm, "the head precedes y"
        x = RequestArrays(cfg, f)("FORWARD")[0][0]
        b, m_out = f["b"], spans.m_out
        head_step = Signal(2)  # bytes of the head written: status, b, m
        result_no = Signal(range(max(cfg.rows, cfg.cols) + 1))  # result of the current vector
        saturated = Signal(range(max(cfg.rows, cfg.cols) + 1))  # its saturated results so far
        sat_due = Signal()  # the vector's saturation count is to be written
        y_addr = Signal(range(2 * MAX_PAYLOAD), reset_less=True)  # next result's offset
        sat_addr = Signal(range(2 * MAX_PAYLOAD), reset_less=True)  # next count's offset

        def reply(kind, status, length):
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.kind.eq(kind),
                         self.reply.payload.status.eq(status),
                         self.reply.payload.length.eq(length)]
            return self.reply.ready

        with m.FSM(name="vectors_fsm"):
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [head_step.eq(0), result_no.eq(0), saturated.eq(0),
                                 sat_due.eq(0)]
                    m.next = "HEAD"
            with m.State("HEAD"):
                with m.Switch(head_step):
                    with m.Case(0):
                        with m.If(self.write_bytes(m, 0, P.ST["OK"], 1)):
                            m.d.sync += head_step.eq(1)
                    with m.Case(1):
                        with m.If(self.write_bytes(m, ob, b, szb)):
                            m.d.sync += head_step.eq(2)
                    with m.Case(2):
                        with m.If(self.write_bytes(m, om, m_out, szm)):
                            m.d.sync += head_step.eq(3)
                    with m.Default():
                        with m.If(reply(ReplyKind.STREAM, 0, spans.fwd_len)):
                            m.next = "START"
            with m.State("START"):
                m.d.sync += [y_addr.eq(y_off), sat_addr.eq(y_off + spans.y_bytes)]
                self.run_tile(m, Mux(op.FORWARD, Op.FORWARD, Op.BACKWARD), "RUN")
            with m.State("RUN"):
                with m.If(~self.reading):
                    self.read(m, x[1], b * f["n"], x[3], 1)
                with m.Else():
                    self.feed_from_reader(m)
                result = RESULT(self.data_out.payload[:RESULT.size])
                with m.If(sat_due):
                    with m.If(self.write_bytes(m, sat_addr, saturated, size["sat"])):
                        m.d.sync += [sat_due.eq(0), saturated.eq(0),
                                     sat_addr.eq(sat_addr + size["sat"])]
                with m.Else():
                    m.d.comb += self.data_out.ready.eq(self.write.ready)
                    with m.If(self.write_bytes(m, y_addr, result.code, size["adc"],
                                               when=self.data_out.valid)):
                        m.d.sync += [y_addr.eq(y_addr + size["adc"]),
                                     saturated.eq(saturated + result.saturated),
                                     result_no.eq(result_no + 1)]
                        with m.If(result_no == m_out - 1):
                            m.d.sync += [result_no.eq(0), sat_due.eq(1)]
                with m.If(self.tile_done & ~sat_due & ~self.data_out.valid):
                    m.d.sync += self.reading.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):  # the last writes land, then the rest may leave
                with m.If(reply(ReplyKind.STREAM_END, P.ST["OK"], spans.fwd_len)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        return m
