"""The command processor's walkers `MergeWalker` and `VectorRunner` alone, with a stub tile and
their payload read by a real `ElementReader`: MergeWalker's PROGRAM and LOAD_MAP words against
the words the reference executor hands the twin, its pair check against the executor's verdict;
VectorRunner's operand words and streamed reply against the protocol's payload encoder."""

from __future__ import annotations

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import get_config
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import FIELD_KINDS, FIELDS, DeviceModel, fabricate
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.link.command_merge import MergeWalker
from ohmflow.hdl.link.command_vectors import VectorRunner
from ohmflow.hdl.link.reply_builder import ReplyKind
from ohmflow.hdl.tile.tile_io import Op, result_word

from .hdlbench import recv, run, send, signed32
from .linkbench import op_flags, with_payload

CFG = get_config("tiny")
ST = P.ST
WINDOW = (3, 5)  # tile 1's active shape (n_in, n_out): odd, smaller than the tile
DEVICES = CFG.rows * CFG.cols


def _scalars(fields):
    return {k: v for k, v in fields.items() if np.ndim(v) == 0}


# ----- MergeWalker -----

def _map_words(dm) -> list[int]:
    """A tile's device map as the tile's MAP_READ/MAP_WRITE words: per device, FIELDS in order."""
    return [int(v) for v in np.stack([getattr(dm, f)[0] for f in FIELDS], axis=-1).ravel()]


def _reference(name, fields, seed):
    """The old words the tile holds, the executor's status and the words it writes (None when it
    writes nothing): the words the twin's `program` or `load_device_map` receives."""
    twin = Twin(CFG)
    twin.set(shapes=((CFG.rows, CFG.cols), WINDOW))
    twin.load_device_map(fabricate(CFG, DeviceModel(), seed))
    lo, hi = P.kind_range("w", CFG)
    rng = np.random.default_rng(seed)
    twin.program(1, rng.integers(lo, hi + 1, (WINDOW[1], WINDOW[0])))
    tile = fields["tile"]
    if name == "PROGRAM":
        old = [int(v) for v in twin.read(tile).ravel()]
    else:
        old = _map_words(twin.read_device_map(tile))
    written = []
    twin.program = lambda t, w: written.append([int(v) for v in np.asarray(w).ravel()])
    twin.load_device_map = lambda dm, t: written.append(_map_words(dm))
    payload = P.encode_payload(P.command(name).request, fields, CFG)
    status, _reply = CommandExecutor(twin).execute(P.opcodes()[name], payload)
    return old, status, (written[0] if written else None)


def _merge(name, fields, old, seed):
    """Run the MergeWalker on one request: the tile operations it started, the words it wrote
    to the tile and whether it refused the request."""
    rng = np.random.default_rng(seed)
    payload = P.encode_payload(P.command(name).request, fields, CFG)
    dut = MergeWalker(CFG)
    n_in, n_out = WINDOW if fields["tile"] == 1 else (CFG.rows, CFG.cols)
    n_words = n_in * n_out if name == "PROGRAM" else len(FIELDS) * DEVICES  # a write takes all
    ops, written, refused, busy = [], [], [], [0]

    async def drive(ctx):
        ctx.set(dut.op, op_flags(name))
        ctx.set(dut.request, _scalars(fields))
        ctx.set(dut.spans, {"window": n_in * n_out, "span_end": fields["k0"] + fields["k"]})
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        r, = await ctx.tick().sample(dut.refused).until(dut.done)
        assert not busy[0], "done while the tile is busy"
        refused.append(bool(r))

    async def tile(ctx):
        ctx.set(dut.tile_op.ready, 1)
        while not refused:
            _, _, valid, op = await ctx.tick().sample(dut.tile_op.valid, dut.tile_op.payload)
            if not valid:
                continue
            ops.append(op)
            ctx.set(dut.tile_op.ready, 0)
            ctx.set(dut.tile_busy, 1)
            busy[0] = 1
            if op in (Op.READ, Op.MAP_READ):
                await send(ctx, dut.data_out, [w & 0xFFFFFFFF for w in old], rng, 0.6)
            else:
                written.extend(signed32(w) for w in
                               await recv(ctx, dut.data_in, n_words, rng, 0.6))
                for _ in range(4):  # nothing more is offered
                    assert not ctx.get(dut.data_in.valid)
                    await ctx.tick()
            await ctx.tick().repeat(2)
            ctx.set(dut.tile_busy, 0)
            busy[0] = 0
            ctx.set(dut.tile_op.ready, 1)

    run(with_payload(dut, payload), drive, tile, max_cycles=30_000)
    return ops, written, refused[0]


def test_merge_walker_program_merges_states_into_the_old_window():
    rng = np.random.default_rng(11)
    lo, hi = P.kind_range("w", CFG)
    window = WINDOW[0] * WINDOW[1]
    # a span inside, one at the start, one to the end, the whole window, none
    for k0, k in ((4, 7), (0, 2), (window - 3, 3), (0, window), (6, 0)):
        fields = {"tile": 1, "k0": k0, "k": k, "w": rng.integers(lo, hi + 1, k)}
        old, status, want = _reference("PROGRAM", fields, int(rng.integers(1 << 16)))
        assert status == ST["OK"]
        ops, got, refused = _merge("PROGRAM", fields, old, int(rng.integers(1 << 16)))
        assert not refused
        if k == 0:  # nothing to write (the executor writes the old states back)
            assert ops == [] and got == [] and want == old
            continue
        partial = (k0, k) != (0, window)
        assert ops == [Op.READ, Op.PROGRAM] if partial else ops == [Op.PROGRAM], (k0, k)
        assert got == want, (k0, k)


def _map_fields(rng, k0, k, bad=()):
    """LOAD_MAP fields of devices k0..k0+k-1 with wmin <= 0 <= wmax; pairs ``bad`` both 0, and
    a few with one bound 0."""
    f = {"tile": 1, "k0": k0, "k": k}
    lo_w, hi_w = P.kind_range("w", CFG)
    for name, kind in FIELD_KINDS.items():
        lo, hi = P.kind_range(kind, CFG)
        lo, hi = (0, hi) if name == "wmax" else (lo, 0) if name == "wmin" else (lo, hi)
        f[name] = rng.integers(lo, hi + 1, k)
    f["wmin"][(f["wmin"] == 0) & (f["wmax"] == 0)] = -1  # only the pairs ``bad`` are bad
    if k > 2:  # one bound 0 is a good pair
        f["wmax"][0], f["wmin"][0], f["wmin"][k - 1], f["wmax"][k - 1] = 0, lo_w, 0, hi_w
    for i in bad:
        f["wmax"][i], f["wmin"][i] = 0, 0
    return f


def test_merge_walker_load_map_merges_fields_and_refuses_a_pair_not_in_order():
    rng = np.random.default_rng(12)
    cases = [(9, 11, ()), (0, DEVICES, ()), (DEVICES - 4, 4, ()), (3, 7, (6,)), (3, 7, (0,)),
             (20, 5, (2,)), (0, 0, ())]
    for k0, k, bad in cases:
        fields = _map_fields(rng, k0, k, bad)
        old, status, want = _reference("LOAD_MAP", fields, int(rng.integers(1 << 16)))
        ops, got, refused = _merge("LOAD_MAP", fields, old, int(rng.integers(1 << 16)))
        assert status == (ST["BAD_ARGUMENT"] if bad else ST["OK"]), (k0, k, bad)
        if bad:
            assert refused and ops == [] and got == [], bad
            continue
        assert not refused, (k0, k)
        if k == 0:
            assert ops == [] and got == [] and want == old
            continue
        partial = (k0, k) != (0, DEVICES)
        assert ops == [Op.MAP_READ, Op.MAP_WRITE] if partial else ops == [Op.MAP_WRITE]
        assert got == want, (k0, k)


# ----- VectorRunner -----

def _run_vectors(name, b, x, codes, sat, tail, seed):
    """Run the VectorRunner on a FORWARD or BACKWARD request of ``b`` vectors ``x`` with a stub
    tile answering result codes ``codes`` and flags ``sat`` (b, m), busy ``tail`` cycles after
    the last: the operation, the operand words, the reply buffer, the writes' offsets in order
    and the reply requests, each with the number of bytes written before it."""
    rng = np.random.default_rng(seed)
    n, m_out = x.shape[1], codes.shape[1]
    fields = {"tile": 1, "b": b, "n": n, "x": x.ravel()}
    payload = P.encode_payload(P.command(name).request, fields, CFG)
    y_bytes = b * m_out * P.kind_dtype("adc", CFG).itemsize
    fwd_len = 1 + P.payload_size(P.command(name).reply, {"b": b, "m": m_out}, CFG)
    dut = VectorRunner(CFG)
    ops, operands, offsets, replies = [], [], [], []
    buffer = bytearray(P.constants()["MAX_PAYLOAD"])
    tile_done = []

    async def drive(ctx):
        ctx.set(dut.op, op_flags(name))
        ctx.set(dut.request, _scalars(fields))
        ctx.set(dut.spans, {"m_out": m_out, "y_bytes": y_bytes, "fwd_len": fwd_len})
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        while True:
            w_ready, r_ready = rng.random() < 0.5, rng.random() < 0.5
            ctx.set(dut.write.ready, w_ready)
            ctx.set(dut.reply.ready, r_ready)
            _, _, wv, job, rv, req, done = await ctx.tick().sample(
                dut.write.valid, dut.write.payload, dut.reply.valid, dut.reply.payload,
                dut.done)
            if wv and w_ready:
                buffer[job.addr:job.addr + job.width] = \
                    job.value.to_bytes(4, "little")[:job.width]
                offsets.append((job.addr, job.width))
            if rv and r_ready:
                replies.append((req.kind, req.status, req.length, len(offsets),
                                sum(w for _a, w in offsets)))
            if done:
                assert tile_done, "done before the tile"
                return

    async def tile_in(ctx):  # the operation, then the vectors' codes
        ctx.set(dut.tile_op.ready, 1)
        op, = await ctx.tick().sample(dut.tile_op.payload).until(dut.tile_op.valid)
        ops.append(op)
        ctx.set(dut.tile_op.ready, 0)
        ctx.set(dut.tile_busy, 1)
        for _v in range(b):
            operands.extend(signed32(w) for w in await recv(ctx, dut.data_in, n, rng, 0.6))

    async def tile_out(ctx):  # a vector's results once its codes are in (the next may come in)
        for v in range(b):
            while len(operands) < (v + 1) * n:
                await ctx.tick()
            for _ in range(int(rng.integers(0, 2 * n))):
                await ctx.tick()
            await send(ctx, dut.data_out, [result_word(int(c), s) for c, s in
                                           zip(codes[v], sat[v], strict=True)], rng, 0.6)
        for _ in range(tail):  # busy may fall with the last result
            await ctx.tick()
        tile_done.append(1)
        ctx.set(dut.tile_busy, 0)

    run(with_payload(dut, payload), drive, tile_in, tile_out, max_cycles=30_000)
    return ops, operands, bytes(buffer[:fwd_len]), offsets, replies, fwd_len


def test_vector_runner_streams_results_and_saturation_counts_as_the_protocol_encodes():
    rng = np.random.default_rng(13)
    lo_x, hi_x = P.kind_range("dac", CFG)
    lo_y, hi_y = P.kind_range("adc", CFG)
    head = P.payload_size(P.command("FORWARD").reply, {"b": 0, "m": 0}, CFG)  # b and m
    cases = [("FORWARD", 4, 0), ("BACKWARD", 3, 3), ("FORWARD", 1, 0), ("BACKWARD", 1, 0),
             ("FORWARD", 2, 1), ("BACKWARD", 5, 0)]
    for name, b, tail in cases:
        n, m_out = WINDOW if name == "FORWARD" else WINDOW[::-1]
        x = rng.integers(lo_x, hi_x + 1, (b, n))
        codes = rng.integers(lo_y, hi_y + 1, (b, m_out))
        sat = rng.random((b, m_out)) < 0.3
        sat[0] = True  # a vector saturated throughout: the largest count
        codes[0, 0], codes[-1, -1] = lo_y, hi_y
        want = bytes([ST["OK"]]) + P.encode_payload(P.command(name).reply, {
            "b": b, "m": m_out, "y": codes.ravel(), "sat": sat.sum(axis=1)}, CFG)
        ops, operands, got, offsets, replies, length = _run_vectors(
            name, b, x, codes, sat, tail, int(rng.integers(1 << 16)))
        assert ops == [Op[name]] and operands == [int(v) for v in x.ravel()], name
        assert length == len(want) and got == want, (name, got.hex(), want.hex())
        # each byte written once; the head and the results in order (the stream sends a byte
        # once the writes have passed it), before the STREAM request's head
        spans = [a + i for a, w in offsets for i in range(w)]
        assert sorted(spans) == list(range(len(want)))
        y_end = 1 + head + b * m_out * P.kind_dtype("adc", CFG).itemsize
        assert [a for a in spans if a < y_end] == list(range(y_end))
        (k1, _s1, l1, _n1, bytes1), (k2, s2, l2, n2, _bytes2) = replies
        assert (k1, l1) == (ReplyKind.STREAM, len(want)) and bytes1 >= 1 + head
        assert (k2, s2, l2, n2) == (ReplyKind.STREAM_END, ST["OK"], len(want), len(offsets))
