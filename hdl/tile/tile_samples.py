"""The tile's UPDATE and PULSE: samples through the `PulseEngine`, one at a time.

Per sample: the ROW, COL and C2C keys at the current nonce (the nonce then advances), the start
beat, the sample's codes (UPDATE: x then d; PULSE: one count per device of the line), then the
wait until the engine and the array are idle. PULSE is one sample.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.tile.layouts import Geometry
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts, PulseMode
from ohmflow.hdl.tile.tile_io import WORD
from ohmflow.hdl.tile.tile_keys import Domain, KeyHash

__all__ = ["SampleWalker"]

KEYS = (Domain.ROW, Domain.COL, Domain.C2C)


class SampleWalker(wiring.Component):
    """A batch of UPDATE samples or one PULSE.

    Ports
    -----
    go: start the batch (in the cycle before the first key request).
    done: the last sample has finished (engine and array idle).
    update: UPDATE (else PULSE); count: batch size; tile, axis, index: PULSE's line;
        n_in, n_out: the tile's active shape.
    key_req, key: the samples' keys from the `KeyHash`.
    start, codes: to the `PulseEngine`; engine_idle: the engine and the array are idle.
    data_in: the codes.
    update_samples, pulse_ops: this cycle's counter increments.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        g = Geometry(cfg)
        start = PulseLayouts(cfg).start
        super().__init__({
            "go": In(1),
            "done": Out(1),
            "update": In(1),
            "count": In(16),
            "tile": In(g.index_shape(g.tile_bits)),
            "axis": In(1),
            "index": In(range(max(2, max(cfg.rows, cfg.cols)))),
            "n_in": In(range(cfg.rows + 1)),
            "n_out": In(range(cfg.cols + 1)),
            "key_req": Out(stream.Signature(KeyHash.req_layout)),
            "key": In(stream.Signature(32)),
            "start": Out(stream.Signature(start)),
            "codes": Out(stream.Signature(signed(WORD))),
            "engine_idle": In(1),
            "data_in": In(stream.Signature(WORD)),
            "update_samples": Out(1),
            "pulse_ops": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n_in, n_out = self.n_in, self.n_out
        finished = Signal(16)  # samples finished
        asked = Signal(range(4))  # keys requested for this sample
        got = Signal(range(4))  # keys received
        keys = [Signal(32, reset_less=True, name=f"key_{d.name.lower()}") for d in KEYS]
        codes_sent = Signal(range(cfg.rows + cfg.cols + 1))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [finished.eq(0), asked.eq(0), got.eq(0)]
                    m.next = "KEYS"
            with m.State("KEYS"):
                m.d.comb += [self.key_req.valid.eq(asked < 3),
                             self.key_req.payload.domain.eq(Array(KEYS)[asked[:2]]),
                             self.key_req.payload.bump.eq(asked == 2),
                             self.key.ready.eq(1)]
                with m.If(self.key_req.valid & self.key_req.ready):
                    m.d.sync += asked.eq(asked + 1)
                with m.If(self.key.valid):
                    m.d.sync += [Array(keys)[got[:2]].eq(self.key.payload), got.eq(got + 1)]
                with m.If(got == 3):
                    m.next = "START"
            with m.State("START"):
                sp = self.start.payload
                mode = Mux(self.update, PulseMode.RANDOM,
                           Mux(self.axis, PulseMode.COL, PulseMode.ROW))
                m.d.comb += [self.start.valid.eq(1), sp.mode.eq(mode), sp.tile.eq(self.tile),
                             sp.n_in.eq(n_in), sp.n_out.eq(n_out), sp.index.eq(self.index),
                             sp.key_row.eq(keys[0]), sp.key_col.eq(keys[1]),
                             sp.key_c2c.eq(keys[2])]
                with m.If(self.start.ready):
                    m.d.sync += codes_sent.eq(0)
                    m.next = "CODES"
            with m.State("CODES"):
                total = Mux(self.update, n_in + n_out, Mux(self.axis, n_in, n_out))
                m.d.comb += [self.codes.valid.eq(self.data_in.valid),
                             self.codes.payload.eq(self.data_in.payload.as_signed()),
                             self.data_in.ready.eq(self.codes.ready)]
                with m.If(self.codes.valid & self.codes.ready):
                    m.d.sync += codes_sent.eq(codes_sent + 1)
                    with m.If(codes_sent + 1 == total):
                        m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.engine_idle):
                    m.d.comb += [self.update_samples.eq(self.update),
                                 self.pulse_ops.eq(~self.update)]
                    m.d.sync += [finished.eq(finished + 1), asked.eq(0), got.eq(0)]
                    m.next = "KEYS"
                    with m.If(~self.update | (finished + 1 == self.count)):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
        return m
