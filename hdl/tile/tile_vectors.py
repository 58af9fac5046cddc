"""The tile's FORWARD and BACKWARD: vectors through DAC -> AnalogArray -> ADC, results out.

Vector k+1 loads (its read-noise key requested, its codes into the DAC) while vector k is driven:
for each output line, one DAC request per input chunk of L lines. Each key goes to the read-noise
unit as its vector's noise; every ADC code leaves as a result word (`RESULT`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.fixed import divmod_const
from ohmflow.hdl.tile.layouts import Geometry
from ohmflow.hdl.tile.tile_io import RESULT, WORD
from ohmflow.hdl.tile.tile_keys import Domain, KeyHash
from ohmflow.hdl.tile.walk import Walk

__all__ = ["VectorWalker", "drive_tag"]


def drive_tag(cfg: ChipConfig) -> data.StructLayout:
    """What a DAC request carries to its drive beat: tile, direction, output line, chunk, last."""
    g = Geometry(cfg)
    return data.StructLayout({"tile": g.index_shape(g.tile_bits), "transpose": 1,
                              "line_q": g.index_shape(g.q_bits), "line_r": g.index_shape(g.r_bits),
                              "chunk": g.index_shape(g.q_bits), "last": 1})


class VectorWalker(wiring.Component):
    """A batch of forward (or, ``transpose``, backward) vectors.

    Parameters
    ----------
    dac, noise, adc: the `DAC` (with `drive_tag` tags), `ReadNoise` and `ADC` the walker drives
        (their signatures).

    Ports
    -----
    begin: an operation is accepted (the counts restart); active: it loads and drives vectors;
    on: it is a vector operation and has not ended (results and keys flow, and the vectors not
        yet loaded when the last drive request is accepted finish loading).
    count, tile, transpose: the batch size, the tile, backward; n_dac, n_adc: input and output
        lines of a vector.
    issued: the last drive request is accepted; drained: every result of the batch is sent.
    data_in: the codes; data_out: the result words.
    key_req, key: the vectors' read-noise keys from the `KeyHash`.
    dac_codes, dac_req: to the DAC; noise: to the read-noise unit; results: from the ADC.
    dac_conversions, adc_conversions, macs, adc_saturations, fwd_vectors, bwd_vectors: this
        cycle's counter increments.
    """

    def __init__(self, cfg: ChipConfig, dac, noise, adc):
        self.cfg = cfg
        self.tag_layout = dac.req.payload.tag.shape()
        nmax = max(cfg.rows, cfg.cols)
        super().__init__({
            "begin": In(1),
            "active": In(1),
            "on": In(1),
            "count": In(16),
            "tile": In(self.tag_layout["tile"].shape),
            "transpose": In(1),
            "n_dac": In(range(nmax + 1)),
            "n_adc": In(range(nmax + 1)),
            "issued": Out(1),
            "drained": Out(1),
            "data_in": In(stream.Signature(WORD)),
            "data_out": Out(stream.Signature(WORD)),
            "key_req": Out(stream.Signature(KeyHash.req_layout)),
            "key": In(stream.Signature(32)),
            "dac_codes": Out(stream.Signature(dac.i.payload.shape())),
            "dac_req": Out(stream.Signature(dac.req.payload.shape())),
            "noise": Out(stream.Signature(noise.i.payload.shape())),
            "results": In(stream.Signature(adc.o.payload.shape())),
            "dac_conversions": Out(1),
            "adc_conversions": Out(1),
            "macs": Out(range(nmax + 1)),
            "adc_saturations": Out(1),
            "fwd_vectors": Out(1),
            "bwd_vectors": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        L, nmax = cfg.lanes, max(cfg.rows, cfg.cols)
        count, n_dac, n_adc = self.count, self.n_dac, self.n_adc
        # the last input chunk of a line, registered: a constant division (a multiply when L is
        # not a power of two) must not sit between the op register and the drive requests; the
        # first request comes cycles after the command is taken
        chunk_last = Signal(range(max(2, -(-nmax // L))), reset_less=True)
        m.d.sync += chunk_last.eq(divmod_const(n_dac - 1, L, nmax)[0])
        driven = Signal(16)  # vectors whose drive requests are all accepted
        loaded = Signal(16)  # vectors whose key and codes are in
        codes_in = Signal(range(cfg.rows + cfg.cols + 1))  # codes of the loading vector
        codes_done = Signal()
        key_sent = Signal()
        walk = Walk(cfg)
        sent = Signal(16)  # vectors whose results are all sent
        sent_lines = Signal(range(nmax + 1))
        with m.If(self.begin):
            m.d.sync += [driven.eq(0), loaded.eq(0), codes_in.eq(0), codes_done.eq(0),
                         key_sent.eq(0), sent.eq(0), sent_lines.eq(0), *walk.clear()]

        # keys and codes load from the first drive cycle until every vector is in: the last
        # vector's key may still be owed after its drive requests (the DAC does not wait for it,
        # and the key hash waits while the read noise waits for earlier vectors' results)
        started = Signal()
        with m.If(self.active):
            m.d.sync += started.eq(1)
        with m.If(self.begin):
            m.d.sync += started.eq(0)
        with m.If(self.active | (self.on & started)):
            loading = loaded != count
            last_code = codes_in + 1 == n_dac
            m.d.comb += [
                self.key_req.valid.eq(loading & ~key_sent),
                self.key_req.payload.domain.eq(Mux(self.transpose, Domain.BWD, Domain.FWD)),
                self.key_req.payload.bump.eq(1),
                self.dac_codes.valid.eq(loading & self.data_in.valid & ~codes_done),
                self.dac_codes.payload.code.eq(self.data_in.payload.as_signed()),
                self.dac_codes.payload.last.eq(last_code),
                self.data_in.ready.eq(loading & self.dac_codes.ready & ~codes_done),
            ]
            key_in = self.key_req.valid & self.key_req.ready
            code_in = self.dac_codes.valid & self.dac_codes.ready
            with m.If(key_in):
                m.d.sync += key_sent.eq(1)
            with m.If(code_in):
                m.d.sync += [codes_in.eq(codes_in + 1), codes_done.eq(last_code)]
                m.d.comb += self.dac_conversions.eq(1)
            with m.If((codes_done | (code_in & last_code)) & (key_sent | key_in)):
                m.d.sync += [loaded.eq(loaded + 1), codes_in.eq(0), codes_done.eq(0),
                             key_sent.eq(0)]

        with m.If(self.active):
            rq = self.dac_req.payload
            end = walk.at(n_adc - 1, chunk_last)
            m.d.comb += [
                self.dac_req.valid.eq(1), rq.chunk.eq(walk.i), rq.tag.tile.eq(self.tile),
                rq.tag.transpose.eq(self.transpose), rq.tag.line_q.eq(walk.jq),
                rq.tag.line_r.eq(walk.jr), rq.tag.chunk.eq(walk.i),
                rq.tag.last.eq(walk.i == chunk_last), rq.end.eq(end),
            ]
            with m.If(self.dac_req.ready):
                m.d.sync += walk.step(chunk_last)
                with m.If(end):
                    m.d.sync += [driven.eq(driven + 1), *walk.clear()]
                    m.d.comb += self.issued.eq(driven + 1 == count)

        # results, and the keys to the read-noise unit
        res = self.results.payload
        result = Signal(RESULT)
        m.d.comb += [result.code.eq(res.code), result.saturated.eq(res.sat)]
        with m.If(self.on):
            m.d.comb += [
                self.noise.valid.eq(self.key.valid), self.noise.payload.key.eq(self.key.payload),
                self.noise.payload.count.eq(n_adc), self.key.ready.eq(self.noise.ready),
                self.data_out.valid.eq(self.results.valid),
                self.results.ready.eq(self.data_out.ready), self.data_out.payload.eq(result),
            ]
        fire = self.on & self.results.valid & self.results.ready
        m.d.comb += [self.adc_conversions.eq(fire), self.macs.eq(Mux(fire, n_dac, 0)),
                     self.adc_saturations.eq(fire & res.sat),
                     self.drained.eq(sent == count)]
        with m.If(fire):
            m.d.sync += sent_lines.eq(sent_lines + 1)
            with m.If(sent_lines + 1 == n_adc):
                m.d.sync += [sent_lines.eq(0), sent.eq(sent + 1)]
                m.d.comb += [self.fwd_vectors.eq(~self.transpose),
                             self.bwd_vectors.eq(self.transpose)]
        return m

