"""The analog array: a fixed-point behavioural crossbar of one or more tiles (weight banks).

Its ports are an analog macro's: row drive codes in and column sums out (``drive`` ->
``readout``), pulse lines in (``pulse``: per-device coincidence counts, polarity and the
cycle-to-cycle draw of the event), and a program port (``prog`` -> ``prog_out``). Device states
and parameters sit in ``cfg.lanes`` block-RAM banks (see `Geometry`); L MAC lanes read them.

Device physics (``Twin._apply``): for a device hit by ``n > 0`` coincidences,
``step = max(0, s + rnd(k*w, 20))``, ``total = n*step + rnd(step*t, 12)``,
``w = clip(w ± total, wmin, wmax)``, with ``(s, k) = (su, ku)`` up and ``(sd, kd)`` down.

Step shapes (§5.4.1): ``shape_mode`` (0 linear, 1 bottom, 2 centered; constant while beats are
in flight), ``shape_wr`` (node writes into every lane's tables, `ShapeLane`) and ``step_factor``
(CS[T], the nodes' factor of temperature, §11.4; likewise constant). In a table mode
``s`` is replaced by b = rnd(s g, 12), g interpolated from the tables at the device's position,
which takes each device's rinv from a per-device memory written by a `RangeDivider` on every map
write (and ``idle`` waits for those writes). The step-base pipelines and the delay stages of a
table mode are registers of ``shape_domain`` (default ``sync``): a simulation can stop its clock
while the mode is linear, where none of them ever loads. Likewise the registers and memory ports
that only pulse and program beats use (bounds, slopes, rinv, the range divider, the step and
write-back pipeline) are of ``store_domain``: a simulation can stop it while only drive beats
flow.

Pipeline: a beat is accepted at cycle 0; memories answer at 1 and are registered at 2; a drive
beat's products are registered at 3 and summed at 4; the column sum of a line leaves at cycle 5
after its last beat. States are written back at cycle 6. In a table mode every beat spends
`SHAPE_LATENCY` more cycles between its products and its sum (the step base's pipeline). A beat
on ``pulse`` has priority over ``drive``, which has priority over ``prog``. Beats reading a device
written by an earlier beat must wait for ``idle``.
"""

from __future__ import annotations

from amaranth.hdl import (
    Array,
    Cat,
    Const,
    DomainRenamer,
    Module,
    Mux,
    Signal,
    Value,
    signed,
    unsigned,
)
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import C2C_FRAC, SHAPE_MODES, SLOPE_FRAC, TEMP_FRAC, ChipConfig
from ohmflow.emulator.fabrication import DeviceMap, nominal
from ohmflow.hdl.lib.fixed import clip, mul_lut, rnd_shift, rotate, sum_tree
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd
from ohmflow.hdl.tile.physics_math import CS_BITS
from ohmflow.hdl.tile.shape_unit import (
    SHAPE_LATENCY,
    RangeDivider,
    ShapeLane,
    rinv_bits,
    rinv_values,
    shape_write_layout,
)

__all__ = ["AnalogArray"]

KIND_DRIVE, KIND_PULSE, KIND_PROG = 0, 1, 2


def _mod_add(a, b, n: int) -> Value:
    """(a + b) mod n for 0 <= a, b < n."""
    w = max(1, (n - 1).bit_length())
    if n & (n - 1) == 0:
        return (a + b)[:w]
    s = a + b
    return Mux(s >= n, s - n, s)[:w]


def _mod_sub(a: int, b, n: int) -> Value:
    """(a - b) mod n for a constant 0 <= a < n and 0 <= b < n."""
    w = max(1, (n - 1).bit_length())
    if n & (n - 1) == 0 or a == n - 1:
        return (a - b)[:w]
    return Mux(b <= a, a - b, a + n - b)[:w]


class AnalogArray(wiring.Component):
    """The crossbar of ``cfg.tiles`` tiles of ``cfg.cols`` x ``cfg.rows`` devices.

    Parameters
    ----------
    cfg:
        The chip configuration.
    device_map:
        The device parameters at power-up (default: the nominal map, as `Twin` starts with).
    shape_domain:
        The clock domain of the table modes' registers (`ShapeLane` pipelines, delay stages);
        its clock must run like ``sync``'s whenever ``shape_mode`` is not linear.
    store_domain:
        The clock domain of what only pulse and program beats use; its clock must run like
        ``sync``'s from a cycle with ``pulse`` or ``prog`` valid until ``idle``, and while
        ``rinv_busy``.
    """

    def __init__(self, cfg: ChipConfig, device_map: DeviceMap | None = None, *,
                 shape_domain: str = "sync", store_domain: str = "sync"):
        self.cfg = cfg
        self.shape_domain = shape_domain
        self.store_domain = store_domain
        self.geom = g = Geometry(cfg)
        self.device_map = (device_map or nominal(cfg)).validate(cfg)
        super().__init__({
            "drive": In(stream.Signature(g.drive_layout)),
            "readout": Out(stream.Signature(signed(cfg.acc_bits))),
            "pulse": In(stream.Signature(g.pulse_layout)),
            "prog": In(stream.Signature(g.prog_layout)),
            "prog_out": Out(stream.Signature(g.prog_out_layout)),
            "shape_mode": In(range(len(SHAPE_MODES))),
            "shape_wr": In(shape_write_layout()),
            "step_factor": In(CS_BITS, init=1 << TEMP_FRAC),
            "rinv_busy": Out(1),
            "idle": Out(1),
        })

    def _init(self, bank: int):
        """Initial contents of one bank: (bounds, slopes, rinv) lists over the bank's depth."""
        g, cfg, dm = self.geom, self.cfg, self.device_map
        L = cfg.lanes
        bounds, slopes, rinv = [], [], []
        for addr in range(g.depth):
            iq = addr & ((1 << g.iq_bits) - 1)
            jr = (addr >> g.iq_bits) & ((1 << g.r_bits) - 1)
            jq = (addr >> (g.iq_bits + g.r_bits)) & ((1 << g.jq_bits) - 1)
            t = addr >> (g.iq_bits + g.r_bits + g.jq_bits)
            j, i = jq * L + jr, iq * L + (bank - jr) % L
            if not (t < cfg.tiles and jr < L and j < cfg.cols and i < cfg.rows):
                t = j = i = 0
            bounds.append({"wmax": int(dm.wmax[t, j, i]), "wmin": int(dm.wmin[t, j, i])})
            slopes.append({f: int(getattr(dm, f)[t, j, i]) for f in ("su", "sd", "ku", "kd")})
            rinv.append(int(rinv_values(cfg, dm.wmax[t, j, i], dm.wmin[t, j, i])))
        return bounds, slopes, rinv

    def _memories(self, m: Module, adv, take, table):
        """Stage 0: each lane's state, bounds and slopes memories, their addresses for the beat
        taken (pulse, drive or program) and the device map's writes. Each memory is read only
        for the beats that use it: bounds and slopes for pulse and program beats, rinv for pulse
        beats in a table mode (``table``). Returns the read data
        (state, bounds, slopes, rinv per lane), the state write ports, the pulse and program
        addresses and program bank."""
        g, cfg = self.geom, self.cfg
        L = cfg.lanes
        P, D, G = self.pulse.payload, self.drive.payload, self.prog.payload
        ib, rb, jb, tb = g.iq_bits, g.r_bits, g.jq_bits, g.tile_bits
        addr_p = Cat(P.chunk[:ib], P.jr[:rb], P.jq[:jb], P.tile[:tb])
        addr_g = Cat(G.iq[:ib], G.jr[:rb], G.jq[:jb], G.tile[:tb])
        bank_g = _mod_add(G.jr, G.ir, L) if L > 1 else Const(0, 1)
        st_rd, bd_rd, sl_rd, rv_rd, st_wr = [], [], [], [], []
        map_take = self.prog.valid & self.prog.ready & (G.cmd == ProgCmd.MAP)
        store_take = adv & (self.pulse.valid | (self.prog.valid & ~self.drive.valid))
        tag = data.StructLayout({"addr": len(addr_g), "bank": unsigned(max(1, len(bank_g)))})
        div = RangeDivider(cfg, tag)
        if self.store_domain != "sync":
            div = DomainRenamer(self.store_domain)(div)
        m.submodules.range_divider = div
        m.d.comb += [div.i.valid.eq(map_take), div.i.span.eq(G.map.wmax - G.map.wmin),
                     div.i.tag.addr.eq(addr_g), div.i.tag.bank.eq(bank_g)]
        for b in range(L):
            bounds_init, slopes_init, rinv_init = self._init(b)
            st = Memory(shape=signed(cfg.w_bits), depth=g.depth, init=[])
            bd = Memory(shape=g.bounds_layout, depth=g.depth, init=bounds_init)
            sl = Memory(shape=g.slopes_layout, depth=g.depth, init=slopes_init)
            m.submodules[f"state{b}"] = st
            m.submodules[f"bounds{b}"] = bd
            m.submodules[f"slopes{b}"] = sl
            jr_b = _mod_sub(b, D.line_r, L) if L > 1 else D.line_r
            fwd = Cat(D.chunk[:ib], D.line_r[:rb], D.line_q[:jb], D.tile[:tb])
            bwd = Cat(D.line_q[:ib], jr_b[:rb], D.chunk[:jb], D.tile[:tb])
            addr = Signal(len(addr_p), name=f"addr{b}")
            m.d.comb += addr.eq(Mux(self.pulse.valid, addr_p,
                                    Mux(self.drive.valid, Mux(D.transpose, bwd, fwd), addr_g)))
            store = self.store_domain
            rp_st, rp_bd, rp_sl = (st.read_port(), bd.read_port(domain=store),
                                   sl.read_port(domain=store))
            wp_bd, wp_sl = bd.write_port(domain=store), sl.write_port(domain=store)
            map_we = map_take & (bank_g == b)
            m.d.comb += [
                rp_st.addr.eq(addr), rp_bd.addr.eq(addr), rp_sl.addr.eq(addr),
                rp_st.en.eq(adv & take), rp_bd.en.eq(store_take), rp_sl.en.eq(store_take),
                wp_bd.addr.eq(addr), wp_sl.addr.eq(addr),
                wp_bd.data.wmax.eq(G.map.wmax), wp_bd.data.wmin.eq(G.map.wmin),
                wp_sl.data.su.eq(G.map.su), wp_sl.data.sd.eq(G.map.sd),
                wp_sl.data.ku.eq(G.map.ku), wp_sl.data.kd.eq(G.map.kd),
                wp_bd.en.eq(map_we), wp_sl.en.eq(map_we),
            ]
            st_rd.append(rp_st.data)
            bd_rd.append(rp_bd.data)
            sl_rd.append(rp_sl.data)
            st_wr.append(st.write_port())
            rv = Memory(shape=rinv_bits(cfg), depth=g.depth, init=rinv_init)
            m.submodules[f"rinv{b}"] = rv
            rp_rv, wp_rv = rv.read_port(domain=store), rv.write_port(domain=store)
            m.d.comb += [rp_rv.addr.eq(addr), rp_rv.en.eq(adv & self.pulse.valid & table),
                         wp_rv.addr.eq(div.o.tag.addr), wp_rv.data.eq(div.o.rinv),
                         wp_rv.en.eq(div.o.valid & (div.o.tag.bank == b))]
            rv_rd.append(rp_rv.data)
        m.d.comb += self.rinv_busy.eq(div.busy)
        return st_rd, bd_rd, sl_rd, rv_rd, st_wr, addr_p, addr_g, bank_g

    def _read_back(self, m: Module, when, bank, st_rd, bd_rd, sl_rd) -> None:
        """The program port's read-back: the state and map of lane ``bank`` when ``when``."""
        with m.If(self.prog_out.ready):
            m.d.sync += self.prog_out.valid.eq(0)
        with m.If(when):
            bsel = bank if self.cfg.lanes > 1 else 0
            m.d.sync += [
                self.prog_out.valid.eq(1),
                self.prog_out.payload.state.eq(Array(st_rd)[bsel]),
                self.prog_out.payload.map.wmax.eq(Array(b.wmax for b in bd_rd)[bsel]),
                self.prog_out.payload.map.wmin.eq(Array(b.wmin for b in bd_rd)[bsel]),
                self.prog_out.payload.map.su.eq(Array(s.su for s in sl_rd)[bsel]),
                self.prog_out.payload.map.sd.eq(Array(s.sd for s in sl_rd)[bsel]),
                self.prog_out.payload.map.ku.eq(Array(s.ku for s in sl_rd)[bsel]),
                self.prog_out.payload.map.kd.eq(Array(s.kd for s in sl_rd)[bsel]),
            ]

    def _accumulate(self, m: Module, when, last, column_sum) -> None:
        """Stage 4 of a drive: add ``column_sum`` to the accumulator when ``when``; after the
        ``last`` chunk of a line, offer the sum on ``readout`` and start the next from 0."""
        acc = Signal(self.readout.payload.shape(), reset_less=True)
        clear = Signal(init=1)
        acc_next = Mux(clear, 0, acc) + column_sum
        with m.If(self.readout.ready):
            m.d.sync += self.readout.valid.eq(0)
        with m.If(when):
            m.d.sync += [acc.eq(acc_next), clear.eq(last)]
            with m.If(last):
                m.d.sync += [self.readout.valid.eq(1), self.readout.payload.eq(acc_next)]

    def _step_bases(self, m: Module, reg, adv, en, centered, st_rd, bd_rd, sl_rd, rv_rd, up):
        """Every lane's tables and step-base pipeline (`ShapeLane`): b, SHAPE_LATENCY cycles
        after stage 2, of the pulse beat whose memory data is registered when ``en``."""
        base = []
        for b in range(self.cfg.lanes):
            lane = ShapeLane(self.cfg, b)
            lane.tables(m, self.shape_wr)
            sl, bd = sl_rd[b], bd_rd[b]
            base.append(lane.build(m, reg, adv, en, centered, st_rd[b], bd.wmin, bd.wmax,
                                   rv_rd[b], Mux(up[b], sl.su, sl.sd), up[b],
                                   self.step_factor))
        return base

    @staticmethod
    def _shape_delay(m: Module, reg, table, v2, shared, lanes):
        """Stage 2's registers (``shared`` ones and per-lane lists) delayed by SHAPE_LATENCY
        stages and selected in a table mode (the linear mode takes stage 2's own, so its cycles
        are unchanged). Returns the selected valid, whether a beat is in the delay stages, and
        the selected registers in the same shapes."""
        v, late = v2 & table, Const(0, 1)
        regs = [*shared, *(x for lane in lanes for x in lane)]
        held = list(regs)
        for k in range(SHAPE_LATENCY):
            regs = [reg(x, f"held{n}_d{k}", v) for n, x in enumerate(regs)]
            v = reg(v, f"v2_d{k}", valid=True)
            late = late | v
        sel = [Mux(table, d, x) for d, x in zip(regs, held, strict=True)]
        n, L = len(shared), len(lanes[0])
        return (Mux(table, v, v2), late, sel[:n],
                [sel[n + k * L:n + (k + 1) * L] for k in range(len(lanes))])

    def _intake(self, m):
        """The three input ports in priority order (pulse, drive, program): ``adv`` (the pipeline
        moves: no result waits on a stalled output), ``take`` (a beat enters) and its kind."""
        adv = Signal()
        m.d.comb += [
            adv.eq(~(self.readout.valid & ~self.readout.ready)
                   & ~(self.prog_out.valid & ~self.prog_out.ready)),
            self.pulse.ready.eq(adv),
            self.drive.ready.eq(adv & ~self.pulse.valid),
            self.prog.ready.eq(adv & ~self.pulse.valid & ~self.drive.valid),
        ]
        take = self.pulse.valid | self.drive.valid | self.prog.valid
        kind0 = Mux(self.pulse.valid, KIND_PULSE, Mux(self.drive.valid, KIND_DRIVE, KIND_PROG))
        return adv, take, kind0

    def elaborate(self, platform):
        m = Module()
        g, cfg = self.geom, self.cfg
        L = cfg.lanes
        P, D, G = self.pulse.payload, self.drive.payload, self.prog.payload

        adv, take, kind0 = self._intake(m)

        # ----- stage 0: addresses, memory reads, parameter writes -----
        table = self.shape_mode != 0  # a table mode: the step base from the tables (§5.4.1)
        st_rd, bd_rd, sl_rd, rv_rd, st_wr, addr_p, addr_g, bank_g = \
            self._memories(m, adv, take, table)
        centered = self.shape_mode == 2
        codes_b = rotate([D.codes[l] for l in range(L)], D.line_r, L)
        n_b = rotate([P.n[l] for l in range(L)], P.jr, L)
        up_b = rotate([P.up[l] for l in range(L)], P.jr, L)
        t_b = rotate([P.t[l] for l in range(L)], P.jr, L)

        def reg(expr, name, en=None, valid=False, domain="sync"):
            """A pipeline register; datapath registers load only when ``en`` (their beat's kind
            is in flight), so idle lanes cost a simulator nothing and hold their last value."""
            r = Signal(expr.shape(), name=name, reset_less=not valid)
            with m.If(adv if en is None else adv & en):
                m.d[domain] += r.eq(expr)
            return r

        def shape_reg(expr, name, en=None, valid=False):
            """A register of the table modes (`shape_domain`)."""
            return reg(expr, name, en, valid, domain=self.shape_domain)

        def store_reg(expr, name, en):
            """A datapath register of pulse and program beats only (`store_domain`)."""
            return reg(expr, name, en, domain=self.store_domain)

        # ----- stage 1: beat registered, memory data arrives -----
        drive0 = self.drive.valid & ~self.pulse.valid
        prog0 = ~self.pulse.valid & ~self.drive.valid
        v1 = reg(take, "v1", valid=True)
        k1 = reg(kind0, "k1", take)
        last1 = reg(D.last, "last1", take)
        wa1 = reg(Mux(self.pulse.valid, addr_p, addr_g), "wa1", take)
        code1 = [reg(codes_b[b], f"code1_{b}", drive0) for b in range(L)]
        n1 = [store_reg(n_b[b], f"n1_{b}", self.pulse.valid) for b in range(L)]
        up1 = [store_reg(up_b[b], f"up1_{b}", self.pulse.valid) for b in range(L)]
        t1 = [store_reg(t_b[b], f"t1_{b}", self.pulse.valid) for b in range(L)]
        cmd1 = store_reg(G.cmd, "cmd1", prog0)
        bank1 = store_reg(bank_g, "bank1", prog0)
        val1 = store_reg(G.state, "val1", prog0)
        map1 = store_reg(G.map, "map1", prog0)

        # ----- stage 1b: memory data registered (the block RAMs' clock-to-out is most of a
        # cycle on an FPGA, so nothing else happens in the cycle they answer) -----
        v1_mem = v1  # a beat whose memory data is arriving
        drive_m, pulse_m = v1_mem & (k1 == KIND_DRIVE), v1_mem & (k1 == KIND_PULSE)
        prog_m, store_m = v1_mem & (k1 == KIND_PROG), v1_mem & (k1 != KIND_DRIVE)
        st_rd = [reg(w, f"w1b_{b}", v1_mem) for b, w in enumerate(st_rd)]
        bd_rd = [store_reg(d, f"bd1b_{b}", store_m) for b, d in enumerate(bd_rd)]
        sl_rd = [store_reg(d, f"sl1b_{b}", store_m) for b, d in enumerate(sl_rd)]
        rv_rd = [store_reg(d, f"rv1b_{b}", pulse_m & table) for b, d in enumerate(rv_rd)]
        code1 = [reg(c, f"code1b_{b}", drive_m) for b, c in enumerate(code1)]
        n1 = [store_reg(x, f"n1b_{b}", pulse_m) for b, x in enumerate(n1)]
        up1 = [store_reg(x, f"up1b_{b}", pulse_m) for b, x in enumerate(up1)]
        t1 = [store_reg(x, f"t1b_{b}", pulse_m) for b, x in enumerate(t1)]
        cmd1, bank1 = store_reg(cmd1, "cmd1b", prog_m), store_reg(bank1, "bank1b", prog_m)
        val1, map1 = store_reg(val1, "val1b", prog_m), store_reg(map1, "map1b", prog_m)
        k1, last1 = reg(k1, "k1b", v1_mem), reg(last1, "last1b", v1_mem)
        wa1 = reg(wa1, "wa1b", v1_mem)
        v1 = reg(v1, "v1b", valid=True)

        # ----- stage 2: products; program-port operands -----
        prog1 = k1 == KIND_PROG
        is_map = cmd1 == ProgCmd.MAP
        drive1, pulse1 = v1 & (k1 == KIND_DRIVE), v1 & (k1 == KIND_PULSE)
        store1 = v1 & (k1 != KIND_DRIVE)
        v2 = reg(v1, "v2", valid=True)
        k2 = reg(k1, "k2", v1)
        last2 = reg(last1, "last2", v1)
        wa2 = reg(wa1, "wa2", v1)
        prod2, kw2, s2, n2, up2, t2, x2, lo2, hi2, we2 = ([] for _ in range(10))
        for b in range(L):
            w, bd, sl = st_rd[b], bd_rd[b], sl_rd[b]
            up = up1[b]
            prod2.append(reg(mul_lut(w, code1[b]), f"prod2_{b}", drive1))
            kw2.append(store_reg(Mux(up, sl.ku, sl.kd) * w, f"kw2_{b}", pulse1))
            s2.append(store_reg(Mux(up, sl.su, sl.sd), f"s2_{b}", pulse1))
            n2.append(store_reg(n1[b], f"n2_{b}", pulse1))
            up2.append(store_reg(up, f"up2_{b}", pulse1))
            t2.append(store_reg(t1[b], f"t2_{b}", pulse1))
            x2.append(store_reg(Mux(prog1 & ~is_map, val1, w), f"x2_{b}", store1))
            lo2.append(store_reg(Mux(prog1 & is_map, map1.wmin, bd.wmin), f"lo2_{b}", store1))
            hi2.append(store_reg(Mux(prog1 & is_map, map1.wmax, bd.wmax), f"hi2_{b}", store1))
            we2.append(store_reg(Mux(prog1, (cmd1 != ProgCmd.READ) & (bank1 == b), n1[b] != 0),
                           f"we2_{b}", store1))
        self._read_back(m, adv & v1 & prog1 & (cmd1 == ProgCmd.READ), bank1, st_rd, bd_rd,
                        sl_rd)
        base6 = self._step_bases(m, shape_reg, adv, pulse1 & table, centered, st_rd, bd_rd, sl_rd,
                                 rv_rd, up1)
        v2_own = v2  # in a table mode every beat waits SHAPE_LATENCY cycles for its step base
        v2, late, (k2, last2, wa2), (prod2, kw2, s2, n2, up2, t2, x2, lo2, hi2, we2) = \
            self._shape_delay(m, shape_reg, table, v2, (k2, last2, wa2),
                              (prod2, kw2, s2, n2, up2, t2, x2, lo2, hi2, we2))

        # ----- stage 3: column sum; step -----
        drive2, pulse2 = v2 & (k2 == KIND_DRIVE), v2 & (k2 == KIND_PULSE)
        store2 = v2 & (k2 != KIND_DRIVE)
        v3 = reg(v2, "v3", valid=True)
        k3 = reg(k2, "k3", v2)
        last3 = reg(last2, "last3", v2)
        wa3 = reg(wa2, "wa3", v2)
        sum3 = reg(sum_tree(prod2), "sum3", drive2)
        step3, n3, up3, t3 = [], [], [], []
        x3, lo3, hi3, we3 = [], [], [], []
        for b in range(L):
            st = Mux(table, base6[b], s2[b]) + rnd_shift(kw2[b], SLOPE_FRAC)
            step3.append(store_reg(Mux(st < 0, 0, st)[: g.step_width], f"step3_{b}", pulse2))
            n3.append(store_reg(n2[b], f"n3_{b}", pulse2))
            up3.append(store_reg(up2[b], f"up3_{b}", pulse2))
            t3.append(store_reg(t2[b], f"t3_{b}", pulse2))
            x3.append(store_reg(x2[b], f"x3_{b}", store2))
            lo3.append(store_reg(lo2[b], f"lo3_{b}", store2))
            hi3.append(store_reg(hi2[b], f"hi3_{b}", store2))
            we3.append(store_reg(we2[b], f"we3_{b}", store2))

        # ----- stage 4: accumulate and read out; pulse products -----
        self._accumulate(m, adv & v3 & (k3 == KIND_DRIVE), last3, sum3)
        pulse3, store3 = v3 & (k3 == KIND_PULSE), v3 & (k3 != KIND_DRIVE)
        v4 = reg(v3, "v4", valid=True)
        k4 = reg(k3, "k4", v3)
        wa4 = reg(wa3, "wa4", v3)
        a4, bt4, up4, x4, lo4, hi4, we4 = ([] for _ in range(7))
        for b in range(L):
            a4.append(store_reg(mul_lut(step3[b], n3[b]), f"a4_{b}", pulse3))
            bt4.append(store_reg(step3[b] * t3[b], f"bt4_{b}", pulse3))
            up4.append(store_reg(up3[b], f"up4_{b}", pulse3))
            x4.append(store_reg(x3[b], f"x4_{b}", store3))
            lo4.append(store_reg(lo3[b], f"lo4_{b}", store3))
            hi4.append(store_reg(hi3[b], f"hi4_{b}", store3))
            we4.append(store_reg(we3[b], f"we4_{b}", store3))

        # ----- stage 5: new state; write-back -----
        store4 = v4 & (k4 != KIND_DRIVE)
        v5 = reg(v4, "v5", valid=True)
        k5 = reg(k4, "k5", v4)
        wa5 = reg(wa4, "wa5", v4)
        for b in range(L):
            total = a4[b] + rnd_shift(bt4[b], C2C_FRAC)
            moved = Mux(up4[b], x4[b] + total, x4[b] - total)
            x5 = store_reg(Mux(k4 == KIND_PULSE, moved, x4[b]), f"x5_{b}", store4)
            lo5 = store_reg(lo4[b], f"lo5_{b}", store4)
            hi5 = store_reg(hi4[b], f"hi5_{b}", store4)
            we5 = store_reg(we4[b], f"we5_{b}", store4)
            wp = st_wr[b]
            m.d.comb += [
                wp.addr.eq(wa5),
                wp.data.eq(clip(x5, lo5, hi5)),
                wp.en.eq(adv & v5 & (k5 != KIND_DRIVE) & we5),
            ]
        m.d.comb += self.idle.eq(~(v1_mem | v1 | v2_own | late | v3 | v4 | v5 | self.readout.valid
                                   | self.prog_out.valid | (table & self.rinv_busy)))
        return m

