"""The PRNG unit: a pipelined lowbias32 hash over parallel lanes, and the Irwin-Hall Gaussian.

``emulator/prng.py`` is the reference: every random number is ``lowbias32(key ^ index)``; this unit
hashes whatever words it is given (the caller forms ``key ^ index``). A tag travels with each
beat so the caller's context stays aligned with its hashes through the pipeline.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.prng import M1, M2
from ohmflow.hdl.lib.fixed import add_levels, csd_terms, mod_difference

__all__ = ["Lowbias32", "gauss", "hash_layout"]


def hash_layout(lanes: int, tag_shape=None) -> data.StructLayout:
    """Payload of `Lowbias32`'s streams: ``lanes`` 32-bit words and an optional caller tag."""
    fields = {"word": data.ArrayLayout(32, lanes)}
    if tag_shape is not None:
        fields["tag"] = tag_shape
    return data.StructLayout(fields)


def gauss(word):
    """Irwin-Hall Gaussian of a 32-bit word: the sum of its 4 bytes minus 510, signed 11 bits."""
    s = (word[0:8] + word[8:16]) + (word[16:24] + word[24:32])
    return s - 510


class Lowbias32(wiring.Component):
    """lowbias32 on ``lanes`` words per beat, one beat per cycle, `LATENCY` cycles deep.

    Stages: (x ^ x>>16) * M1 | (x ^ x>>15) * M2 | x ^ x>>16. The constant products are shift-add
    trees (`csd_terms`), spread over the stages as registered partial sums, so the hash costs
    LUTs only and no stage has more than three adder levels. Back-pressure on ``o`` stalls the
    pipeline.

    Parameters
    ----------
    lanes:
        Words hashed per beat.
    tag_shape:
        Shape of the tag carried unchanged from ``i`` to ``o``, or None for no tag.
    """

    LATENCY = 3

    def __init__(self, lanes: int = 1, tag_shape=None):
        if lanes < 1:
            raise TypeError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        self.tag_shape = tag_shape
        layout = hash_layout(lanes, tag_shape)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]

        tag_w = 0 if self.tag_shape is None else Shape.cast(self.tag_shape).width
        v1, v2 = Signal(), Signal()
        t1, t2, t3 = (Signal(tag_w, reset_less=True, name=f"tag{k}") for k in (1, 2, 3))
        s3 = [Signal(32, reset_less=True, name=f"s3_{k}") for k in range(n)]
        with m.If(adv):
            m.d.sync += [v1.eq(self.i.valid), v2.eq(v1), self.o.valid.eq(v2)]
        if tag_w:
            with m.If(adv & self.i.valid):
                m.d.sync += t1.eq(Value.cast(self.i.payload.tag))
            with m.If(adv & v1):
                m.d.sync += t2.eq(t1)
            with m.If(adv & v2):
                m.d.sync += t3.eq(t2)
        # The two products are spread over the three stages as partial sums (at most three adder
        # levels a stage): 1) x ^ x>>16 and two levels of the M1 tree; 2) the rest of it, the
        # xor-shift and one level of the M2 tree; 3) the rest of that and the last xor-shift.
        # Data registers load only behind a valid beat: bubbles leave them (and a simulator's
        # adder trees) untouched.
        for k in range(n):
            x = self.i.payload.word[k]
            pos, neg = csd_terms(x ^ (x >> 16), M1, 32)
            p1 = self._stage(m, add_levels(pos, 32, 2), adv & self.i.valid, f"p1_{k}")
            n1 = self._stage(m, add_levels(neg, 32, 2), adv & self.i.valid, f"n1_{k}")
            s1 = mod_difference(p1, n1, 32)
            pos, neg = csd_terms(s1 ^ (s1 >> 15), M2, 32)
            p2 = self._stage(m, add_levels(pos, 32, 1), adv & v1, f"p2_{k}")
            n2 = self._stage(m, add_levels(neg, 32, 1), adv & v1, f"n2_{k}")
            s2 = mod_difference(p2, n2, 32)
            with m.If(adv & v2):
                m.d.sync += s3[k].eq(s2 ^ (s2 >> 16))
        for k in range(n):
            m.d.comb += self.o.payload.word[k].eq(s3[k])
        if tag_w:
            m.d.comb += Value.cast(self.o.payload.tag).eq(t3)
        return m

    @staticmethod
    def _stage(m: Module, values: list, en, name: str) -> list:
        """Pipeline registers for ``values``, loaded when ``en``."""
        regs = [Signal(32, reset_less=True, name=f"{name}_{j}") for j in range(len(values))]
        with m.If(en):
            m.d.sync += [r.eq(v) for r, v in zip(regs, values, strict=True)]
        return regs
