"""Frame receiver and transmitter against the protocol's FrameParser and frame encoder."""

import random
import zlib

from amaranth.hdl import Module
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from ohmflow.emulator import protocol as P
from ohmflow.hdl.link.framing import (
    BANKS,
    LINK_CRC,
    ElementReader,
    FrameRx,
    FrameTx,
    crc32_update,
)

ST = P.ST


def random_stream(rng: random.Random, frames: int) -> tuple[bytes, list[int]]:
    """Frames, some corrupted, too long or cut short, with garbage between; and the indices of
    bytes before which the line goes silent (a timeout)."""
    out, silences = bytearray(), []
    for _ in range(frames):
        kind = rng.choice(["ok", "ok", "ok", "crc", "long", "garbage", "cut", "cut_header"])
        if kind == "garbage":
            out += bytes(rng.choice([0xA5, 0x5A, rng.randrange(256)]) for _ in range(7))
            continue
        payload = rng.randbytes(rng.choice([0, 1, 5, 40]))
        f = bytearray(P.encode_frame(rng.randrange(256), rng.randrange(256), payload))
        if kind == "crc":
            f[rng.randrange(6, len(f))] ^= 1 << rng.randrange(8)
        elif kind == "long":
            f[4:6] = (P.TABLE.max_payload + rng.randrange(1, 100)).to_bytes(2, "little")
            f = f[:6]
        elif kind == "cut":
            f = f[: rng.randrange(6, len(f))]
        elif kind == "cut_header":
            f = f[: rng.randrange(1, 6)]
        out += f
        if kind.startswith("cut"):
            silences.append(len(out))
    return bytes(out), silences


def reference(data: bytes, silences: list[int]):
    parser, events, pos = P.FrameParser(), [], 0
    for cut in [*silences, len(data)]:
        events += parser.feed(data[pos:cut])
        pos = cut
        if cut != len(data):
            err = parser.timeout()
            if err is not None:
                events.append(err)
    return [(ST["OK"], e.opcode, e.seq, len(e.payload), e.crc, e.payload) if isinstance(e, P.Frame)
            else (e.status, e.opcode, e.seq) for e in events]


def test_crc32_matches_zlib():
    from amaranth.hdl import Signal

    crc, byte = Signal(32), Signal(8)
    top = Module()
    nxt = Signal(32)
    top.d.comb += nxt.eq(crc32_update(crc, byte))
    data = b"123456789" + random.Random(1).randbytes(50)
    result = []

    async def tb(ctx):
        c = 0xFFFFFFFF
        for b in data:
            ctx.set(crc, c)
            ctx.set(byte, b)
            c = ctx.get(nxt)
        result.append(c ^ 0xFFFFFFFF)

    sim = Simulator(top)
    sim.add_testbench(tb)
    sim.run()
    assert result == [zlib.crc32(data)]
    assert zlib.crc32(b"123456789") == P.TABLE.crc["check"]


def test_link_crc_is_the_tables_crc():
    """The frames' `amaranth.lib.crc` parameters, built from the table, compute zlib's CRC-32."""
    data = random.Random(2).randbytes(300)
    assert LINK_CRC.compute(b"123456789") == P.TABLE.crc["check"]
    assert all(LINK_CRC.compute(data[:n]) == zlib.crc32(data[:n]) for n in range(0, 300, 7))


def test_rx_matches_parser():
    rng = random.Random(11)
    data, silences = random_stream(rng, 60)
    timeout = 40
    dut = FrameRx(timeout)
    got = []

    async def tb(ctx):
        buf = bytearray(P.TABLE.max_payload)
        hi = 0
        pos = 0
        for cut in [*silences, len(data)]:
            while pos < cut:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, data[pos])
                ctx.set(dut.event.ready, rng.random() < 0.5)
                if ctx.get(dut.wr_en):
                    buf[ctx.get(dut.wr_addr)] = ctx.get(dut.wr_data)
                    hi = max(hi, ctx.get(dut.wr_addr) + 1)
                if ctx.get(dut.event.valid) and ctx.get(dut.event.ready):
                    got.append(record(ctx.get(dut.event.payload), buf))
                if ctx.get(dut.rx.ready):
                    pos += 1
                await ctx.tick()
            ctx.set(dut.rx.valid, 0)
            for _ in range(timeout + 5 if cut != len(data) else 3):
                ctx.set(dut.event.ready, 1)
                if ctx.get(dut.event.valid):
                    got.append(record(ctx.get(dut.event.payload), buf))
                await ctx.tick()

    def record(ev, buf):
        if ev.status == ST["OK"]:
            return (ev.status, ev.opcode, ev.seq, ev.length, ev.crc, bytes(buf[: ev.length]))
        return (ev.status, ev.opcode, ev.seq)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    want = reference(data, silences)
    assert {e[0] for e in want} >= {ST["OK"], ST["BAD_CRC"], ST["TOO_LONG"], ST["TRUNCATED"]}
    assert got == want


def tx_on_buffer(content: bytes):
    """A `FrameTx` reading its payload from a buffer memory holding ``content``."""
    top = Module()
    top.submodules.tx = tx = FrameTx()
    top.submodules.mem = mem = Memory(shape=8, depth=P.TABLE.max_payload, init=content)
    rd = mem.read_port()
    top.d.comb += [rd.addr.eq(tx.rd_addr), tx.rd_data.eq(rd.data)]
    return top, tx


def test_tx_frames():
    rng = random.Random(3)
    content = rng.randbytes(300)
    top, tx = tx_on_buffer(content)
    jobs = [(rng.randrange(256), rng.randrange(256), rng.choice([1, 2, 57, 300]),
             rng.randrange(256), rng.random() < 0.7) for _ in range(12)]
    out = bytearray()

    async def tb(ctx):
        todo = list(jobs)
        for _ in range(8000):
            if todo:
                op, seq, n, status, from_buf = todo[0]
                ctx.set(tx.req.payload, {"opcode": op, "seq": seq, "status": status,
                                         "length": n if from_buf else 1, "from_buf": from_buf})
            ctx.set(tx.req.valid, bool(todo))
            if todo and ctx.get(tx.req.ready):
                todo.pop(0)
            ready = rng.random() < 0.6
            ctx.set(tx.tx.ready, ready)
            if ready and ctx.get(tx.tx.valid):
                out.append(ctx.get(tx.tx.payload))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    want = b"".join(P.encode_frame(op | P.TABLE.reply_flag, seq,
                                   content[:n] if from_buf else bytes((status,)))
                    for op, seq, n, status, from_buf in jobs)
    assert bytes(out) == want


def test_element_reader_streams_one_element_a_cycle_from_four_banks():
    """Random jobs (any alignment, widths 1/2/4, signed or not) against a little-endian decode
    of the same bytes, under random back-pressure; without back-pressure an element a cycle."""
    rng = random.Random(5)
    content = rng.randbytes(P.TABLE.max_payload)
    top = Module()
    top.submodules.rd = rd = ElementReader()
    for b in range(BANKS):
        top.submodules[f"bank{b}"] = mem = Memory(shape=8, depth=P.TABLE.max_payload // BANKS,
                                                  init=content[b::BANKS])
        port = mem.read_port()
        top.d.comb += [port.addr.eq(rd.rd_addr[b]), port.en.eq(rd.rd_en),
                       rd.rd_data[b].eq(port.data)]
    jobs = []
    for _ in range(40):
        width, signed = rng.choice([1, 2, 4]), rng.random() < 0.5
        count = rng.choice([1, 2, 3, 17, 64])
        jobs.append((rng.randrange(P.TABLE.max_payload - width * count), count, width, signed))

    def decode(addr, count, width, signed):
        return [int.from_bytes(content[addr + k * width: addr + (k + 1) * width], "little",
                               signed=signed) & 0xFFFFFFFF for k in range(count)]

    got, spans = [], []

    async def tb(ctx):
        for n, (addr, count, width, signed) in enumerate(jobs):
            while ctx.get(rd.busy):
                await ctx.tick()
            ctx.set(rd.job.payload, {"addr": addr, "count": count, "width": width,
                                     "signed": signed})
            ctx.set(rd.job.valid, 1)
            await ctx.tick()
            ctx.set(rd.job.valid, 0)
            stall = n % 2 == 1  # odd jobs under random back-pressure, even ones at full speed
            words, cycles = [], 0
            while len(words) < count:
                ready = not stall or rng.random() < 0.5
                ctx.set(rd.o.ready, ready)
                if ready and ctx.get(rd.o.valid):
                    words.append(ctx.get(rd.o.payload))
                await ctx.tick()
                cycles += 1
                assert cycles < 20 * count + 20, "the reader hung"
            got.append(words)
            spans.append(cycles)
            ctx.set(rd.o.ready, 0)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    for job, words in zip(jobs, got, strict=True):
        assert words == decode(*job), job
    for n, (job, cycles) in enumerate(zip(jobs, spans, strict=True)):
        if n % 2 == 0:  # fetch, data, output register: then one element a cycle
            assert cycles == job[1] + 2, (job, cycles)


def test_tx_waits_for_the_limit():
    """A streamed reply: a payload byte leaves only after ``limit`` passed it in an earlier
    cycle, and the frame is the same as without a limit."""
    rng = random.Random(6)
    content = rng.randbytes(200)
    top, tx = tx_on_buffer(content)
    out, sent_at, limits = bytearray(), [], []
    hs = P.constants()["HEADER_SIZE"]  # header bytes before the payload

    async def tb(ctx):
        ctx.set(tx.req.payload, {"opcode": 3, "seq": 9, "status": 0, "length": 150,
                                 "from_buf": 1})
        ctx.set(tx.req.valid, 1)
        ctx.set(tx.limit, 0)
        await ctx.tick()
        ctx.set(tx.req.valid, 0)
        for cycle in range(3000):
            limit = min(150, cycle // 3)
            ctx.set(tx.limit, limit)
            limits.append(limit)
            ready = rng.random() < 0.8
            ctx.set(tx.tx.ready, ready)
            if ready and ctx.get(tx.tx.valid):
                if hs <= len(out) < hs + 150:
                    sent_at.append((len(out) - hs, cycle))
                out.append(ctx.get(tx.tx.payload))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert bytes(out) == P.encode_frame(3 | P.TABLE.reply_flag, 9, content[:150])
    assert len(sent_at) == 150
    for p, cycle in sent_at:
        assert cycle >= 1 and limits[cycle - 1] > p, (p, cycle)
