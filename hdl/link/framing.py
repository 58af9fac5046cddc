"""The link layer of the command processor: frame receiver and transmitter with CRC-32.

Frames are ``sync | opcode | seq | length u16 | payload | crc u32`` (`ohmflow.emulator.protocol`,
whose table gives every constant used here). `FrameRx` behaves byte for byte as the protocol's
`FrameParser`: it hunts for the sync, answers an over-long header with TOO_LONG, a CRC mismatch
with BAD_CRC and a silence of ``timeout`` cycles inside a frame with TRUNCATED (a partial header is
dropped silently). `FrameTx` sends a reply whose payload comes from a buffer or is one status byte.
`ElementReader` moves little-endian elements out of the payload buffer (four byte banks, one element
a cycle) and `ByteWriter` into the reply buffer (one byte a cycle).
"""

import types

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.crc import Algorithm, Processor
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.hdl.lib.checked import Checked

__all__ = ["Command", "LINK_CRC", "crc32_update", "Event", "TxRequest", "FrameRx", "FrameTx",
           "ReadJob", "WriteJob", "ElementReader", "ByteWriter", "BANKS", "NO_LIMIT"]

C = P.constants()
_CRC = P.TABLE.crc
assert _CRC["refin"] and _CRC["refout"], "the gateware CRC is the reflected form"
#: the reflected polynomial (bit-reversed), shifted right each step
CRC_POLY_REFLECTED = int(f"{_CRC['poly']:032b}"[::-1], 2)
PAYLOAD_BITS = C["MAX_PAYLOAD"].bit_length()
#: the protocol's opcodes as an `amaranth.lib.enum` (members and values from the command table)
Command = types.new_class("Command", (enum.Enum,), {"shape": 8}, lambda ns: [
    ns.__setitem__(c.name, c.opcode) for c in P.TABLE.commands])
#: the link's CRC (the protocol table's) over bytes, for `amaranth.lib.crc.Processor`
LINK_CRC = Algorithm(crc_width=32, polynomial=_CRC["poly"], initial_crc=_CRC["init"],
                     reflect_input=_CRC["refin"], reflect_output=_CRC["refout"],
                     xor_output=_CRC["xorout"])(data_width=8)


def _crc_step(crc: int, byte: int) -> int:
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (CRC_POLY_REFLECTED if crc & 1 else 0)
    return crc


# The byte step is linear over GF(2): output bit o is the XOR of the input bits in _TAPS[o]
# (inputs 0..31 are the CRC register, 32..39 the byte).
_TAPS = [[i for i in range(40)
          if (_crc_step(1 << i if i < 32 else 0, 1 << (i - 32) if i >= 32 else 0) >> o) & 1]
         for o in range(32)]


def crc32_update(crc, byte) -> Value:
    """The CRC register after one more byte (reflected, LSB first), as an XOR network: for the
    rv32 engine's CRC unit, whose register the firmware reads and sets (frames use `LINK_CRC`)."""
    bits = Cat(Value.cast(crc)[:32], Value.cast(byte)[:8])
    out = []
    for taps in _TAPS:
        x = bits[taps[0]]
        for t in taps[1:]:
            x = x ^ bits[t]
        out.append(x)
    return Cat(*out)


class Event(data.Struct):
    """A frame as received: ``status`` OK (CRC good), BAD_CRC, TOO_LONG or TRUNCATED."""

    status: 8
    opcode: 8
    seq: 8
    length: 16
    crc: 32


class TxRequest(data.Struct):
    """A reply to send: payload ``length`` bytes from the buffer, or only ``status``."""

    opcode: 8
    seq: 8
    length: 16
    status: 8
    from_buf: 1


class FrameRx(Checked, wiring.Component):
    """Frame receiver: writes the payload to ``wr_*`` and reports each frame on ``event``.

    While an event waits on ``event`` the receiver takes no bytes (``rx.ready`` low), so the payload
    stays valid in the buffer until the event is consumed.
    """

    @classmethod
    def check(cls, timeout: int) -> None:
        if timeout < 2:
            raise ValueError(f"timeout must be at least 2 cycles, got {timeout}")

    def __init__(self, timeout: int):
        self.timeout = timeout
        super().__init__({
            "rx": In(stream.Signature(8)),
            "event": Out(stream.Signature(Event)),
            "wr_addr": Out(PAYLOAD_BITS),
            "wr_data": Out(8),
            "wr_en": Out(1),
            "hunting": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        byte = self.rx.payload
        fire = self.rx.valid & self.rx.ready
        ev = Signal(Event)
        m.submodules.crc = crc = Processor(LINK_CRC)  # over opcode .. payload
        m.d.comb += crc.data.eq(byte)
        crc_rx = Signal(32, reset_less=True)
        idx = Signal(PAYLOAD_BITS + 1, reset_less=True)
        timer = Signal(range(self.timeout + 1))
        length = Cat(ev.length[:8], byte)  # the length once its high byte arrives

        m.d.comb += [self.event.payload.eq(ev), self.wr_addr.eq(idx), self.wr_data.eq(byte)]
        with m.If(fire):
            m.d.sync += timer.eq(0)
        with m.Else():
            m.d.sync += timer.eq(timer + 1)
        expired = timer == self.timeout - 1

        def emit(status):
            m.d.sync += ev.status.eq(status)
            m.next = "EVENT"

        with m.FSM(name="rx_fsm"):
            with m.State("HUNT"):
                m.d.comb += [self.rx.ready.eq(1), self.hunting.eq(1)]
                with m.If(fire & (byte == C["SYNC0"])):
                    m.next = "SYNC1"
            with m.State("SYNC1"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.comb += crc.start.eq(1)  # the CRC starts after the sync
                with m.If(fire):
                    with m.If(byte == C["SYNC1"]):
                        m.next = "OPCODE"
                    with m.Elif(byte != C["SYNC0"]):
                        m.next = "HUNT"
                with m.Elif(expired):
                    m.next = "HUNT"
            for state, field, nxt in (("OPCODE", ev.opcode, "SEQ"), ("SEQ", ev.seq, "LEN0")):
                with m.State(state):
                    m.d.comb += self.rx.ready.eq(1)
                    m.d.comb += crc.valid.eq(fire)
                    with m.If(fire):
                        m.d.sync += field.eq(byte)
                        m.next = nxt
                    with m.Elif(expired):
                        m.next = "HUNT"
            with m.State("LEN0"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.comb += crc.valid.eq(fire)
                with m.If(fire):
                    m.d.sync += ev.length[:8].eq(byte)
                    m.next = "LEN1"
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("LEN1"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.comb += crc.valid.eq(fire)
                with m.If(fire):
                    m.d.sync += [ev.length.eq(length), idx.eq(0)]
                    with m.If(length > C["MAX_PAYLOAD"]):
                        emit(C["ST_TOO_LONG"])
                    with m.Elif(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("PAYLOAD"):
                m.d.comb += [self.rx.ready.eq(1), self.wr_en.eq(fire), crc.valid.eq(fire)]
                with m.If(fire):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == ev.length - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "CRC"
                with m.Elif(expired):
                    emit(C["ST_TRUNCATED"])
            with m.State("CRC"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(fire):
                    # the CRC bytes are not part of the CRC
                    m.d.sync += [crc_rx.eq(Cat(crc_rx[8:], byte)), idx.eq(idx + 1)]
                    with m.If(idx == 3):
                        got = Cat(crc_rx[8:], byte)
                        m.d.sync += ev.crc.eq(got)
                        emit(Mux(got == crc.crc, C["ST_OK"], C["ST_BAD_CRC"]))
                with m.Elif(expired):
                    emit(C["ST_TRUNCATED"])
            with m.State("EVENT"):
                m.d.comb += self.event.valid.eq(1)
                with m.If(self.event.ready):
                    m.next = "HUNT"
        return m


#: `FrameTx.limit` when every byte of the buffer may be sent
NO_LIMIT = (1 << (PAYLOAD_BITS + 1)) - 1


class FrameTx(wiring.Component):
    """Reply transmitter, one byte per cycle: header, payload (buffer or status byte), CRC.

    ``limit`` lets a reply leave while its payload is still being written: buffer bytes at
    index ``limit`` and beyond wait (``limit`` counts bytes written in earlier cycles; the
    transmitter looks at it one cycle late, so a byte is read at least a cycle after its write).
    """

    def __init__(self):
        super().__init__({
            "req": In(stream.Signature(TxRequest)),
            "tx": Out(stream.Signature(8)),
            "rd_addr": Out(PAYLOAD_BITS),
            "rd_data": In(8),
            "limit": In(PAYLOAD_BITS + 1, init=NO_LIMIT),
        })

    def elaborate(self, platform):
        m = Module()
        r = Signal(TxRequest)
        k = Signal(PAYLOAD_BITS + 4)  # index of the byte on tx, counting from the sync
        m.submodules.crc = crc = Processor(LINK_CRC)
        busy = Signal()
        hs = C["HEADER_SIZE"]
        end = r.length + hs  # index of the first CRC byte
        limit = Signal(PAYLOAD_BITS + 1, init=NO_LIMIT)
        m.d.sync += limit.eq(self.limit)
        waiting = r.from_buf & (k >= hs) & (k < end) & ((k - hs) >= limit)
        fire = self.tx.valid & self.tx.ready
        m.d.comb += [self.req.ready.eq(~busy), self.tx.valid.eq(busy & ~waiting)]
        # rd_data holds buf[rd_addr of the previous cycle]: aim at the byte shown next cycle
        nxt = Mux(fire, k + 1, k)
        m.d.comb += self.rd_addr.eq((nxt - hs)[:PAYLOAD_BITS])
        body = Mux(r.from_buf, self.rd_data, r.status)
        final = crc.crc
        with m.Switch(k):
            with m.Case(0):
                m.d.comb += self.tx.payload.eq(C["SYNC0"])
            with m.Case(1):
                m.d.comb += self.tx.payload.eq(C["SYNC1"])
            with m.Case(2):
                m.d.comb += self.tx.payload.eq(r.opcode | C["REPLY_FLAG"])
            with m.Case(3):
                m.d.comb += self.tx.payload.eq(r.seq)
            with m.Case(4):
                m.d.comb += self.tx.payload.eq(r.length[:8])
            with m.Case(5):
                m.d.comb += self.tx.payload.eq(r.length[8:])
            with m.Default():
                with m.If(k < end):
                    m.d.comb += self.tx.payload.eq(body)
                with m.Else():
                    m.d.comb += self.tx.payload.eq((final >> ((k - end)[:2] * 8))[:8])
        with m.If(~busy):
            with m.If(self.req.valid):
                m.d.sync += [r.eq(self.req.payload), k.eq(0), busy.eq(1)]
                m.d.comb += crc.start.eq(1)
        with m.Elif(fire):
            m.d.sync += k.eq(k + 1)
            m.d.comb += [crc.valid.eq((k >= 2) & (k < end)), crc.data.eq(self.tx.payload)]
            with m.If(k == end + 3):
                m.d.sync += busy.eq(0)
        return m


ADDR_BITS = PAYLOAD_BITS


class ReadJob(data.Struct):
    """Read ``count`` elements of ``width`` bytes (1, 2 or 4) from byte address ``addr``."""

    addr: ADDR_BITS
    count: 16
    width: 3
    signed: 1


class WriteJob(data.Struct):
    """Write the ``width`` low bytes (1 to 4) of ``value`` at byte address ``addr``."""

    addr: ADDR_BITS
    value: 32
    width: 3


def _extend(v: Value, width: Value, signed: Value) -> Value:
    """The low ``width`` bytes of ``v`` sign- or zero-extended to 32 bits."""
    out = v[:32]
    for w in (1, 2):
        low = v[: 8 * w]
        out = Mux(width == w, Mux(signed, low.as_signed(), low.as_unsigned()), out)
    return Value.cast(out)[:32]


#: byte banks of the payload buffer an `ElementReader` reads in parallel (address mod BANKS)
BANKS = 4
BANK_BITS = ADDR_BITS - 2


class ElementReader(wiring.Component):
    """Streams little-endian elements out of a byte memory kept in `BANKS` banks.

    Byte address ``a`` lives in bank ``a % 4`` at row ``a // 4``; every fetch reads all four
    banks (synchronous read ports with a shared enable), so an element of 1, 2 or 4 bytes at any
    alignment leaves every cycle unless ``o`` stalls.
    """

    def __init__(self):
        super().__init__({
            "job": In(stream.Signature(ReadJob)),
            "o": Out(stream.Signature(32)),
            "rd_addr": Out(data.ArrayLayout(BANK_BITS, BANKS)),
            "rd_en": Out(1),
            "rd_data": In(data.ArrayLayout(8, BANKS)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        j = Signal(ReadJob, reset_less=True)
        left = Signal(16)  # elements still to fetch
        addr = Signal(ADDR_BITS, reset_less=True)
        dvalid = Signal()  # rd_data holds a fetched element
        doff = Signal(2, reset_less=True)  # its first byte's bank
        ovalid = Signal()
        oword = Signal(32, reset_less=True)
        out_free = ~ovalid | self.o.ready
        take = dvalid & out_free
        fetch = (left != 0) & (~dvalid | take)
        for b in range(BANKS):  # bank b holds byte (b - addr) mod 4 of the element
            m.d.comb += self.rd_addr[b].eq((addr + (b - addr[:2])[:2]) >> 2)
        banks = Value.cast(self.rd_data)
        whole = (Cat(banks, banks) >> (doff * 8))[:32]  # byte k from bank (doff + k) mod 4
        m.d.comb += [
            self.rd_en.eq(fetch),
            self.o.valid.eq(ovalid), self.o.payload.eq(oword),
            self.busy.eq((left != 0) | dvalid | ovalid),
            self.job.ready.eq(~self.busy),
        ]
        with m.If(self.o.ready):
            m.d.sync += ovalid.eq(0)
        with m.If(take):
            m.d.sync += [oword.eq(_extend(whole, j.width, j.signed)), ovalid.eq(1)]
        m.d.sync += dvalid.eq(fetch | (dvalid & ~take))
        with m.If(fetch):
            m.d.sync += [addr.eq(addr + j.width), left.eq(left - 1), doff.eq(addr[:2])]
        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [j.eq(self.job.payload), addr.eq(self.job.payload.addr),
                         left.eq(self.job.payload.count)]
        return m


class ByteWriter(wiring.Component):
    """Writes little-endian elements into a byte memory, one byte per cycle."""

    def __init__(self):
        super().__init__({
            "job": In(stream.Signature(WriteJob)),
            "wr_addr": Out(ADDR_BITS),
            "wr_data": Out(8),
            "wr_en": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        addr = Signal(ADDR_BITS, reset_less=True)
        value = Signal(32, reset_less=True)
        left = Signal(3)
        m.d.comb += [self.wr_addr.eq(addr), self.wr_data.eq(value[:8]), self.wr_en.eq(left != 0),
                     self.busy.eq(left != 0), self.job.ready.eq(left <= 1)]
        with m.If(left != 0):
            m.d.sync += [addr.eq(addr + 1), value.eq(value >> 8), left.eq(left - 1)]
        with m.If(self.job.valid & self.job.ready):
            p = self.job.payload
            m.d.sync += [addr.eq(p.addr), value.eq(p.value), left.eq(p.width)]
        return m
