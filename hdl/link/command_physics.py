"""Time and temperature in the command processor (docs/numerics.md §11): SET_PHYSICS,
GET_PHYSICS and ADVANCE, and the settings the tile sees at the set temperature.

`PhysicsWalker` keeps the five settings, the device key, the chip time and every tile's drift
age. ADVANCE computes the age step rnd(dt ACCEL[T], 16) and D = dt LOG2E (one `SerialMul`),
refuses a step that would carry the time or an age past 2^64 - 1 (nothing changes), then for
each tile the log2 age ratio dL (two `Log2`) and, where drift or decay acts, the tile's ADVANCE
operation with its words (`advance_words`); the ages and the time move last. Between commands
it scales the tile's settings: gain_T, sigma_T, CS[T] for the nodes, and the linear mode as the
table mode `bottom` at T != T0 (§11.4).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import physics
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    ACCEL_FRAC,
    DRIFT_T0_MS,
    RATE_BITS,
    SHAPE_MODES,
    T_MAX,
    T_MIN,
    T_REF,
    TEMP_FRAC,
    TIME_BITS,
    ChipConfig,
    Settings,
)
from ohmflow.hdl.link.command_layouts import payload_layout
from ohmflow.hdl.link.command_walk import CommandWalker
from ohmflow.hdl.tile.physics_math import (
    CS_BITS,
    Log2,
    SerialMul,
    scale12,
    temperature_factor,
    temperature_width,
)
from ohmflow.hdl.tile.tile_drift import ADVANCE_WORDS, D_BITS
from ohmflow.hdl.tile.tile_io import Op, cmd_layout, settings_layout

__all__ = ["PhysicsWalker"]

_MUL_A = max(temperature_width("ACCEL"), physics.LOG2E.bit_length())


class PhysicsWalker(CommandWalker):
    """SET_PHYSICS, GET_PHYSICS, ADVANCE; the time and temperature state; the tile's settings.

    Extra ports
    -----------
    refused, length: with ``done``: ADVANCE refused (BAD_ARGUMENT), the reply's length.
    tile: the tile of the ADVANCE operation offered on ``tile_op``.
    reset: RESET has run (defaults, time and ages 0; the key stays).
    programmed, programmed_tile: PROGRAM of that tile has run (its age restarts).
    settings, shape_mode: the stored settings and mode; tile_settings, tile_shape_mode,
        step_factor: what the tile sees at the set temperature (a cycle or two later).
    """

    def __init__(self, cfg: ChipConfig):
        tile = cmd_layout(cfg)["tile"].shape
        layout = settings_layout(cfg)
        modes = range(len(SHAPE_MODES))
        super().__init__(cfg, ("go", "done", "op", "request", "tile_op", "tile_busy", "write",
                               "data_in"), {
            "refused": Out(1), "length": Out(range(P.constants()["MAX_PAYLOAD"] + 1)),
            "tile": Out(tile), "reset": In(1), "programmed": In(1), "programmed_tile": In(tile),
            "settings": In(layout), "shape_mode": In(modes), "tile_settings": Out(layout),
            "tile_shape_mode": Out(modes), "step_factor": Out(CS_BITS, init=1 << TEMP_FRAC),
        })
        #: the chip time and the tiles' drift ages (simulation tests set them near 2^64)
        self.time_reg = Signal(TIME_BITS, name="time")
        self.age_regs = [Signal(TIME_BITS, name=f"age{t}") for t in range(cfg.tiles)]

    def elaborate(self, platform):
        m = Module()
        self.moves(m)
        cfg, f, op = self.cfg, self.request, self.op
        d = Settings.default(cfg)
        regs = {"drift_nu": Signal(16, init=d.drift_nu), "drift_nu_dtod": Signal(16,
                init=d.drift_nu_dtod), "decay_rate": Signal(RATE_BITS, init=d.decay_rate),
                "decay_dtod": Signal(16, init=d.decay_dtod),
                "temperature": Signal(range(T_MAX + 1), init=d.temperature)}
        key = Signal(32)
        time, ages = self.time_reg, Array(self.age_regs)
        self._temperature(m, regs["temperature"])
        with m.If(self.reset):
            m.d.sync += [r.eq(r.init) for r in regs.values()]
            m.d.sync += [time.eq(0), *(a.eq(0) for a in ages)]
        with m.If(self.programmed):
            m.d.sync += ages[self.programmed_tile].eq(0)

        m.submodules.mul = mul = SerialMul(_MUL_A, 32)
        m.submodules.log2 = log2 = Log2()
        dt = f["dt"]
        step = Signal(TIME_BITS + 1)  # rnd(dt ACCEL[T], 16) < 2^(32 + 35 - 16)
        big_d = Signal(D_BITS)
        t = Signal(range(cfg.tiles + 1))
        l_old = Signal.like(log2.l)
        dl = Signal.like(log2.l)
        word = Signal(range(P.constants()["MAX_PAYLOAD"] + 1))  # a word, or GET's field
        started = Signal()
        m.d.comb += self.tile.eq(t)
        age_t = ages[t]
        new_age = age_t + step
        words = Array([dl, key, Cat(regs["drift_nu"], regs["drift_nu_dtod"]),
                       regs["decay_dtod"], regs["decay_rate"][:32], regs["decay_rate"][32:],
                       big_d[:32], big_d[32:]])
        drift = (dl != 0) & ((regs["drift_nu"] | regs["drift_nu_dtod"]) != 0)
        decay = (dt != 0) & (regs["decay_rate"] != 0)
        with m.FSM(name="physics_fsm"):
            with m.State("IDLE"):
                with m.If(self.go & op.SET_PHYSICS):  # the decoder checked the ranges
                    m.d.sync += [r.eq(f[n]) for n, r in regs.items()]
                    m.d.sync += key.eq(f["device_key"])
                    m.next = "SET"
                with m.If(self.go & op.GET_PHYSICS):
                    m.d.sync += word.eq(0)
                    m.next = "GET"
                with m.If(self.go & op.ADVANCE):
                    m.d.comb += [mul.start.eq(1), mul.b.eq(dt),
                                 mul.a.eq(temperature_factor("ACCEL", regs["temperature"]))]
                    m.next = "STEP"
            with m.State("SET"):
                m.d.comb += [self.done.eq(1), self.length.eq(1)]
                m.next = "IDLE"
            with m.State("GET"):
                self._get(m, regs, key, time, ages, word)
            with m.State("STEP"):  # the age step, then D
                with m.If(~mul.busy):
                    m.d.sync += step.eq(physics.rnd(mul.p.as_unsigned(), ACCEL_FRAC))
                    m.d.comb += [mul.start.eq(1), mul.b.eq(dt), mul.a.eq(physics.LOG2E)]
                    m.next = "D"
            with m.State("D"):
                with m.If(~mul.busy):
                    m.d.sync += [big_d.eq(mul.p), t.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):  # refused if the time or any age would pass 2^64 - 1
                with m.If((time + dt)[TIME_BITS] | new_age[TIME_BITS]):
                    m.d.comb += [self.done.eq(1), self.refused.eq(1), self.length.eq(1)]
                    m.next = "IDLE"
                with m.Elif(t == cfg.tiles - 1):
                    m.d.sync += t.eq(0)
                    m.next = "LOG_OLD"
                with m.Else():
                    m.d.sync += t.eq(t + 1)
            with m.State("LOG_OLD"):  # dL = LOG2(max(t0, a')) - LOG2(max(t0, a))
                m.d.comb += [log2.start.eq(1), log2.a.eq(Mux(age_t > DRIFT_T0_MS, age_t,
                                                             DRIFT_T0_MS))]
                m.next = "LOG_OLD_WAIT"
            with m.State("LOG_OLD_WAIT"):
                with m.If(~log2.busy):
                    m.d.sync += l_old.eq(log2.l)
                    m.d.comb += [log2.start.eq(1), log2.a.eq(Mux(new_age > DRIFT_T0_MS,
                                                                 new_age, DRIFT_T0_MS))]
                    m.next = "LOG_NEW_WAIT"
            with m.State("LOG_NEW_WAIT"):
                with m.If(~log2.busy):
                    m.d.sync += [dl.eq(log2.l - l_old), word.eq(0), started.eq(0)]
                    m.next = "TILE"
            with m.State("TILE"):  # the tile's operation where drift or decay acts on it
                with m.If(drift | decay):
                    self.run_tile(m, Op.ADVANCE, "WORDS")
                with m.Else():
                    m.next = "AGE"
            with m.State("WORDS"):
                m.d.comb += [self.data_in.valid.eq(1), self.data_in.payload.eq(words[word])]
                with m.If(self.data_in.ready):
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == len(ADVANCE_WORDS) - 1):
                        m.next = "TILE_WAIT"
            with m.State("TILE_WAIT"):
                with m.If(~self.tile_busy):
                    m.next = "AGE"
            with m.State("AGE"):
                m.d.sync += [age_t.eq(new_age), t.eq(t + 1)]
                with m.If(t == cfg.tiles - 1):
                    m.d.sync += [time.eq(time + dt), word.eq(0)]
                    m.next = "TIME"
                with m.Else():
                    m.next = "LOG_OLD"
            with m.State("TIME"):  # the reply: the new chip time
                (o, sz), = payload_layout(P.command("ADVANCE").reply, cfg, start=1)[0].values()
                with m.If(self.write_bytes(m, o + 4 * word, time.word_select(word[:1], 32), 4)):
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == sz // 4 - 1):
                        m.d.comb += [self.done.eq(1), self.length.eq(o + sz)]
                        m.next = "IDLE"
        return m

    def _get(self, m, regs, key, time, ages, field):
        """GET_PHYSICS: the settings, the key, the time, the tile count and the ages, one
        field (or 32-bit half of one) a step."""
        cfg = self.cfg
        scalars, arrays, off = payload_layout(P.command("GET_PHYSICS").reply, cfg, start=1)
        values = {**regs, "device_key": key, "time": time, "tiles": Const(cfg.tiles, 16)}
        items = []
        for n, (o, sz) in scalars.items():
            items += [(o + k, Value.cast(values[n])[8 * k:8 * k + 32], min(4, sz - k))
                      for k in range(0, sz, 4)]
        (_fld, size, _sg), = arrays
        for a in ages:
            items += [(off, a[:32], 4), (off + 4, a[32:], 4)]
            off += size
        with m.Switch(field):
            for n, (o, val, sz) in enumerate(items):
                with m.Case(n), m.If(self.write_bytes(m, o, val, sz)):
                    m.d.sync += field.eq(field + 1)
                    if n == len(items) - 1:
                        m.d.comb += [self.done.eq(1), self.length.eq(off)]
                        m.next = "IDLE"

    def _temperature(self, m, temperature):
        """The tile's settings at the temperature, registered: gain_T = rnd(gain CG[T], 12),
        sigma_T = rnd(sigma CN[T], 12), CS[T]; linear mode as `bottom` at T != T0 (§11.4)."""
        s, out = self.settings, self.tile_settings
        cg, cn = (Signal(temperature_width(n), name=n.lower()) for n in ("CG", "CN"))
        m.d.sync += [cg.eq(temperature_factor("CG", temperature)),
                     cn.eq(temperature_factor("CN", temperature)),
                     self.step_factor.eq(temperature_factor("CS", temperature))]
        scaled = {"fwd_gain": cg, "bwd_gain": cg, "fwd_sigma": cn, "bwd_sigma": cn}
        m.d.comb += out.eq(s)
        for name, factor in scaled.items():
            r = Signal.like(getattr(out, name), name=f"{name}_t")
            m.d.sync += r.eq(scale12(getattr(s, name), factor))
            m.d.comb += getattr(out, name).eq(r)
        linear, bottom = SHAPE_MODES.index("linear"), SHAPE_MODES.index("bottom")
        at_t0 = Signal(init=1)
        m.d.sync += at_t0.eq(temperature == T_REF)
        m.d.comb += self.tile_shape_mode.eq(Mux((self.shape_mode == linear) & ~at_t0, bottom,
                                                self.shape_mode))
        assert T_MIN <= T_REF <= T_MAX
