"""The pulse engine: stochastic pulse trains, coincidence counts and cycle-to-cycle draws.

One sample at a time (``Twin.update`` / ``Twin.pulse``), in three parts that share one
`Lowbias32` hash and two train memories:

1. `TrainBuilder` (phase TRAINS): the sample's codes in, one pulse train per line written to the
   row- and column-train memories (random mode: hashed slots; deterministic mode: counted slots).
2. `CoincidenceScan` (phase SCAN): L devices (j, kL..kL+L-1) per beat, ``n = popcount(row_i &
   col_j)``, polarity and the draw word ``key_c2c ^ (j*rows + i)``, to the hash.
3. `DrawShaper`: the hashed draws to ``e = rnd(gauss*dw_std, 8)``, ``t = rnd(e*SQRT[n], 8)`` and
   the array's pulse beats.

Train groups have priority at the hash: while the trains hash, the scan is idle (a sample starts
only when the engine is idle), so the hash never stalls in phase TRAINS and the code stream's
``ready`` never waits on the array's.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import DW_STD_BITS, ChipConfig
from ohmflow.hdl.lib.fixed import divmod_const
from ohmflow.hdl.tile.prng import Lowbias32
from ohmflow.hdl.tile.pulse_draws import DrawShaper
from ohmflow.hdl.tile.pulse_layouts import PulseLayouts, PulseMode
from ohmflow.hdl.tile.pulse_scan import CoincidenceScan
from ohmflow.hdl.tile.pulse_trains import TrainBuilder
from ohmflow.hdl.tile.tile_io import WORD

__all__ = ["PulseEngine", "PulseMode"]


class Phase(enum.Enum, shape=2):
    IDLE = 0  #: no sample (draws may still be in the hash or the shaper)
    TRAINS = 1  #: codes in, trains written
    SCAN = 2  #: devices scanned, draws issued


class PulseEngine(wiring.Component):
    """Trains, coincidences and draws for one update sample or deterministic pulse op.

    Ports
    -----
    start: In stream: one beat per sample (mode, tile, active shape, index, keys), accepted
        while not ``busy``.
    codes: In stream of signed words: the sample's codes or counts (see `TrainBuilder`).
    pulse: Out stream of pulse beats for `AnalogArray.pulse`.
    count: the sum of ``n`` over the lanes of the current ``pulse`` beat.
    bl, dw_std: run-time settings, stable while busy.
    busy: from ``start`` accepted until the last pulse beat has been accepted.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.lay = lay = PulseLayouts(cfg)
        self.geom = g = lay.geom
        self.start_layout = lay.start
        super().__init__({
            "start": In(stream.Signature(lay.start)),
            "codes": In(stream.Signature(signed(WORD))),
            "pulse": Out(stream.Signature(g.pulse_layout)),
            "count": Out(range(cfg.lanes * cfg.bl_max + 1)),
            "bl": In(range(cfg.bl_max + 1)),
            "dw_std": In(DW_STD_BITS),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        L = cfg.lanes
        # row trains L to a word (a scan beat reads L rows); column trains one to a word at
        # {jq, jr} (a scan beat reads one column: no lane select after the memory)
        m.submodules.rows = rows = Memory(shape=lay.row_word, depth=lay.row_depth, init=[])
        # on the ECP5 in LUT RAM: a block RAM's clock-to-out would sit in front of the popcounts
        # (the iCE40 has no LUT RAM; Yosys picks block RAM or flip-flops there)
        ecp5 = getattr(platform, "family", None) == "ecp5"
        m.submodules.cols = cols = Memory(shape=lay.col_word, depth=lay.col_depth, init=[],
                                          attrs={"ram_style": "distributed"} if ecp5 else {})
        row_wp, col_wp = rows.write_port(granularity=1), cols.write_port()
        row_rp, col_rp = rows.read_port(), cols.read_port()
        m.submodules.hash = h = Lowbias32(lanes=L, tag_shape=lay.hash_tag)
        m.submodules.trains = trains = TrainBuilder(cfg)
        m.submodules.scan = scan = CoincidenceScan(cfg)
        m.submodules.shaper = shaper = DrawShaper(cfg)

        # the sample's parameters, and its addressed line and last row chunk split by L
        sample = Signal(lay.start, reset_less=True)
        line_q = Signal.like(trains.line_q, reset_less=True)
        line_r = Signal.like(trains.line_r, reset_less=True)
        chunk_last = Signal.like(scan.chunk_last, reset_less=True)
        st = self.start.payload
        st_q, st_r = divmod_const(st.index, L, max(cfg.rows, cfg.cols))
        st_chunk_last, _ = divmod_const(st.n_in - 1, L, cfg.rows)
        phase = Signal(Phase)
        begin = self.start.valid & self.start.ready
        m.d.comb += self.start.ready.eq(~self.busy)  # idle: no draw left in the pipeline
        with m.If(begin):
            m.d.sync += [sample.eq(st), phase.eq(Phase.TRAINS), chunk_last.eq(st_chunk_last),
                         line_q.eq(st_q), line_r.eq(st_r)]
        scan_begin = (phase == Phase.TRAINS) & trains.done
        with m.If(scan_begin):
            m.d.sync += phase.eq(Phase.SCAN)
        with m.If(scan.last):
            m.d.sync += phase.eq(Phase.IDLE)

        for part in (trains, scan):
            m.d.comb += [part.sample.eq(sample), part.line_q.eq(line_q), part.line_r.eq(line_r)]
        m.d.comb += [
            trains.begin.eq(begin), trains.begin_mode.eq(st.mode), trains.bl.eq(self.bl),
            trains.active.eq(phase == Phase.TRAINS),
            row_wp.addr.eq(trains.row_wr.addr), row_wp.data.eq(trains.row_wr.data),
            row_wp.en.eq(trains.row_wr.en),
            col_wp.addr.eq(trains.col_wr.addr), col_wp.data.eq(trains.col_wr.data),
            col_wp.en.eq(trains.col_wr.en),
            scan.begin.eq(scan_begin), scan.active.eq(phase == Phase.SCAN),
            scan.chunk_last.eq(chunk_last),
            row_rp.addr.eq(scan.row_addr), row_rp.en.eq(scan.row_en),
            scan.row_data.eq(row_rp.data),
            col_rp.addr.eq(scan.col_addr), col_rp.en.eq(scan.col_en),
            scan.col_data.eq(col_rp.data),
        ]
        wiring.connect(m, wiring.flipped(self.codes), trains.codes)

        # the hash: train groups first (the scan is idle meanwhile), then device draws
        train_req, draw_req, hin, hout = trains.hash_req, scan.draws, h.i.payload, h.o.payload
        m.d.comb += [
            h.i.valid.eq(train_req.valid | draw_req.valid),
            draw_req.ready.eq(h.i.ready & ~train_req.valid),
            hin.tag.draw.eq(~train_req.valid),
            hin.tag.train.eq(train_req.payload.tag), hin.tag.dev.eq(draw_req.payload.tag),
        ]
        for lane in range(L):
            m.d.comb += hin.word[lane].eq(Mux(train_req.valid, train_req.payload.word[lane],
                                              draw_req.payload.word[lane]))
        m.d.comb += [
            trains.hash_res.valid.eq(h.o.valid & ~hout.tag.draw),
            trains.hash_res.payload.word.eq(hout.word),
            trains.hash_res.payload.tag.eq(hout.tag.train),
            shaper.draws.valid.eq(h.o.valid & hout.tag.draw),
            shaper.draws.payload.word.eq(hout.word),
            shaper.draws.payload.tag.eq(hout.tag.dev),
            h.o.ready.eq(~hout.tag.draw | shaper.draws.ready),
            shaper.tile.eq(sample.tile), shaper.dw_std.eq(self.dw_std),
            self.count.eq(shaper.count),
        ]
        wiring.connect(m, shaper.pulse, wiring.flipped(self.pulse))

        in_hash = Signal(range(Lowbias32.LATENCY + 2))
        m.d.sync += in_hash.eq(in_hash + (h.i.valid & h.i.ready) - (h.o.valid & h.o.ready))
        m.d.comb += self.busy.eq((phase != Phase.IDLE) | scan.busy | (in_hash != 0) | shaper.busy)
        return m
