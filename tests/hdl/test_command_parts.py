"""The command processor's parts one by one: `ReplyBuilder` against the protocol's reply encoder,
`CommandDecoder` against the reference executor's statuses and payload decoder, and the walkers
`ResultCollector` and `SampleFeeder` against the reply bytes and word orders the protocol gives,
with a stub tile and a stub payload reader around them (`MergeWalker` and `VectorRunner`:
test_command_walkers.py)."""

from __future__ import annotations

import zlib

import numpy as np
from amaranth.hdl import Shape
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import get_config
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.link.command_decode import Action, CommandDecoder
from ohmflow.hdl.link.command_layouts import request_layout
from ohmflow.hdl.link.command_results import ResultCollector
from ohmflow.hdl.link.command_samples import SampleFeeder
from ohmflow.hdl.link.reply_builder import ReplyBuilder, ReplyKind
from ohmflow.hdl.tile.tile_io import COUNTER_NAMES, Op
from ohmflow.sim.cocotb_frames import FrameGen

from .hdlbench import recv, run, send, signed32
from .linkbench import op_flags, with_payload

CFG = get_config("tiny")
ST = P.ST


def _collect_tx(dut, rng, out, stop):
    async def monitor(ctx):
        while not stop:
            r = rng.random() < 0.7
            ctx.set(dut.tx.ready, r)
            _, _, valid, byte = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
            if valid and r:
                out.append(byte)
    return monitor


def test_reply_builder_frames_match_the_protocol_encoder():
    rng = np.random.default_rng(3)
    dut = ReplyBuilder()
    out, stop, want = [], [], []
    buffer = bytearray(P.constants()["MAX_PAYLOAD"])

    async def write(ctx, addr, data, p_valid=0.6):
        pos = 0
        while pos < len(data):  # elements of 1 to 4 bytes, little-endian
            w = min(int(rng.integers(1, 5)), len(data) - pos)
            value = int.from_bytes(data[pos:pos + w], "little")
            await send(ctx, dut.write, [{"addr": addr + pos, "value": value, "width": w}],
                       rng, p_valid)
            pos += w
        buffer[addr:addr + len(data)] = data

    async def reply(ctx, kind, status=0, length=1):
        await send(ctx, dut.reply, [{"kind": kind, "status": status, "length": length}])

    async def drive(ctx):
        last = b""
        for k in range(14):
            opcode, seq = int(rng.integers(0, 0x40)), int(rng.integers(256))
            ctx.set(dut.opcode, opcode)
            ctx.set(dut.seq, seq)
            how = ["status", "stream", "resend", "error"][k % 4] if k else "status"
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 40))).tolist())
            status = int(rng.integers(256))
            if how == "status":
                await write(ctx, 1, data)
                await reply(ctx, ReplyKind.STATUS, status, 1 + len(data))
                last = P.encode_reply(opcode, seq, status, data)
                want.append(last)
            elif how == "stream":  # the head, the request, then the rest as it is written
                await write(ctx, 0, bytes([status]))
                await reply(ctx, ReplyKind.STREAM, length=1 + len(data))
                await write(ctx, 1, data, 0.1)  # slower than the transmitter
                await reply(ctx, ReplyKind.STREAM_END, status, 1 + len(data))
                last = P.encode_reply(opcode, seq, status, data)
                want.append(last)
            elif how == "resend":  # the buffer as the last reply left it, under this header
                await reply(ctx, ReplyKind.RESEND)
                body = last[6:-4]
                want.append(P.encode_reply(opcode, seq, body[0], body[1:]))
            else:
                await reply(ctx, ReplyKind.LINK_ERROR, status)
                want.append(P.encode_reply(opcode, seq, status))
            await ctx.tick().until(dut.done)
        stop.append(1)

    run(dut, drive, _collect_tx(dut, rng, out, stop), max_cycles=50_000)
    assert bytes(out) == b"".join(want)


def _shapes(twin):
    return [{"n_in": a, "n_out": b} for a, b in twin.settings.shapes]


def test_command_decoder_verdicts_and_requests_follow_the_executor():
    rng = np.random.default_rng(4)
    dut = CommandDecoder(CFG)
    twin = Twin(CFG)
    ex = CommandExecutor(twin)
    gen = FrameGen(CFG, twin, rng, max_vectors=3, bad=0.4, shapes=True, times=True)
    frames = []
    for k in range(70):
        data = gen.command()
        body = data[2:-4]
        opcode, seq, payload = body[0], body[1], body[4:]
        if k % 10 == 7:  # an opcode the table does not have, a payload cut short
            opcode = 0x7E if k % 20 == 7 else opcode
            payload = payload if k % 20 == 7 else payload[:1]
        frames.append((opcode, seq, payload))
    seen = []

    async def drive(ctx):
        last = None
        for k, (opcode, seq, payload) in enumerate(frames):
            crc = zlib.crc32(bytes([opcode, seq]) + payload)
            link_error = k % 13 == 12
            ctx.set(dut.shapes, _shapes(twin))
            ctx.set(dut.frame, {"status": ST["BAD_CRC"] if link_error else ST["OK"],
                                "opcode": opcode, "seq": seq, "length": len(payload),
                                "crc": crc})
            for i, byte in enumerate(payload):
                ctx.set(dut.wr_en, 1)
                ctx.set(dut.wr_addr, i)
                ctx.set(dut.wr_data, byte)
                await ctx.tick()
            ctx.set(dut.wr_en, 0)
            await ctx.tick().repeat(4)  # the CRC's bytes
            for repeat in (False, True) if k % 9 == 4 else (False,):
                ctx.set(dut.frame_valid, 1)
                ctx.set(dut.verdict.ready, 1)
                v, req, spans, staged = await ctx.tick().sample(
                    dut.verdict.payload, dut.request, dut.spans, dut.staged_shapes,
                ).until(dut.verdict.valid)
                got = (v.action, v.status, req, spans, staged)
                ctx.set(dut.verdict.ready, 0)
                ctx.set(dut.frame_valid, 0)
                ctx.set(dut.release, 1)
                await ctx.tick()
                ctx.set(dut.release, 0)
                if link_error:
                    want = (Action.LINK_ERROR, ST["BAD_CRC"])
                elif repeat or last == (opcode, seq, crc):
                    want = (Action.RESEND, None)
                else:
                    status, reply = ex.execute(opcode, payload)
                    want = (Action.EXECUTE if status == ST["OK"] else Action.REFUSE, status,
                            reply)
                    last = (opcode, seq, crc)
                seen.append(((opcode, payload), got, want))

    run(dut, drive, max_cycles=100_000)
    kinds = set()
    for (opcode, payload), (action, status, req, spans, staged), want in seen:
        kinds.add((want[0], want[1]))
        name = P.command(opcode).name if opcode in P.opcodes().values() else None
        if name == "LOAD_MAP" and want[:2] == (Action.REFUSE, ST["BAD_ARGUMENT"]) and \
                action == Action.EXECUTE:  # the pairs are checked by the walker
            f = P.decode_payload(P.command(name).request, payload, CFG)
            assert np.any(np.asarray(f["wmin"]) >= np.asarray(f["wmax"]))
            continue
        assert action == want[0], (name, payload.hex(), want)
        if action == Action.REFUSE:
            assert status == want[1], (name, payload.hex())
        if action != Action.EXECUTE:
            continue
        f = P.decode_payload(P.command(name).request, payload, CFG)
        for field in P.command(name).request:
            if field.count is None:
                bits = Shape.cast(request_layout(CFG)[field.name].shape).width
                want_value = int(f[field.name]) & ((1 << bits) - 1)
                assert getattr(req, field.name) == want_value, (name, field.name)
        reply_len = 1 + len(want[2])
        if name in ("FORWARD", "BACKWARD"):
            assert spans.fwd_len == reply_len
        if name == "READ":
            assert spans.rd_len == reply_len
        if name == "READ_MAP":
            assert spans.rdm_len == reply_len
        if name == "SET":
            got = [(s.n_in, s.n_out) for s in staged]
            assert got == [tuple(x) for x in np.asarray(f["shapes"]).reshape(-1, 2)]
    # every kind of verdict was seen
    assert {a for a, _s in kinds} == set(Action)
    assert {s for _a, s in kinds} >= {ST["OK"], ST["BAD_LENGTH"], ST["BAD_ARGUMENT"],
                                      ST["UNKNOWN_OPCODE"]}


def _stub_tile(dut, rng, words, ops):
    """Accept one tile operation, stay busy while ``words`` leave on data_out (random stalls)."""
    async def tile(ctx):
        ctx.set(dut.tile_op.ready, 1)
        op, = await ctx.tick().sample(dut.tile_op.payload).until(dut.tile_op.valid)
        ops.append(op)
        ctx.set(dut.tile_op.ready, 0)
        ctx.set(dut.tile_busy, 1)
        await send(ctx, dut.data_out, words, rng, 0.6)
        ctx.set(dut.tile_busy, 0)
    return tile


def _collect(name, request, spans, words, seed):
    rng = np.random.default_rng(seed)
    dut = ResultCollector(CFG)
    ops, buffer, length = [], bytearray(P.constants()["MAX_PAYLOAD"]), []

    async def drive(ctx):
        ctx.set(dut.op, op_flags(name))
        ctx.set(dut.request, request)
        ctx.set(dut.spans, spans)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        while True:
            ready = rng.random() < 0.7
            ctx.set(dut.write.ready, ready)
            _, _, valid, job, done, n = await ctx.tick().sample(
                dut.write.valid, dut.write.payload, dut.done, dut.length)
            if valid and ready:
                buffer[job.addr:job.addr + job.width] = job.value.to_bytes(4, "little")[:job.width]
            if done:
                length.append(n)
                return

    run(dut, drive, _stub_tile(dut, rng, words, ops), max_cycles=20_000)
    return ops, bytes(buffer[1:length[0]]), length[0]


def test_result_collector_places_read_words_and_counters_as_the_protocol_encodes_them():
    rng = np.random.default_rng(5)
    n_in, n_out = CFG.rows, CFG.cols
    lo, hi = P.kind_range("w", CFG)
    window = rng.integers(lo, hi + 1, n_in * n_out)
    k0 = int(rng.integers(0, n_in * n_out - 3))
    k = int(rng.integers(1, n_in * n_out - k0 + 1))
    want = P.encode_payload(P.command("READ").reply, {"k": k, "w": window[k0:k0 + k]}, CFG)
    ops, got, length = _collect(
        "READ", {"tile": 1, "k0": k0, "k": k},
        {"span_end": k0 + k, "rd_len": 1 + len(want)},
        [int(w) & 0xFFFFFFFF for w in window], 6)
    assert ops == [Op.READ] and got == want and length == 1 + len(want)

    counts = {n: int(rng.integers(0, 1 << 48)) for n in COUNTER_NAMES}
    words = [w for n in COUNTER_NAMES for w in (counts[n] & 0xFFFFFFFF, counts[n] >> 32)]
    want = P.encode_payload(P.command("COUNTERS").reply, {
        "n": len(COUNTER_NAMES), "values": [counts[n] for n in P.TABLE.counters]}, CFG)
    ops, got, length = _collect("COUNTERS", {"tile": 0}, {}, words, 7)
    assert ops == [Op.COUNTERS] and got == want and length == 1 + len(want)


def _feed(name, fields, n, rng):
    """Run the SampleFeeder on a request in a payload buffer read by an `ElementReader`: the
    tile operation it starts and the words it sends."""
    payload = P.encode_payload(P.command(name).request, fields, CFG)
    dut = SampleFeeder(CFG)
    ops, got, finished = [], [], []

    async def drive(ctx):
        ctx.set(dut.op, op_flags(name))
        ctx.set(dut.request, {k: v for k, v in fields.items() if np.ndim(v) == 0})
        ctx.set(dut.tile_op.ready, 1)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        op, = await ctx.tick().sample(dut.tile_op.payload).until(dut.tile_op.valid)
        ops.append(op)
        ctx.set(dut.tile_op.ready, 0)
        ctx.set(dut.tile_busy, 1)
        got.extend(await recv(ctx, dut.data_in, n, rng, 0.6))
        await ctx.tick().repeat(3)
        assert not ctx.get(dut.done)  # not before the tile is done
        ctx.set(dut.tile_busy, 0)
        await ctx.tick().until(dut.done)
        finished.append(1)

    run(with_payload(dut, payload), drive, max_cycles=20_000)
    assert finished
    return ops, [signed32(w) for w in got]


def test_sample_feeder_sends_each_samples_x_then_d_and_pulse_counts():
    rng = np.random.default_rng(8)
    b, ni, nj = 3, CFG.rows, CFG.cols
    lo, hi = P.kind_range("p", CFG)
    x, d = rng.integers(lo, hi + 1, b * ni), rng.integers(lo, hi + 1, b * nj)
    want = [int(v) for s in range(b) for v in (*x[s * ni:(s + 1) * ni], *d[s * nj:(s + 1) * nj])]
    fields = {"tile": 0, "b": b, "ni": ni, "nj": nj, "x": x, "d": d}
    assert _feed("UPDATE", fields, len(want), rng) == ([Op.UPDATE], want)
    lo, hi = P.kind_range("cnt", CFG)
    counts = rng.integers(lo, hi + 1, nj)
    fields = {"tile": 1, "axis": 0, "index": 2, "n": nj, "counts": counts}
    assert _feed("PULSE", fields, nj, rng) == ([Op.PULSE], [int(v) for v in counts])
