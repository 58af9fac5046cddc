"""The tile's PRNG state: the seed, the five domain bases, the nonce, and the key hash.

An operation's key in domain ``d`` is ``lowbias32(base[d] ^ nonce)`` with
``base[d] = lowbias32(lowbias32(seed) ^ DOMAINS[d])`` (`ohmflow.emulator.prng`). A new seed hashes
the five bases through the same `Lowbias32` and restarts the nonce.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import prng
from ohmflow.hdl.tile.prng import Lowbias32

__all__ = ["DOMAINS", "Domain", "KeyHash", "seed_bases"]

DOMAINS = (prng.DOMAIN_FWD, prng.DOMAIN_BWD, prng.DOMAIN_ROW, prng.DOMAIN_COL, prng.DOMAIN_C2C)


class Domain(enum.Enum, shape=3):
    """Index of a key domain in `DOMAINS`."""

    FWD = 0
    BWD = 1
    ROW = 2
    COL = 3
    C2C = 4


def seed_bases(seed: int) -> list[int]:
    """``lowbias32(lowbias32(seed) ^ domain)`` for the five domains (keys are base ^ nonce)."""
    h = prng.lowbias32(seed)
    return [prng.lowbias32(h ^ d) for d in DOMAINS]


class KeyHash(wiring.Component):
    """Keys of operations, and the seed they derive from.

    Ports
    -----
    req: In stream of key requests ``{domain, bump}``: the key of ``domain`` at the current
        nonce; an accepted request with ``bump`` advances the nonce.
    key: Out stream of the requested keys, in order (`Lowbias32.LATENCY` cycles later).
    seed: In stream of a new seed (accepted while no request is offered): the bases are hashed,
        then the nonce restarts at 0.
    seeded: high in the cycle the last base is stored.
    clear: seed 0 (its bases) and nonce 0, at once.
    """

    req_layout = data.StructLayout({"domain": Domain, "bump": 1})

    def __init__(self):
        super().__init__({
            "req": In(stream.Signature(self.req_layout)),
            "key": Out(stream.Signature(32)),
            "seed": In(stream.Signature(32)),
            "seeded": Out(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.hash = h = Lowbias32(lanes=1)
        seed = Signal(32)
        nonce = Signal(32)
        base = [Signal(32, init=v, name=f"base_{d.name.lower()}")
                for d, v in zip(Domain, seed_bases(0), strict=True)]
        seed_hash = Signal(32, reset_less=True)  # lowbias32(seed)
        sent = Signal(range(8))  # hashes of the seed sequence issued
        stored = Signal(range(8))  # bases stored

        m.d.comb += [h.i.valid.eq(self.req.valid),
                     h.i.payload.word[0].eq(Array(base)[self.req.payload.domain] ^ nonce),
                     self.req.ready.eq(h.i.ready),
                     self.key.valid.eq(h.o.valid), self.key.payload.eq(h.o.payload.word[0]),
                     h.o.ready.eq(self.key.ready)]
        with m.If(self.req.valid & self.req.ready & self.req.payload.bump):
            m.d.sync += nonce.eq(nonce + 1)

        with m.FSM():
            with m.State("READY"):
                m.d.comb += self.seed.ready.eq(1)
                with m.If(self.seed.valid):
                    m.d.sync += [seed.eq(self.seed.payload), sent.eq(0), stored.eq(0)]
                    m.next = "SEED_HASH"
            with m.State("SEED_HASH"):
                m.d.comb += [h.i.valid.eq(sent == 0), h.i.payload.word[0].eq(seed),
                             h.o.ready.eq(1)]
                with m.If(h.i.valid & h.i.ready):
                    m.d.sync += sent.eq(1)
                with m.If(h.o.valid):
                    m.d.sync += [seed_hash.eq(h.o.payload.word[0]), sent.eq(0)]
                    m.next = "BASES"
            with m.State("BASES"):
                dom = Array([Const(d, 32) for d in DOMAINS])[sent]
                m.d.comb += [h.i.valid.eq(sent < 5), h.i.payload.word[0].eq(seed_hash ^ dom),
                             h.o.ready.eq(1)]
                with m.If(h.i.valid & h.i.ready):
                    m.d.sync += sent.eq(sent + 1)
                with m.If(h.o.valid):
                    m.d.sync += [Array(base)[stored].eq(h.o.payload.word[0]),
                                 stored.eq(stored + 1)]
                    with m.If(stored == 4):
                        m.d.comb += self.seeded.eq(1)
                        m.d.sync += nonce.eq(0)
                        m.next = "READY"
        with m.If(self.clear):
            m.d.sync += [seed.eq(0), nonce.eq(0)]
            m.d.sync += [b.eq(v) for b, v in zip(base, seed_bases(0), strict=True)]
        return m

