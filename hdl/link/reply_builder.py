"""The reply side of the command processor: the reply buffer, its writer and the transmitter.

A command's results are written into the reply buffer through ``write`` (little-endian elements,
one byte a cycle); a request on ``reply`` then sends the frame. Kinds of reply (`ReplyKind`):

- ``STATUS``: the status byte is written at offset 0, then ``length`` bytes of the buffer leave;
- ``RESEND``: the buffer leaves again as the last reply left it (a repeated frame);
- ``LINK_ERROR``: one status byte and nothing from the buffer (a frame the receiver refused);
- ``STREAM``: the buffer starts to leave at once and each byte waits until the writer has passed
  it (FORWARD and BACKWARD: the head is written first, the results as they come);
- ``STREAM_END``: the last byte of a ``STREAM`` reply is written; it is kept as the reply to
  resend, with ``status`` and ``length``.

``done`` is high for one cycle when the transmitter has taken the reply: the frame is answered.
A ``STREAM`` request is accepted in the cycle the transmitter takes it (``ready`` follows the
transmitter), every other kind as soon as the builder is idle.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.hdl.link.framing import NO_LIMIT, PAYLOAD_BITS, ByteWriter, FrameTx, WriteJob

__all__ = ["ReplyKind", "ReplyRequest", "ReplyBuilder"]


class ReplyKind(enum.Enum, shape=3):
    """How a reply is made (see the module's docstring)."""

    STATUS = 0
    RESEND = 1
    LINK_ERROR = 2
    STREAM = 3
    STREAM_END = 4


class ReplyRequest(data.Struct):
    """A reply to make: its kind, status byte and payload length (status byte included)."""

    kind: ReplyKind
    status: 8
    length: PAYLOAD_BITS


class ReplyBuilder(wiring.Component):
    """Reply buffer, `ByteWriter` and `FrameTx` of the command processor.

    Ports
    -----
    tx: the reply bytes.
    write: elements into the reply buffer; write_busy: the writer has bytes left to write.
    reply: the reply to make (`ReplyRequest`); opcode, seq: the frame being answered.
    done: the transmitter has taken the reply (one cycle).
    """

    def __init__(self):
        super().__init__({
            "tx": Out(stream.Signature(8)),
            "write": In(stream.Signature(WriteJob)),
            "write_busy": Out(1),
            "reply": In(stream.Signature(ReplyRequest)),
            "opcode": In(8),
            "seq": In(8),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        max_payload = P.constants()["MAX_PAYLOAD"]
        m.submodules.buffer = buffer = Memory(shape=8, depth=max_payload, init=[])
        m.submodules.writer = writer = ByteWriter()
        m.submodules.sender = sender = FrameTx()
        buf_wr, buf_rd = buffer.write_port(), buffer.read_port()
        wiring.connect(m, sender.tx, wiring.flipped(self.tx))
        m.d.comb += [
            buf_wr.addr.eq(writer.wr_addr), buf_wr.data.eq(writer.wr_data),
            buf_wr.en.eq(writer.wr_en),
            buf_rd.addr.eq(sender.rd_addr), sender.rd_data.eq(buf_rd.data),
            self.write_busy.eq(writer.busy),
        ]
        status = Signal(8)  # the status byte to write, or to send alone
        length = Signal(range(max_payload + 1))  # the reply's payload length, kept for RESEND
        # a STREAM reply leaves while it is written: bytes written so far, in order from 0
        written = Signal(range(max_payload + 1))
        streaming = Signal()
        m.d.comb += sender.limit.eq(Mux(streaming, written, NO_LIMIT))
        with m.If(writer.wr_en & (writer.wr_addr == written)):
            m.d.sync += written.eq(written + 1)

        # the writer: the status byte while it is written, else the ``write`` jobs
        own_write = Signal()
        job = writer.job.payload
        m.d.comb += self.write.ready.eq(writer.job.ready & ~own_write)
        with m.If(own_write):
            m.d.comb += [writer.job.valid.eq(1), job.addr.eq(0), job.value.eq(status),
                         job.width.eq(1)]
        with m.Else():
            m.d.comb += [writer.job.valid.eq(self.write.valid), job.eq(self.write.payload)]
        req = self.reply.payload
        send = sender.req.payload
        m.d.comb += [send.opcode.eq(self.opcode), send.seq.eq(self.seq)]

        with m.FSM(name="reply_fsm"):
            with m.State("IDLE"):
                with m.Switch(req.kind):
                    with m.Case(ReplyKind.STREAM):
                        m.d.comb += [sender.req.valid.eq(self.reply.valid),
                                     send.length.eq(req.length), send.from_buf.eq(1),
                                     self.reply.ready.eq(sender.req.ready)]
                    with m.Default():
                        m.d.comb += self.reply.ready.eq(1)
                with m.If(self.reply.valid & self.reply.ready):
                    with m.Switch(req.kind):
                        with m.Case(ReplyKind.STATUS):
                            m.d.sync += [status.eq(req.status), length.eq(req.length)]
                            m.next = "WRITE_STATUS"
                        with m.Case(ReplyKind.RESEND):
                            m.next = "SEND_BUFFER"
                        with m.Case(ReplyKind.LINK_ERROR):
                            m.d.sync += status.eq(req.status)
                            m.next = "SEND_STATUS"
                        with m.Case(ReplyKind.STREAM):
                            m.d.sync += streaming.eq(1)
                            m.next = "STREAMING"
            with m.State("WRITE_STATUS"):
                m.d.comb += own_write.eq(1)
                with m.If(writer.job.ready):
                    m.next = "SEND_BUFFER"
            with m.State("SEND_BUFFER"):  # once the last byte is written
                m.d.comb += [sender.req.valid.eq(~writer.busy), send.length.eq(length),
                             send.from_buf.eq(1)]
                with m.If(sender.req.valid & sender.req.ready):
                    m.next = "SENT"
            with m.State("SEND_STATUS"):
                m.d.comb += [sender.req.valid.eq(1), send.length.eq(1), send.status.eq(status)]
                with m.If(sender.req.ready):
                    m.next = "SENT"
            with m.State("STREAMING"):
                m.d.comb += self.reply.ready.eq(~writer.busy)
                with m.If(self.reply.valid & self.reply.ready):
                    m.d.sync += [streaming.eq(0), status.eq(req.status), length.eq(req.length)]
                    m.next = "SENT"
            with m.State("SENT"):  # the transmitter takes the next request once this one left
                with m.If(sender.req.ready):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += [written.eq(0), streaming.eq(0)]
                    m.next = "IDLE"
        return m
