"""The pipelined lowbias32 unit and the Irwin-Hall Gaussian against emulator/prng.py."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from ohmflow.emulator import prng
from ohmflow.hdl.tile.prng import Lowbias32, gauss

from .hdlbench import recv, run, send


@pytest.mark.parametrize("lanes", [1, 3])
def test_lowbias32_matches_reference_under_backpressure(lanes):
    rng = np.random.default_rng(lanes)
    dut = Lowbias32(lanes=lanes, tag_shape=8)
    n = 80
    words = rng.integers(0, 2**32, size=(n, lanes), dtype=np.uint64)
    words[0] = 0
    words[1] = 2**32 - 1
    got = {}

    async def tb(ctx):
        await send(ctx, dut.i, [{"word": [int(v) for v in w], "tag": k % 256}
                                for k, w in enumerate(words)], rng, 0.6)

    async def mon(ctx):
        got["o"] = await recv(ctx, dut.o, n, rng, 0.5)

    run(dut, tb, mon, max_cycles=2000)
    for k, p in enumerate(got["o"]):
        assert p.tag == k % 256
        assert list(p.word) == [prng.lowbias32(int(v)) for v in words[k]]


def test_gauss_matches_reference():
    rng = np.random.default_rng(9)
    w = Signal(32)
    m = Module()
    out = Signal(gauss(w).shape())
    m.d.comb += out.eq(gauss(w))
    words = [0, 2**32 - 1, 0x80808080] + [int(v) for v in rng.integers(0, 2**32, size=300)]
    got = []

    async def tb(ctx):
        for v in words:
            ctx.set(w, v)
            got.append(ctx.get(out))

    run(m, tb, max_cycles=10, clock=False)
    assert got == prng.gauss(np.array(words, dtype=np.uint32)).tolist()
    assert min(got) == -510 and max(got) == 510
