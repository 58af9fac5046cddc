"""The command processor: framed commands from a byte stream to the TileController and back.

It answers every frame as `ohmflow.emulator.executor.CommandExecutor` does, byte for byte: a
parser error gets its status and is forgotten; a repeat of the last executed frame (opcode, seq,
CRC) is answered from the reply buffer; otherwise the payload, buffered whole and CRC-checked
before anything happens, is decoded by the protocol table's layouts: BAD_LENGTH, then argument and
element-range checks (BAD_ARGUMENT), and only then TileController operations. Every constant comes
from `ohmflow.emulator.protocol`; offsets and counts are elaborated from its layouts.

Three parts in a row: the `CommandDecoder` (request registers, checks, the frame's verdict), the
`CommandSequencer` (settings, seed and nonce; tile operations through its walkers) and the
`ReplyBuilder` (reply buffer and transmitter), around the `FrameRx` and the payload buffer.
Partial PROGRAM and LOAD_MAP (a range of devices) read the whole window or tile into a word
buffer and write it back merged, because the tile's PROGRAM and MAP_WRITE cover every device.
COUNTERS reports the ten counters of the protocol's list, ``cycles`` last (the twin has no cycles).
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.link.command_decode import CommandDecoder
from ohmflow.hdl.link.command_sequencer import CommandSequencer
from ohmflow.hdl.link.framing import BANKS, ElementReader, FrameRx
from ohmflow.hdl.link.reply_builder import ReplyBuilder
from ohmflow.hdl.tile.tile_io import TileLink

__all__ = ["CommandProcessor"]


class CommandProcessor(wiring.Component):
    """Frames in on ``rx``, replies out on ``tx``; drives a TileController over ``tile``.

    Parameters
    ----------
    cfg: the chip config (INFO data, settings widths, element widths).
    byte_timeout: cycles of silence inside a frame before it is dropped as TRUNCATED
        (default: the protocol's byte timeout at ``cfg.clock_hz``).

    ``tile`` is a `TileLink` (its ``settings`` are the device's run-time settings); ``idle`` is high
    when no frame is being received, executed or answered.
    """

    def __init__(self, cfg: ChipConfig, byte_timeout: int | None = None):
        P.check_fits(cfg)
        self.cfg = cfg
        self.byte_timeout = byte_timeout or P.constants(cfg)["BYTE_TIMEOUT_CYCLES"]
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "idle": Out(1),
            "tile": Out(TileLink(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = FrameRx(self.byte_timeout)
        m.submodules.reader = reader = ElementReader()
        m.submodules.decoder = dec = CommandDecoder(self.cfg)
        m.submodules.sequencer = seq = CommandSequencer(self.cfg)
        m.submodules.replies = replies = ReplyBuilder()
        wiring.connect(m, wiring.flipped(self.rx), rx.rx)
        wiring.connect(m, replies.tx, wiring.flipped(self.tx))
        wiring.connect(m, seq.tile, wiring.flipped(self.tile))

        # the payload in four byte banks (address mod 4), written by the receiver, read by
        # the reader for the sequencer's walkers
        max_payload = P.constants()["MAX_PAYLOAD"]
        for b in range(BANKS):
            m.submodules[f"payload{b}"] = bank = Memory(shape=8, depth=-(-max_payload // BANKS),
                                                        init=[])
            wr, rd = bank.write_port(), bank.read_port()
            m.d.comb += [
                wr.addr.eq(rx.wr_addr >> 2), wr.data.eq(rx.wr_data),
                wr.en.eq(rx.wr_en & (rx.wr_addr[:2] == b)),
                rd.addr.eq(reader.rd_addr[b]), rd.en.eq(reader.rd_en),
                reader.rd_data[b].eq(rd.data),
            ]
        frame = rx.event.payload
        m.d.comb += [
            dec.frame.eq(frame), dec.frame_valid.eq(rx.event.valid), dec.release.eq(replies.done),
            dec.wr_addr.eq(rx.wr_addr), dec.wr_data.eq(rx.wr_data), dec.wr_en.eq(rx.wr_en),
            dec.shapes.eq(seq.tile.settings.shapes),
            seq.op.eq(dec.op), seq.request.eq(dec.request),
            seq.staged_shapes.eq(dec.staged_shapes), seq.spans.eq(dec.spans),
            seq.reader_busy.eq(reader.busy), seq.reply_done.eq(replies.done),
            replies.opcode.eq(frame.opcode), replies.seq.eq(frame.seq),
            rx.event.ready.eq(replies.done),
            self.idle.eq(seq.idle & rx.hunting & ~rx.event.valid),
        ]
        wiring.connect(m, dec.verdict, seq.verdict)
        wiring.connect(m, seq.reader, reader.job)
        wiring.connect(m, reader.o, seq.elements)
        wiring.connect(m, seq.write, replies.write)
        wiring.connect(m, seq.reply, replies.reply)
        return m
