"""The tile controller: sequences forward, backward, update, pulse, program and read operations of
several logical tiles over one datapath (DAC -> AnalogArray -> ADC, PulseEngine), holds the PRNG
seed and nonce, and keeps per-tile counters.

A command processor drives it through ``cmd`` (one beat per operation), ``data_in`` (operand
words) and ``data_out`` (result words); docs/gateware.md gives the word order of every operation
and its cycle count. Operations run one at a time; ``cmd`` is ready only when the controller is
idle. Settings are sampled when a command is accepted.

The controller is the operation sequencer; the work of an operation is done by its walker:
`VectorWalker` (FORWARD, BACKWARD), `SampleWalker` (UPDATE, PULSE), `ProgramWalker` (PROGRAM,
MAP_WRITE, READ, MAP_READ, RESET), `DriftWalker` (ADVANCE of one tile, §11.3), with the
`KeyHash` (seed, nonce, keys; SEED) and the `CounterBank` (COUNTERS, and every operation's
counts).
"""

from __future__ import annotations

from amaranth.hdl import DomainRenamer, Module, Mux, Signal
from amaranth.lib import wiring
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.hdl.lib.clock_gate import gate_domain
from ohmflow.hdl.tile.adc import ADC
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.dac import DAC
from ohmflow.hdl.tile.layouts import Geometry
from ohmflow.hdl.tile.noise import ReadNoise
from ohmflow.hdl.tile.pulse_engine import PulseEngine
from ohmflow.hdl.tile.tile_counters import CounterBank
from ohmflow.hdl.tile.tile_drift import DriftWalker, drift_prog_layout
from ohmflow.hdl.tile.tile_io import COUNTER_NAMES, Op, TileLink, cmd_layout, settings_layout
from ohmflow.hdl.tile.tile_keys import KeyHash, seed_bases
from ohmflow.hdl.tile.tile_program import ProgramWalker
from ohmflow.hdl.tile.tile_samples import SampleWalker
from ohmflow.hdl.tile.tile_vectors import VectorWalker, drive_tag

__all__ = ["TileController", "seed_bases"]

_C = {name: k for k, name in enumerate(COUNTER_NAMES)}


class TileController(wiring.Component):
    """Sequencer, counters and PRNG state around one analog datapath.

    Its ports are the far end of a `TileLink` (``cmd``, ``data_in``, ``data_out``, ``settings``,
    ``busy``): a command processor connects to it with one ``wiring.connect``.

    ``gate_units`` (simulation only, `ohmflow.hdl.lib.clock_gate`) clocks the pulse engine only in
    UPDATE and PULSE, the DAC, ADC and read noise only in FORWARD and BACKWARD, the array
    only while a beat is offered or in flight, the array's table-mode registers only then
    and in a table mode, and the array's pulse and program path only from a pulse or program
    beat until the array is idle.
    """

    def __init__(self, cfg: ChipConfig, device_map: DeviceMap | None = None, *,
                 gate_units: bool = False):
        self.cfg = cfg
        self.geom = Geometry(cfg)
        self.device_map = device_map
        self.gate_units = gate_units
        #: with ``gate_units``: high in the cycles the array's table-mode registers are clocked
        self.shape_clock_on = Signal(init=1, name="shape_clock_on") if gate_units else None
        #: with ``gate_units``: high in the cycles the array's pulse and program path is clocked
        self.store_clock_on = Signal(init=1, name="store_clock_on") if gate_units else None
        super().__init__(TileLink(cfg).flip())

    def _datapath(self, m: Module):
        """The DAC, array, ADC, read noise and pulse engine, connected among themselves."""
        cfg = self.cfg
        dac, adc, noise = DAC(cfg, drive_tag(cfg)), ADC(cfg), ReadNoise(cfg)
        gated = self.gate_units
        arr = AnalogArray(cfg, self.device_map, shape_domain="shape" if gated else "sync",
                          store_domain="store" if gated else "sync")
        pe = PulseEngine(cfg)
        vectors = VectorWalker(cfg, dac, noise, adc)
        if self.gate_units:
            dac, adc, noise = (DomainRenamer("read")(u) for u in (dac, adc, noise))
            arr, pe = DomainRenamer("array")(arr), DomainRenamer("pulse")(pe)
        m.submodules.dac, m.submodules.adc, m.submodules.noise = dac, adc, noise
        m.submodules.array, m.submodules.pulse = arr, pe
        wiring.connect(m, arr.readout, adc.i)
        wiring.connect(m, noise.o, adc.noise)
        wiring.connect(m, pe.pulse, arr.pulse)
        d_tag = dac.o.payload.tag
        m.d.comb += [
            arr.drive.valid.eq(dac.o.valid), dac.o.ready.eq(arr.drive.ready),
            arr.drive.payload.tile.eq(d_tag.tile), arr.drive.payload.transpose.eq(d_tag.transpose),
            arr.drive.payload.line_q.eq(d_tag.line_q), arr.drive.payload.line_r.eq(d_tag.line_r),
            arr.drive.payload.chunk.eq(d_tag.chunk), arr.drive.payload.last.eq(d_tag.last),
            arr.drive.payload.codes.eq(dac.o.payload.codes),
        ]
        return dac, adc, noise, arr, pe, vectors

    def _join(self, m, vectors, samples, program, drift, keys, counters, pe, vec_op,
              seed_ready):
        """The walkers to the link, to the key hash and to the counters' increments: each
        drives its ports only while its operation runs, so they are joined by OR."""
        walkers = (vectors, samples, program, drift)
        for w in walkers:
            m.d.comb += [w.data_in.valid.eq(self.data_in.valid),
                         w.data_in.payload.eq(self.data_in.payload)]
        m.d.comb += self.data_in.ready.eq(
            vectors.data_in.ready | samples.data_in.ready | program.data_in.ready
            | drift.data_in.ready | seed_ready)
        sources = (vectors.data_out, program.data_out, counters.report)
        for s in sources:
            m.d.comb += s.ready.eq(self.data_out.ready)
        m.d.comb += [
            self.data_out.valid.eq(sources[0].valid | sources[1].valid | sources[2].valid),
            self.data_out.payload.eq(sources[0].payload | sources[1].payload
                                     | sources[2].payload),
        ]
        # keys: requested by the vector or the sample walker, returned to the one that asked
        key_reqs = (vectors.key_req, samples.key_req)
        m.d.comb += [
            keys.req.valid.eq(key_reqs[0].valid | key_reqs[1].valid),
            keys.req.payload.eq(Mux(key_reqs[0].valid, key_reqs[0].payload,
                                    key_reqs[1].payload)),
            key_reqs[0].ready.eq(keys.req.ready), key_reqs[1].ready.eq(keys.req.ready),
            vectors.key.valid.eq(keys.key.valid & vec_op), vectors.key.payload.eq(keys.key.payload),
            samples.key.valid.eq(keys.key.valid & ~vec_op),
            samples.key.payload.eq(keys.key.payload),
            keys.key.ready.eq(Mux(vec_op, vectors.key.ready, samples.key.ready)),
        ]
        inc = counters.inc
        m.d.comb += inc[_C["pulses"]].eq(Mux(pe.pulse.valid & pe.pulse.ready, pe.count, 0))
        for name in ("dac_conversions", "adc_conversions", "macs", "adc_saturations",
                     "fwd_vectors", "bwd_vectors"):
            m.d.comb += inc[_C[name]].eq(getattr(vectors, name))
        for name in ("update_samples", "pulse_ops"):
            m.d.comb += inc[_C[name]].eq(getattr(samples, name))

    @staticmethod
    def _program_port(m, arr, program, drift):
        """The array's program port: the program walker's, or the drift walker's while the
        returned signal is high (ADVANCE)."""
        drifting = Signal()
        m.d.comb += [
            arr.prog.valid.eq(Mux(drifting, drift.prog.valid, program.prog.valid)),
            arr.prog.payload.eq(program.prog.payload),
            program.prog.ready.eq(arr.prog.ready & ~drifting),
            drift.prog.ready.eq(arr.prog.ready & drifting),
            program.prog_out.valid.eq(arr.prog_out.valid & ~drifting),
            drift.prog_out.valid.eq(arr.prog_out.valid & drifting),
            program.prog_out.payload.eq(arr.prog_out.payload),
            drift.prog_out.payload.eq(arr.prog_out.payload),
            arr.prog_out.ready.eq(Mux(drifting, drift.prog_out.ready, program.prog_out.ready)),
        ]
        with m.If(drifting):  # its beats have no map (the array reads it only for MAP)
            m.d.comb += [getattr(arr.prog.payload, k).eq(getattr(drift.prog.payload, k))
                         for k in drift_prog_layout(Geometry(arr.cfg)).members]
        return drifting

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        dac, adc, noise, arr, pe, vectors = self._datapath(m)
        m.submodules.vectors = vectors
        m.submodules.samples = samples = SampleWalker(cfg)
        m.submodules.program = program = ProgramWalker(cfg)
        m.submodules.drift = drift = DriftWalker(cfg)
        m.submodules.keys = keys = KeyHash()
        m.submodules.counters = counters = CounterBank(cfg)
        wiring.connect(m, vectors.dac_codes, dac.i)
        wiring.connect(m, vectors.dac_req, dac.req)
        wiring.connect(m, vectors.noise, noise.i)
        wiring.connect(m, adc.o, vectors.results)
        wiring.connect(m, samples.start, pe.start)
        wiring.connect(m, samples.codes, pe.codes)
        drifting = self._program_port(m, arr, program, drift)
        m.d.comb += [arr.shape_mode.eq(self.shape_mode), arr.shape_wr.eq(self.shape_wr),
                     arr.step_factor.eq(self.step_factor),
                     self.settling.eq(arr.rinv_busy)]

        # ----- the operation: command and settings, sampled when it is accepted -----
        c = Signal(cmd_layout(cfg), reset_less=True)
        sl = Signal(settings_layout(cfg), reset_less=True)
        n_in = Signal(range(cfg.rows + 1), reset_less=True)
        n_out = Signal(range(cfg.cols + 1), reset_less=True)
        transpose = c.op == Op.BACKWARD
        vec_op = (c.op == Op.FORWARD) | transpose
        busy = Signal()
        m.d.comb += [
            busy.eq(~self.cmd.ready),
            dac.bits.eq(sl.in_bits), adc.bits.eq(sl.out_bits),
            adc.gain.eq(Mux(transpose, sl.bwd_gain, sl.fwd_gain)),
            adc.shift.eq(Mux(transpose, sl.bwd_shift, sl.fwd_shift)),
            adc.sigma.eq(Mux(transpose, sl.bwd_sigma, sl.fwd_sigma)),
            pe.bl.eq(sl.bl), pe.dw_std.eq(sl.dw_std),
            vectors.count.eq(c.count), vectors.tile.eq(c.tile), vectors.transpose.eq(transpose),
            vectors.n_dac.eq(Mux(transpose, n_out, n_in)),
            vectors.n_adc.eq(Mux(transpose, n_in, n_out)), vectors.on.eq(vec_op & busy),
            samples.update.eq(c.op == Op.UPDATE), samples.count.eq(c.count),
            samples.tile.eq(c.tile), samples.axis.eq(c.axis), samples.index.eq(c.index),
            samples.n_in.eq(n_in), samples.n_out.eq(n_out),
            samples.engine_idle.eq(~pe.busy & arr.idle),
            program.op.eq(c.op), program.tile.eq(c.tile), program.n_in.eq(n_in),
            program.n_out.eq(n_out),
            drift.tile.eq(c.tile), drifting.eq(c.op == Op.ADVANCE),
            counters.tile.eq(c.tile),
        ]

        # ----- the link: one walker (or the counters, or the seed) at a time -----
        seed_ready = Signal()
        self._join(m, vectors, samples, program, drift, keys, counters, pe, vec_op, seed_ready)

        cmd = self.cmd.payload
        in_shape = self.settings.shapes[cmd.tile]
        tile_ok = cmd.tile < cfg.tiles
        index_ok = cmd.index < Mux(cmd.axis, in_shape.n_out, in_shape.n_in)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), counters.restart.eq(self.cmd.valid),
                             vectors.begin.eq(self.cmd.valid), program.begin.eq(self.cmd.valid),
                             drift.begin.eq(self.cmd.valid)]
                with m.If(self.cmd.valid):
                    m.d.sync += [c.eq(cmd), sl.eq(self.settings), n_in.eq(in_shape.n_in),
                                 n_out.eq(in_shape.n_out)]
                    with m.Switch(cmd.op):
                        with m.Case(Op.PULSE):
                            with m.If(tile_ok & index_ok):
                                m.next = "READ_COUNTERS"
                        with m.Case(Op.FORWARD, Op.BACKWARD, Op.UPDATE, Op.PROGRAM, Op.READ,
                                    Op.MAP_WRITE, Op.MAP_READ, Op.COUNTERS):
                            with m.If(tile_ok):
                                m.next = "READ_COUNTERS"
                        with m.Case(Op.SEED):
                            m.next = "SEED_IN"
                        with m.Case(Op.ADVANCE):  # not counted: it is the chip's, not a tile's
                            with m.If(tile_ok):
                                m.next = "DRIFT"
                        with m.Case(Op.RESET):
                            m.next = "PROGRAM"
            with m.State("READ_COUNTERS"):  # the tile's counter row is read
                m.next = "LOAD_COUNTERS"
            with m.State("LOAD_COUNTERS"):
                m.d.comb += counters.load.eq(1)
                empty = ((c.op == Op.FORWARD) | (c.op == Op.BACKWARD) | (c.op == Op.UPDATE)) & (
                    c.count == 0)
                with m.Switch(c.op):
                    with m.Case(Op.FORWARD, Op.BACKWARD):
                        m.next = "VECTORS"
                    with m.Case(Op.UPDATE, Op.PULSE):
                        m.d.comb += samples.go.eq(~empty)
                        m.next = "SAMPLES"
                    with m.Case(Op.PROGRAM, Op.MAP_WRITE, Op.READ, Op.MAP_READ):
                        m.next = "PROGRAM"
                    with m.Case(Op.COUNTERS):
                        m.next = "REPORT_COUNTERS"
                with m.If(empty):
                    m.next = "STORE_COUNTERS"
            with m.State("VECTORS"):  # vector k+1 loads while vector k is driven
                m.d.comb += vectors.active.eq(1)
                with m.If(vectors.issued):
                    m.next = "VECTORS_DRAIN"
            with m.State("VECTORS_DRAIN"):
                with m.If(vectors.drained):
                    m.next = "STORE_COUNTERS"
            with m.State("SAMPLES"):
                with m.If(samples.done):
                    m.next = "STORE_COUNTERS"
            with m.State("PROGRAM"):
                m.d.comb += program.active.eq(1)
                with m.If(program.done):
                    with m.Switch(c.op):
                        with m.Case(Op.READ, Op.MAP_READ):
                            m.next = "STORE_COUNTERS"
                        with m.Case(Op.PROGRAM, Op.MAP_WRITE):
                            m.next = "PROGRAM_WAIT"
                        with m.Case(Op.RESET):
                            m.next = "CLEAR_COUNTERS"
            with m.State("PROGRAM_WAIT"):  # the last writes land
                with m.If(arr.idle):
                    m.next = "STORE_COUNTERS"
            with m.State("DRIFT"):
                m.d.comb += drift.active.eq(1)
                with m.If(drift.done):
                    m.next = "ARRAY_WAIT"
            with m.State("REPORT_COUNTERS"):
                m.d.comb += counters.reporting.eq(1)
                with m.If(counters.reported):
                    m.next = "IDLE"
            with m.State("STORE_COUNTERS"):
                m.d.comb += counters.store.eq(1)
                m.next = "IDLE"
            with m.State("SEED_IN"):
                m.d.comb += [keys.seed.valid.eq(self.data_in.valid),
                             keys.seed.payload.eq(self.data_in.payload),
                             seed_ready.eq(keys.seed.ready)]
                with m.If(keys.seed.valid & keys.seed.ready):
                    m.next = "SEED_BASES"
            with m.State("SEED_BASES"):
                with m.If(keys.seeded):
                    m.next = "IDLE"
            with m.State("CLEAR_COUNTERS"):  # RESET: then seed 0, nonce 0
                m.d.comb += counters.clear.eq(1)
                with m.If(counters.cleared):
                    m.d.comb += keys.clear.eq(1)
                    m.next = "ARRAY_WAIT"
            with m.State("ARRAY_WAIT"):  # RESET, ADVANCE: the last write lands
                with m.If(arr.idle):
                    m.next = "IDLE"

        m.d.comb += self.busy.eq(busy)
        if self.gate_units:
            self._gate_clocks(m, c.op, busy, vec_op, pe, arr)
        return m

    def _gate_clocks(self, m, op, busy, vec_op, pe, arr):
        """The emulator's clock gates: each unit's clock runs only while it has work."""
        # idle units hold: their pipelines drain before the operation ends
        gate_domain(m, "read", vec_op & busy)
        gate_domain(m, "pulse", ((op == Op.UPDATE) | (op == Op.PULSE)) & busy | pe.busy)
        # the array only in cycles with a beat offered or in flight (idle covers its outputs)
        arr_work = (~arr.idle | arr.drive.valid | arr.pulse.valid | arr.prog.valid
                    | arr.shape_wr.load | arr.rinv_busy)
        gate_domain(m, "array", arr_work, tail=2)
        gate_domain(m, "shape", arr_work & (arr.shape_mode != 0), tail=2,
                    enable=self.shape_clock_on)
        # the array's pulse and program path: from a pulse or program beat offered until the
        # array is idle again, and while map writes' rinv values are computed
        store_seen = Signal()
        with m.If(arr.pulse.valid | arr.prog.valid):
            m.d.sync += store_seen.eq(1)
        with m.Elif(arr.idle):
            m.d.sync += store_seen.eq(0)
        gate_domain(m, "store", arr.pulse.valid | arr.prog.valid | store_seen | arr.rinv_busy,
                    tail=2, enable=self.store_clock_on)
