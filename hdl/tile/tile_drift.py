"""The tile's ADVANCE walk (docs/numerics.md §11.2-§11.3): every device of one tile drifts and
decays by its factor f = EXP2N(X), w' = rnd(w f, 16).

One device at a time, through the array's program port (a READ, then a STATE write of w', which
is within the device's bounds since 0 <= f <= 1.0): its drift exponent and decay rate from the
hash keyed by the device key (two lanes of `Lowbias32`), X from two shift-add products
(`SerialMul`: nu_d dL and rt_d D; rate e as well), then EXP2N. Every device takes the same
number of cycles, `DEVICE_CYCLES` (docs/gateware.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import physics
from ohmflow.emulator.config import (
    FACTOR_FRAC,
    NU_BITS,
    NU_FRAC,
    RATE_BITS,
    RATE_FRAC,
    ChipConfig,
)
from ohmflow.hdl.tile.layouts import Geometry, ProgCmd
from ohmflow.hdl.tile.physics_math import EXP2N_LATENCY, L_BITS, X_BITS, Exp2n, SerialMul
from ohmflow.hdl.tile.prng import Lowbias32, gauss
from ohmflow.hdl.tile.tile_io import WORD
from ohmflow.hdl.tile.walk import Walk

__all__ = ["ADVANCE_WORDS", "D_BITS", "DriftWalker", "advance_words", "drift_prog_layout"]

#: D = dt * LOG2E < 2**D_BITS for dt < 2**32
D_BITS = ((2**32 - 1) * physics.LOG2E).bit_length()
#: e = rnd(g decay_dtod, 8) and rnd(g drift_nu_dtod, 8): signed, |g| <= 510
_E_BITS = ((510 * (2**NU_BITS - 1) + 128) >> 8).bit_length() + 1
#: nu_d = max(0, drift_nu + e) < 2**NU_D_BITS
_NU_D_BITS = (2**NU_BITS - 1 + ((510 * (2**NU_BITS - 1) + 128) >> 8)).bit_length()
#: rt_d = max(0, rate + ((rate e) >> 16)) < 2**RT_BITS
_RT_BITS = (2**RATE_BITS - 1 + (((2**RATE_BITS - 1) * 2**(_E_BITS - 1)) >> 16)).bit_length()
#: the operand words of the ADVANCE operation of a tile, in order (docs/gateware.md)
ADVANCE_WORDS = ("dl", "device_key", "drift_nu", "decay_dtod", "rate_lo", "rate_hi", "d_lo",
                 "d_hi")


def advance_words(dl: int, device_key: int, drift_nu: int, drift_nu_dtod: int, decay_rate: int,
                  decay_dtod: int, dt: int) -> list[int]:
    """The ADVANCE operation's words for a tile whose log2 age ratio is ``dl`` (§11.3)."""
    d = dt * physics.LOG2E
    return [dl, device_key, drift_nu | drift_nu_dtod << 16, decay_dtod,
            decay_rate & 0xFFFFFFFF, decay_rate >> 32, d & 0xFFFFFFFF, d >> 32]


def drift_prog_layout(g: Geometry) -> data.StructLayout:
    """The program-port beats of ADVANCE: READ and STATE, without the map's fields."""
    return data.StructLayout({k: v for k, v in g.prog_layout.members.items()
                              if k != "map"})


class DriftWalker(wiring.Component):
    """ADVANCE of one tile: the operand words, the tile's keys, then every device (j outer).

    Ports
    -----
    tile: the tile. begin: the operation is accepted (the walk restarts); active: it runs.
    done: the last device's write is accepted (one cycle).
    data_in: the `ADVANCE_WORDS`. prog, prog_out: the array's program port.
    """

    #: cycles of one device: its READ, the draws and the state (both LATENCY cycles later), the
    #: spreads, the products' start, nu_d dL and rate e (at once), rt_d D, EXP2N, the write
    DEVICE_CYCLES = (1 + Lowbias32.LATENCY + 1 + 1 + max(_NU_D_BITS, _E_BITS) + 1 + D_BITS + 1
                     + EXP2N_LATENCY + 1)
    #: cycles of the rest: the operand words, the keys' three hash rounds, the last write landing
    OVERHEAD_CYCLES = len(ADVANCE_WORDS) + 3 * (1 + Lowbias32.LATENCY) + 7

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.geom = g = Geometry(cfg)
        super().__init__({
            "tile": In(g.index_shape(g.tile_bits)),
            "begin": In(1),
            "active": In(1),
            "done": Out(1),
            "data_in": In(stream.Signature(WORD)),
            "prog": Out(stream.Signature(drift_prog_layout(g))),
            "prog_out": In(stream.Signature(g.prog_out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        walk = Walk(cfg, "drift")
        m.submodules.hash = h = Lowbias32(lanes=2)
        m.submodules.exp2n = ex = Exp2n()
        m.submodules.mul_nu = mul_nu = SerialMul(unsigned(L_BITS), _NU_D_BITS)
        m.submodules.mul_re = mul_re = SerialMul(unsigned(RATE_BITS), _E_BITS, b_signed=True)
        m.submodules.mul_rd = mul_rd = SerialMul(unsigned(_RT_BITS), D_BITS)

        words = [Signal(WORD, name=f"word_{n}", reset_less=True) for n in ADVANCE_WORDS]
        op = dict(zip(ADVANCE_WORDS, words, strict=True))
        nword = Signal(range(len(ADVANCE_WORDS) + 1))
        dl = op["dl"][:L_BITS]
        drift_nu, nu_dtod = op["drift_nu"][:16], op["drift_nu"][16:32]
        decay_dtod = op["decay_dtod"][:NU_BITS]
        rate = Cat(op["rate_lo"], op["rate_hi"])[:RATE_BITS]
        big_d = Cat(op["d_lo"], op["d_hi"])[:D_BITS]

        keys = [Signal(32, name=f"key_{n}", reset_less=True) for n in ("drift", "decay")]
        round_ = Signal(range(4))  # hash rounds of the keys: key, ^ domain, ^ tile
        k = Signal(range(cfg.rows * cfg.cols + 1))  # the device's index j * rows + i
        w = Signal(signed(cfg.w_bits), reset_less=True)
        gn = Signal(signed(11), reset_less=True)
        gl = Signal(signed(11), reset_less=True)
        nu_raw = Signal(signed(_NU_D_BITS + 1), reset_less=True)
        e = Signal(signed(_E_BITS), reset_less=True)
        x1 = Signal(unsigned(L_BITS + _NU_D_BITS), reset_less=True)
        xs = Signal(X_BITS, reset_less=True)  # X, saturated
        m.d.comb += ex.x.eq(xs)
        wait = Signal(range(EXP2N_LATENCY + 1))
        got_g, got_w = Signal(), Signal()  # DRAWS: the draws, the state have arrived
        prog, po = self.prog.payload, self.prog_out.payload
        m.d.comb += [prog.tile.eq(self.tile), prog.jq.eq(walk.jq), prog.jr.eq(walk.jr),
                     prog.iq.eq(walk.iq), prog.ir.eq(walk.ir), self.prog_out.ready.eq(1),
                     h.o.ready.eq(1)]
        with m.If(self.begin):
            m.d.sync += [nword.eq(0), round_.eq(0), k.eq(0), *walk.clear()]

        def rnd(x, s):
            return (x + (1 << (s - 1))) >> s

        with m.FSM(name="drift_fsm"):
            with m.State("WORDS"):
                m.d.comb += self.data_in.ready.eq(self.active)
                with m.If(self.active & self.data_in.valid):
                    with m.Switch(nword):
                        for n, r in enumerate(words):
                            with m.Case(n):
                                m.d.sync += r.eq(self.data_in.payload)
                    m.d.sync += nword.eq(nword + 1)
                    with m.If(nword == len(words) - 1):
                        m.next = "KEYS"
            with m.State("KEYS"):  # key(device key, 6 / 7, tile) of §6.2, one hash a round
                src = [Mux(round_ == 0, op["device_key"], keys[0]),
                       Mux(round_ == 0, op["device_key"], keys[1])]
                mix = [Mux(round_ == 1, physics.DOMAIN_DRIFT, Mux(round_ == 2, self.tile, 0)),
                       Mux(round_ == 1, physics.DOMAIN_DECAY, Mux(round_ == 2, self.tile, 0))]
                m.d.comb += [h.i.valid.eq(1), h.i.payload.word[0].eq(src[0] ^ mix[0]),
                             h.i.payload.word[1].eq(src[1] ^ mix[1])]
                m.next = "KEYS_WAIT"
            with m.State("KEYS_WAIT"):
                with m.If(h.o.valid):
                    m.d.sync += [keys[0].eq(h.o.payload.word[0]),
                                 keys[1].eq(h.o.payload.word[1]), round_.eq(round_ + 1)]
                    m.next = "KEYS"
                    with m.If(round_ == 2):
                        m.next = "READ"
            with m.State("READ"):  # the state read and the device's two draws
                m.d.comb += [self.prog.valid.eq(1), prog.cmd.eq(ProgCmd.READ),
                             h.i.valid.eq(self.prog.ready), h.i.payload.word[0].eq(keys[0] ^ k),
                             h.i.payload.word[1].eq(keys[1] ^ k)]
                with m.If(self.prog.ready):
                    m.d.sync += [got_g.eq(0), got_w.eq(0)]
                    m.next = "DRAWS"
            with m.State("DRAWS"):  # the draws and the state, in either order
                with m.If(h.o.valid):
                    m.d.sync += [gn.eq(gauss(h.o.payload.word[0])),
                                 gl.eq(gauss(h.o.payload.word[1])), got_g.eq(1)]
                with m.If(self.prog_out.valid):
                    m.d.sync += [w.eq(po.state), got_w.eq(1)]
                with m.If((got_g | h.o.valid) & (got_w | self.prog_out.valid)):
                    m.next = "SPREADS"
            with m.State("SPREADS"):  # §11.2: nu_d before its clip, e of the rate
                m.d.sync += [nu_raw.eq(drift_nu + rnd(gn * nu_dtod, 8)),
                             e.eq(rnd(gl * decay_dtod, 8))]
                m.next = "PRODUCTS"
            with m.State("PRODUCTS"):  # nu_d dL and rate e, at once
                m.d.comb += [mul_nu.start.eq(1), mul_nu.a.eq(dl),
                             mul_nu.b.eq(Mux(nu_raw < 0, 0, nu_raw)),
                             mul_re.start.eq(1), mul_re.a.eq(rate), mul_re.b.eq(e)]
                m.next = "PRODUCTS_WAIT"
            with m.State("PRODUCTS_WAIT"):
                with m.If(~mul_nu.busy & ~mul_re.busy):
                    rt = rate + (mul_re.p >> 16)
                    m.d.comb += [mul_rd.start.eq(1), mul_rd.a.eq(Mux(rt < 0, 0, rt)),
                                 mul_rd.b.eq(big_d)]
                    m.d.sync += x1.eq(rnd(mul_nu.p.as_unsigned(), NU_FRAC))
                    m.next = "DECAY_WAIT"
            with m.State("DECAY_WAIT"):  # X = x1 + min(rnd(rt_d D, 48), X_ZERO), then EXP2N
                x2 = rnd(mul_rd.p.as_unsigned(), RATE_FRAC)
                x = x1 + Mux(x2 > physics.X_ZERO, physics.X_ZERO, x2)
                with m.If(~mul_rd.busy):
                    m.d.sync += [xs.eq(Mux(x > physics.X_ZERO, physics.X_ZERO, x)), wait.eq(0)]
                    m.next = "EXP2N"
            with m.State("EXP2N"):  # the exponent's register, then the unit's two stages
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait == EXP2N_LATENCY - 1):
                    m.next = "WRITE"
            with m.State("WRITE"):  # w' = rnd(w f, 16), within the bounds: no clip acts
                m.d.comb += [self.prog.valid.eq(1), prog.cmd.eq(ProgCmd.STATE),
                             prog.state.eq(rnd(w * ex.f, FACTOR_FRAC))]
                with m.If(self.prog.ready):
                    m.d.sync += [walk.step(cfg.rows - 1), k.eq(k + 1)]
                    with m.If(walk.at(cfg.cols - 1, cfg.rows - 1)):
                        m.d.comb += self.done.eq(1)
                        m.next = "WORDS"
                    with m.Else():
                        m.next = "READ"
        return m
