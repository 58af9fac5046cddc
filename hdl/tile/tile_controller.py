"""The tile controller: sequences forward, backward, update, pulse, program and read operations of
several logical tiles over one datapath (DAC -> AnalogArray -> ADC, PulseEngine), holds the PRNG
seed and nonce, and keeps per-tile counters.

A command processor drives it through ``cmd`` (one beat per operation), ``data_in`` (operand
words) and ``data_out`` (result words); docs/gateware.md gives the word order of every operation
and its cycle count. Operations run one at a time; ``cmd`` is ready only when the controller is
idle. Settings are sampled when a command is accepted.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from ohmflow.emulator import prng
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.hdl.lib.clock_gate import gate_domain
from ohmflow.hdl.lib.fixed import clip, divmod_const
from ohmflow.hdl.tile.adc import ADC
from ohmflow.hdl.tile.array import AnalogArray
from ohmflow.hdl.tile.dac import DAC
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd
from ohmflow.hdl.tile.noise import ReadNoise
from ohmflow.hdl.tile.prng import Lowbias32
from ohmflow.hdl.tile.pulse_engine import PulseEngine, PulseMode
from ohmflow.hdl.tile.tile_io import (
    COUNTER_BITS,
    COUNTER_NAMES,
    RESULT,
    Op,
    TileLink,
    cmd_layout,
    settings_layout,
)
from ohmflow.hdl.tile.walk import Walk

__all__ = ["TileController"]

_C = {name: k for k, name in enumerate(COUNTER_NAMES)}
DOMAINS = (prng.DOMAIN_FWD, prng.DOMAIN_BWD, prng.DOMAIN_ROW, prng.DOMAIN_COL, prng.DOMAIN_C2C)


def seed_bases(seed: int) -> list[int]:
    """``lowbias32(lowbias32(seed) ^ domain)`` for the five domains (keys are base ^ nonce)."""
    h = prng.lowbias32(seed)
    return [prng.lowbias32(h ^ d) for d in DOMAINS]


class TileController(wiring.Component):
    """Sequencer, counters and PRNG state around one analog datapath.

    Its ports are the far end of a `TileLink` (``cmd``, ``data_in``, ``data_out``, ``settings``,
    ``busy``): a command processor connects to it with one ``wiring.connect``.

    ``gate_units`` (simulation only, `ohmflow.hdl.lib.clock_gate`) clocks the pulse engine only in
    UPDATE and PULSE, the DAC, ADC and read noise only in FORWARD and BACKWARD, and the array
    only while a beat is offered or in flight.
    """

    def __init__(self, cfg: ChipConfig, device_map: DeviceMap | None = None, *,
                 gate_units: bool = False):
        self.cfg = cfg
        self.geom = Geometry(cfg)
        self.device_map = device_map
        self.gate_units = gate_units
        super().__init__(TileLink(cfg).flip())

    def elaborate(self, platform):
        m = Module()
        cfg, g = self.cfg, self.geom
        L = cfg.lanes
        nmax = max(cfg.rows, cfg.cols)
        tag = data.StructLayout({"tile": g.index_shape(g.tile_bits), "transpose": 1,
                                 "line_q": g.index_shape(g.q_bits),
                                 "line_r": g.index_shape(g.r_bits),
                                 "chunk": g.index_shape(g.q_bits), "last": 1})
        dac, adc, noise = DAC(cfg, tag), ADC(cfg), ReadNoise(cfg)
        arr, pe = AnalogArray(cfg, self.device_map), PulseEngine(cfg)
        if self.gate_units:
            dac, adc, noise = (DomainRenamer("read")(u) for u in (dac, adc, noise))
            arr, pe = DomainRenamer("array")(arr), DomainRenamer("pulse")(pe)
        m.submodules.dac, m.submodules.adc, m.submodules.noise = dac, adc, noise
        m.submodules.array, m.submodules.pulse = arr, pe
        m.submodules.keys = kh = Lowbias32(lanes=1)
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

        # ----- command registers and latched settings -----
        c = Signal(cmd_layout(cfg), reset_less=True)
        sl = Signal(settings_layout(cfg), reset_less=True)
        n_in = Signal(range(cfg.rows + 1), reset_less=True)
        n_out = Signal(range(cfg.cols + 1), reset_less=True)
        transpose = c.op == Op.BACKWARD
        n_dac = Mux(transpose, n_out, n_in)
        n_adc = Mux(transpose, n_in, n_out)
        # the last input chunk of a line, registered: a constant division (a multiply when L is
        # not a power of two) must not sit between the op register and the drive requests; the
        # first request comes cycles after the command is taken
        chunk_last = Signal(range(max(2, -(-nmax // L))), reset_less=True)
        m.d.sync += chunk_last.eq(divmod_const(n_dac - 1, L, nmax)[0])
        m.d.comb += [
            dac.bits.eq(sl.in_bits), adc.bits.eq(sl.out_bits),
            adc.gain.eq(Mux(transpose, sl.bwd_gain, sl.fwd_gain)),
            adc.shift.eq(Mux(transpose, sl.bwd_shift, sl.fwd_shift)),
            adc.sigma.eq(Mux(transpose, sl.bwd_sigma, sl.fwd_sigma)),
            pe.bl.eq(sl.bl), pe.dw_std.eq(sl.dw_std),
        ]

        # ----- PRNG state: seed, per-domain bases, nonce -----
        seed = Signal(32)
        nonce = Signal(32)
        base = [Signal(32, init=v, name=f"base{k}") for k, v in enumerate(seed_bases(0))]
        kreq = Signal(range(8))
        kgot = Signal(range(8))
        keys = [Signal(32, reset_less=True, name=f"key{k}") for k in range(3)]
        h0 = Signal(32, reset_less=True)

        # ----- counters: a memory row per tile, worked on in registers -----
        m.submodules.cmem = cmem = Memory(
            shape=data.ArrayLayout(COUNTER_BITS, len(COUNTER_NAMES)), depth=max(2, cfg.tiles),
            init=[])
        crd, cwr = cmem.read_port(), cmem.write_port()
        cnt = [Signal(COUNTER_BITS, reset_less=True, name=f"cnt_{n}") for n in COUNTER_NAMES]
        inc = [Signal(16, name=f"inc_{n}") for n in COUNTER_NAMES]
        elapsed = Signal(COUNTER_BITS, reset_less=True)
        m.d.comb += [crd.addr.eq(c.tile), crd.en.eq(1)]

        # ----- loop state -----
        vec = Signal(16)
        vl = Signal(16)  # FORWARD / BACKWARD: vectors loaded into the DAC (vec: driven)
        out_vecs = Signal(16)
        out_line = Signal(range(nmax + 1))
        ld = Signal(range(cfg.rows + cfg.cols + 1))
        ld_done = Signal()
        key_sent = Signal()
        walk = Walk(cfg)
        field_c = Signal(range(2 * len(COUNTER_NAMES)))
        outstanding = Signal(range(8))
        issued_all = Signal()
        field = Signal(range(6))
        regs = [Signal(32, reset_less=True, name=f"mapw{k}") for k in range(5)]
        ztile = Signal(range(cfg.tiles + 1))

        word = self.data_in.payload
        cmd = self.cmd.payload
        in_shape = self.settings.shapes[cmd.tile]
        tile_ok = cmd.tile < cfg.tiles
        index_ok = cmd.index < Mux(cmd.axis, in_shape.n_out, in_shape.n_in)
        prog = arr.prog.payload
        m.d.comb += [prog.tile.eq(c.tile), prog.jq.eq(walk.jq), prog.jr.eq(walk.jr),
                     prog.iq.eq(walk.iq), prog.ir.eq(walk.ir)]
        pulse_fire = pe.pulse.valid & pe.pulse.ready
        m.d.comb += inc[_C["pulses"]].eq(Mux(pulse_fire, pe.count, 0))
        m.d.sync += outstanding.eq(
            outstanding + (arr.prog.valid & arr.prog.ready & (prog.cmd == ProgCmd.READ))
            - (arr.prog_out.valid & arr.prog_out.ready))
        m.d.sync += elapsed.eq(elapsed + 1)

        def start_vector():
            return [ld.eq(0), ld_done.eq(0), key_sent.eq(0), kreq.eq(0), kgot.eq(0),
                    *walk.clear()]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [c.eq(cmd), sl.eq(self.settings), n_in.eq(in_shape.n_in),
                                 n_out.eq(in_shape.n_out), elapsed.eq(0), vec.eq(0), vl.eq(0),
                                 out_vecs.eq(0), out_line.eq(0), issued_all.eq(0),
                                 field.eq(0), ztile.eq(0), *start_vector()]
                    with m.Switch(cmd.op):
                        with m.Case(Op.PULSE):
                            with m.If(tile_ok & index_ok):
                                m.next = "LOAD0"
                        with m.Case(Op.FORWARD, Op.BACKWARD, Op.UPDATE, Op.PROGRAM, Op.READ,
                                    Op.MAP_WRITE, Op.MAP_READ, Op.COUNTERS):
                            with m.If(tile_ok):
                                m.next = "LOAD0"
                        with m.Case(Op.SEED):
                            m.next = "SEED_IN"
                        with m.Case(Op.RESET):
                            m.next = "ZERO"
            with m.State("LOAD0"):
                m.next = "LOAD1"
            with m.State("LOAD1"):
                m.d.sync += [cnt[k].eq(crd.data[k]) for k in range(len(cnt))]
                with m.Switch(c.op):
                    with m.Case(Op.FORWARD, Op.BACKWARD):
                        m.next = "V_RUN"
                    with m.Case(Op.UPDATE, Op.PULSE):
                        m.next = "U_KEY"
                    with m.Case(Op.PROGRAM):
                        m.next = "P_RUN"
                    with m.Case(Op.MAP_WRITE):
                        m.next = "MW_RUN"
                    with m.Case(Op.READ, Op.MAP_READ):
                        m.next = "R_RUN"
                    with m.Case(Op.COUNTERS):
                        m.next = "C_OUT"
                with m.If(((c.op == Op.FORWARD) | (c.op == Op.BACKWARD) | (c.op == Op.UPDATE))
                          & (c.count == 0)):
                    m.next = "STORE"

            # ----- FORWARD / BACKWARD: vector k+1 loads (key || codes) while k is driven -----
            with m.State("V_RUN"):
                loading = vl != c.count
                last_code = ld + 1 == n_dac
                m.d.comb += [
                    kh.i.valid.eq(loading & ~key_sent),
                    kh.i.payload.word[0].eq(Mux(transpose, base[1], base[0]) ^ nonce),
                    dac.i.valid.eq(loading & self.data_in.valid & ~ld_done),
                    dac.i.payload.code.eq(word.as_signed()),
                    dac.i.payload.last.eq(last_code),
                    self.data_in.ready.eq(loading & dac.i.ready & ~ld_done),
                ]
                key_in = kh.i.valid & kh.i.ready
                code_in = dac.i.valid & dac.i.ready
                with m.If(key_in):
                    m.d.sync += [key_sent.eq(1), nonce.eq(nonce + 1)]
                with m.If(code_in):
                    m.d.sync += [ld.eq(ld + 1), ld_done.eq(last_code)]
                    m.d.comb += inc[_C["dac_conversions"]].eq(1)
                with m.If((ld_done | (code_in & last_code)) & (key_sent | key_in)):
                    m.d.sync += [vl.eq(vl + 1), ld.eq(0), ld_done.eq(0), key_sent.eq(0)]

                rq = dac.req.payload
                end = walk.at(n_adc - 1, chunk_last)
                m.d.comb += [
                    dac.req.valid.eq(1), rq.chunk.eq(walk.i), rq.tag.tile.eq(c.tile),
                    rq.tag.transpose.eq(transpose), rq.tag.line_q.eq(walk.jq),
                    rq.tag.line_r.eq(walk.jr), rq.tag.chunk.eq(walk.i),
                    rq.tag.last.eq(walk.i == chunk_last), rq.end.eq(end),
                ]
                with m.If(dac.req.ready):
                    m.d.sync += walk.step(chunk_last)
                    with m.If(end):
                        m.d.sync += [vec.eq(vec + 1), *walk.clear()]
                        with m.If(vec + 1 == c.count):
                            m.next = "V_DRAIN"
            with m.State("V_DRAIN"):
                with m.If(out_vecs == c.count):
                    m.next = "STORE"

            # ----- UPDATE / PULSE: per sample, keys, start, codes, wait -----
            with m.State("U_KEY"):
                m.d.comb += [kh.i.valid.eq(kreq < 3),
                             kh.i.payload.word[0].eq(Array(base[2:])[kreq[:2]] ^ nonce),
                             kh.o.ready.eq(1)]
                with m.If(kh.i.valid & kh.i.ready):
                    m.d.sync += kreq.eq(kreq + 1)
                    with m.If(kreq == 2):
                        m.d.sync += nonce.eq(nonce + 1)
                with m.If(kh.o.valid):
                    m.d.sync += [Array(keys)[kgot[:2]].eq(kh.o.payload.word[0]), kgot.eq(kgot + 1)]
                with m.If(kgot == 3):
                    m.next = "U_START"
            with m.State("U_START"):
                sp = pe.start.payload
                mode = Mux(c.op == Op.UPDATE, PulseMode.RANDOM,
                           Mux(c.axis, PulseMode.COL, PulseMode.ROW))
                m.d.comb += [pe.start.valid.eq(1), sp.mode.eq(mode), sp.tile.eq(c.tile),
                             sp.n_in.eq(n_in), sp.n_out.eq(n_out), sp.index.eq(c.index),
                             sp.key_row.eq(keys[0]), sp.key_col.eq(keys[1]),
                             sp.key_c2c.eq(keys[2])]
                with m.If(pe.start.ready):
                    m.d.sync += ld.eq(0)
                    m.next = "U_CODES"
            with m.State("U_CODES"):
                total = Mux(c.op == Op.UPDATE, n_in + n_out, Mux(c.axis, n_in, n_out))
                m.d.comb += [pe.codes.valid.eq(self.data_in.valid),
                             pe.codes.payload.eq(word.as_signed()),
                             self.data_in.ready.eq(pe.codes.ready)]
                with m.If(pe.codes.valid & pe.codes.ready):
                    m.d.sync += ld.eq(ld + 1)
                    with m.If(ld + 1 == total):
                        m.next = "U_WAIT"
            with m.State("U_WAIT"):
                with m.If(~pe.busy & arr.idle):
                    with m.If(c.op == Op.UPDATE):
                        m.d.comb += inc[_C["update_samples"]].eq(1)
                    with m.Else():
                        m.d.comb += inc[_C["pulse_ops"]].eq(1)
                    m.d.sync += [vec.eq(vec + 1), *start_vector()]
                    m.next = "U_KEY"
                    with m.If((c.op == Op.PULSE) | (vec + 1 == c.count)):
                        m.next = "STORE"

            # ----- PROGRAM, MAP_WRITE: operand words to the program port -----
            with m.State("P_RUN"):
                m.d.comb += [arr.prog.valid.eq(self.data_in.valid),
                             self.data_in.ready.eq(arr.prog.ready),
                             prog.cmd.eq(ProgCmd.STATE),
                             prog.state.eq(clip(word.as_signed(), cfg.w_min_code, cfg.w_max_code))]
                with m.If(arr.prog.valid & arr.prog.ready):
                    m.d.sync += walk.step(n_in - 1)
                    with m.If(walk.at(n_out - 1, n_in - 1)):
                        m.next = "P_WAIT"
            with m.State("MW_RUN"):
                w = [r.as_signed() for r in regs] + [word.as_signed()]
                m.d.comb += [
                    prog.cmd.eq(ProgCmd.MAP),
                    prog.map.su.eq(clip(w[0], 0, cfg.step_max)),
                    prog.map.sd.eq(clip(w[1], 0, cfg.step_max)),
                    prog.map.ku.eq(clip(w[2], -cfg.slope_max, cfg.slope_max)),
                    prog.map.kd.eq(clip(w[3], -cfg.slope_max, cfg.slope_max)),
                    prog.map.wmax.eq(clip(w[4], 0, cfg.w_max_code)),
                    prog.map.wmin.eq(clip(w[5], cfg.w_min_code, 0)),
                ]
                with m.If(field == 5):
                    m.d.comb += [arr.prog.valid.eq(self.data_in.valid),
                                 self.data_in.ready.eq(arr.prog.ready)]
                    with m.If(arr.prog.valid & arr.prog.ready):
                        m.d.sync += [field.eq(0), walk.step(cfg.rows - 1)]
                        with m.If(walk.at(cfg.cols - 1, cfg.rows - 1)):
                            m.next = "P_WAIT"
                with m.Else():
                    m.d.comb += self.data_in.ready.eq(1)
                    with m.If(self.data_in.valid):
                        m.d.sync += [Array(regs)[field].eq(word), field.eq(field + 1)]
            with m.State("P_WAIT"):
                with m.If(arr.idle):
                    m.next = "STORE"

            # ----- READ, MAP_READ: program-port reads to result words -----
            with m.State("R_RUN"):
                is_map = c.op == Op.MAP_READ
                j_last = Mux(is_map, cfg.cols - 1, n_out - 1)
                i_last = Mux(is_map, cfg.rows - 1, n_in - 1)
                po = arr.prog_out.payload
                fields = [po.map.su, po.map.sd, po.map.ku, po.map.kd, po.map.wmax, po.map.wmin]
                m.d.comb += [
                    arr.prog.valid.eq(~issued_all & (outstanding < 4)),
                    prog.cmd.eq(ProgCmd.READ),
                    self.data_out.valid.eq(arr.prog_out.valid),
                    self.data_out.payload.eq(Mux(is_map, Array(fields)[field], po.state)),
                    arr.prog_out.ready.eq(self.data_out.ready & (~is_map | (field == 5))),
                ]
                with m.If(arr.prog.valid & arr.prog.ready):
                    m.d.sync += walk.step(i_last)
                    with m.If(walk.at(j_last, i_last)):
                        m.d.sync += issued_all.eq(1)
                with m.If(self.data_out.valid & self.data_out.ready & is_map):
                    m.d.sync += field.eq(Mux(field == 5, 0, field + 1))
                with m.If(issued_all & (outstanding == 0)):
                    m.next = "STORE"

            with m.State("C_OUT"):
                halves = []
                for v in cnt:
                    halves += [v[:32], v[32:]]
                m.d.comb += [self.data_out.valid.eq(1),
                             self.data_out.payload.eq(Array(halves)[field_c])]
                with m.If(self.data_out.ready):
                    m.d.sync += field_c.eq(field_c + 1)
                    with m.If(field_c == len(halves) - 1):
                        m.d.sync += field_c.eq(0)
                        m.next = "IDLE"

            with m.State("STORE"):
                m.d.comb += [cwr.addr.eq(c.tile), cwr.en.eq(1)]
                for k, v in enumerate(cnt):
                    m.d.comb += cwr.data[k].eq(v + elapsed + 1 if k == _C["cycles"] else v)
                m.next = "IDLE"

            # ----- SEED: bases of the five domains; the nonce restarts -----
            with m.State("SEED_IN"):
                m.d.comb += self.data_in.ready.eq(1)
                with m.If(self.data_in.valid):
                    m.d.sync += [seed.eq(word), kreq.eq(0), kgot.eq(0)]
                    m.next = "SEED_H0"
            with m.State("SEED_H0"):
                m.d.comb += [kh.i.valid.eq(kreq == 0), kh.i.payload.word[0].eq(seed),
                             kh.o.ready.eq(1)]
                with m.If(kh.i.valid & kh.i.ready):
                    m.d.sync += kreq.eq(1)
                with m.If(kh.o.valid):
                    m.d.sync += [h0.eq(kh.o.payload.word[0]), kreq.eq(0)]
                    m.next = "SEED_B"
            with m.State("SEED_B"):
                dom = Array([Const(d, 32) for d in DOMAINS])[kreq]
                m.d.comb += [kh.i.valid.eq(kreq < 5), kh.i.payload.word[0].eq(h0 ^ dom),
                             kh.o.ready.eq(1)]
                with m.If(kh.i.valid & kh.i.ready):
                    m.d.sync += kreq.eq(kreq + 1)
                with m.If(kh.o.valid):
                    m.d.sync += [Array(base)[kgot].eq(kh.o.payload.word[0]), kgot.eq(kgot + 1)]
                    with m.If(kgot == 4):
                        m.d.sync += nonce.eq(0)
                        m.next = "IDLE"

            # ----- RESET: every state to 0, counters cleared, seed 0 -----
            with m.State("ZERO"):
                m.d.comb += [arr.prog.valid.eq(1), prog.tile.eq(ztile),
                             prog.cmd.eq(ProgCmd.STATE), prog.state.eq(0)]
                with m.If(arr.prog.ready):
                    m.d.sync += walk.step(cfg.rows - 1)
                    with m.If(walk.at(cfg.cols - 1, cfg.rows - 1)):
                        m.d.sync += [ztile.eq(ztile + 1), *walk.clear()]
                        with m.If(ztile == cfg.tiles - 1):
                            m.d.sync += ztile.eq(0)
                            m.next = "ZERO_CNT"
            with m.State("ZERO_CNT"):
                m.d.comb += [cwr.addr.eq(ztile), cwr.en.eq(1), cwr.data.eq(0)]
                m.d.sync += ztile.eq(ztile + 1)
                with m.If(ztile == cfg.tiles - 1):
                    m.d.sync += [seed.eq(0), nonce.eq(0)]
                    m.d.sync += [b.eq(v) for b, v in zip(base, seed_bases(0), strict=True)]
                    m.next = "Z_WAIT"
            with m.State("Z_WAIT"):
                with m.If(arr.idle):
                    m.next = "IDLE"

        # ----- results of FORWARD / BACKWARD; keys to the read-noise unit -----
        vec_op = (c.op == Op.FORWARD) | (c.op == Op.BACKWARD)
        busy = Signal()
        m.d.comb += busy.eq(~self.cmd.ready)
        result = Signal(RESULT)
        fire_out = Signal()
        m.d.comb += [result.code.eq(adc.o.payload.code), result.saturated.eq(adc.o.payload.sat),
                     fire_out.eq(vec_op & busy & adc.o.valid & adc.o.ready)]
        with m.If(vec_op & busy):
            m.d.comb += [
                noise.i.valid.eq(kh.o.valid), noise.i.payload.key.eq(kh.o.payload.word[0]),
                noise.i.payload.count.eq(n_adc), kh.o.ready.eq(noise.i.ready),
                self.data_out.valid.eq(adc.o.valid), adc.o.ready.eq(self.data_out.ready),
                self.data_out.payload.eq(result),
            ]
        m.d.comb += [
            inc[_C["adc_conversions"]].eq(fire_out),
            inc[_C["macs"]].eq(Mux(fire_out, n_dac, 0)),
            inc[_C["adc_saturations"]].eq(fire_out & adc.o.payload.sat),
        ]
        with m.If(fire_out):
            m.d.sync += out_line.eq(out_line + 1)
            with m.If(out_line + 1 == n_adc):
                m.d.sync += [out_line.eq(0), out_vecs.eq(out_vecs + 1)]
                m.d.comb += [inc[_C["fwd_vectors"]].eq(~transpose),
                             inc[_C["bwd_vectors"]].eq(transpose)]
        with m.If(~fsm.ongoing("LOAD1")):
            m.d.sync += [v.eq(v + i) for v, i in zip(cnt, inc, strict=True)]
        m.d.comb += self.busy.eq(busy)
        if self.gate_units:
            # idle units hold: their pipelines drain before the operation ends
            gate_domain(m, "read", vec_op & busy)
            gate_domain(m, "pulse", ((c.op == Op.UPDATE) | (c.op == Op.PULSE)) & busy | pe.busy)
            # the array only in cycles with a beat offered or in flight (idle covers its outputs)
            gate_domain(m, "array", ~arr.idle | arr.drive.valid | arr.pulse.valid
                        | arr.prog.valid, tail=2)
        return m
