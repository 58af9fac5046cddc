"""Drive a TileController and a Twin with the same operations; collect both results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ohmflow.emulator import physics
from ohmflow.emulator.config import COUNTERS, T_MIN, T_REF, ChipConfig, Settings
from ohmflow.emulator.fabrication import FIELDS, DeviceMap
from ohmflow.emulator.step_shape import StepShape
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.tile.tile_controller import TileController
from ohmflow.hdl.tile.tile_drift import advance_words
from ohmflow.hdl.tile.tile_io import COUNTER_NAMES, Op, decode_result, settings_value

from .hdlbench import recv, run, send, signed32


@dataclass
class Step:
    """One operation: its command, operand words and the twin's expected result words."""

    op: Op
    tile: int = 0
    axis: int = 0
    index: int = 0
    count: int = 0
    words: list = field(default_factory=list)
    settings: Settings | None = None
    expected: list = field(default_factory=list)  # result words, or (code, sat-sum) checks
    kind: str = "words"
    meta: dict = field(default_factory=dict)


class Script:
    """Builds steps while running the twin, so every step carries its expected results."""

    def __init__(self, cfg: ChipConfig, twin: Twin):
        self.cfg, self.twin, self.steps = cfg, twin, []

    def _add(self, op, **kw):
        s = Step(op=op, settings=self.twin.settings, **kw)
        self.steps.append(s)
        return s

    def set(self, **kw):
        self.twin.set(**kw)

    def seed(self, seed: int):
        self.twin.set(seed=seed)
        self._add(Op.SEED, words=[seed])

    def program(self, t, w):
        self.twin.program(t, w)
        self._add(Op.PROGRAM, tile=t, words=[int(v) for v in np.asarray(w).ravel()])

    def read(self, t):
        self._add(Op.READ, tile=t, expected=[int(v) for v in self.twin.read(t).ravel()])

    def load_map(self, t, dm: DeviceMap):
        self.twin.load_device_map(dm, t)
        words = np.stack([getattr(dm, f)[0] for f in FIELDS], axis=-1).ravel()
        self._add(Op.MAP_WRITE, tile=t, words=[int(v) for v in words])

    def read_map(self, t):
        dm = self.twin.read_device_map(t)
        words = np.stack([getattr(dm, f)[0] for f in FIELDS], axis=-1).ravel()
        self._add(Op.MAP_READ, tile=t, expected=[int(v) for v in words])

    def forward(self, t, x, backward=False):
        y, sat = (self.twin.backward if backward else self.twin.forward)(t, x)
        self._add(Op.BACKWARD if backward else Op.FORWARD, tile=t, count=len(x),
                  words=[int(v) for v in np.asarray(x).ravel()], kind="mvm",
                  expected=[y, sat])

    def update(self, t, x, d):
        self.twin.update(t, x, d)
        words = np.concatenate([np.asarray(x), np.asarray(d)], axis=1).ravel()
        self._add(Op.UPDATE, tile=t, count=len(x), words=[int(v) for v in words])

    def pulse(self, t, axis, index, counts):
        self.twin.pulse(t, axis, index, counts)
        self._add(Op.PULSE, tile=t, axis=int(axis == "col"), index=index,
                  words=[int(v) for v in counts])

    def counters(self, t):
        self._add(Op.COUNTERS, tile=t, kind="counters",
                  expected=[self.twin.counters[t][k] for k in COUNTERS])

    def set_physics(self, device_key: int | None = None, **kw):
        """Time and temperature settings (and the device key) for the following steps."""
        self.twin.set(**kw)
        if device_key is not None:
            self.twin.load_device_key(device_key)

    def advance(self, dt: int):
        """ADVANCE as the command processor runs it: one tile operation per tile, with the
        tile's log2 age ratio, then the twin's advance."""
        tw, s = self.twin, self.twin.settings
        step = physics.age_step(dt, s.temperature)
        for t in range(self.cfg.tiles):
            dl = physics.drift_log(tw.ages[t], tw.ages[t] + step)
            self._add(Op.ADVANCE, tile=t, words=advance_words(
                dl, tw.device_key, s.drift_nu, s.drift_nu_dtod, s.decay_rate, s.decay_dtod, dt))
        tw.advance(dt)

    def reset(self):
        self.twin.reset(self.twin.settings.replace(self.cfg, seed=0))
        self._add(Op.RESET)


def tile_settings(cfg: ChipConfig, s: Settings) -> dict:
    """The tile's settings input as the command processor drives it: the gains and sigmas
    scaled by their factors of the temperature (§11.4)."""
    v = settings_value(cfg, s)
    for name in ("fwd_gain", "bwd_gain"):
        v[name] = physics.scaled_gain(v[name], s.temperature)
    for name in ("fwd_sigma", "bwd_sigma"):
        v[name] = physics.scaled_sigma(v[name], s.temperature)
    return v


def n_results(cfg: ChipConfig, s: Step) -> int:
    if s.kind == "mvm":
        return s.expected[0].size
    if s.kind == "counters":
        return 2 * len(COUNTER_NAMES)
    return len(s.expected)


def execute(cfg: ChipConfig, device_map: DeviceMap | None, steps: list[Step], rng,
            p_valid=1.0, p_ready=1.0, max_cycles=300_000, shape: StepShape | None = None):
    """Run ``steps`` on a TileController; returns the result words and busy cycles of each step.
    ``shape``: step-shape tables written (as the command processor does) before the first."""
    dut = TileController(cfg, device_map)
    results, spans = [], []

    async def driver(ctx):
        if shape is not None:
            for d, table in enumerate((shape.up, shape.down)):
                for k, v in enumerate(table):
                    ctx.set(dut.shape_wr, {"en": 1, "down": d, "node": k, "value": int(v)})
                    await ctx.tick()
            ctx.set(dut.shape_wr.en, 0)
            ctx.set(dut.shape_mode, shape.code)
        for s in steps:
            ctx.set(dut.settings, tile_settings(cfg, s.settings))
            temp = s.settings.temperature
            ctx.set(dut.step_factor, int(physics.temperature_tables()["CS"][temp - T_MIN]))
            mode = 0 if shape is None else shape.code
            ctx.set(dut.shape_mode, 1 if mode == 0 and temp != T_REF else mode)
            await send(ctx, dut.cmd, [{"op": s.op, "tile": s.tile, "axis": s.axis,
                                       "index": s.index, "count": s.count}], rng, p_valid)
            await send(ctx, dut.data_in, [w & 0xFFFFFFFF for w in s.words], rng, p_valid)
            await ctx.tick().until(~dut.busy)

    async def monitor(ctx):
        for s in steps:
            words = await recv(ctx, dut.data_out, n_results(cfg, s), rng, p_ready)
            results.append([int(w) for w in words])

    async def timer(ctx):
        for _ in steps:  # busy cycles of every step (0 for a command completing at once)
            n = 0
            while True:
                _, _, accepted, busy = await ctx.tick().sample(
                    dut.cmd.valid & dut.cmd.ready, dut.busy)
                if accepted:
                    break
            while True:
                _, _, busy = await ctx.tick().sample(dut.busy)
                if not busy:
                    break
                n += 1
            spans.append(n)

    run(dut, driver, monitor, timer, max_cycles=max_cycles)
    return results, spans


def check(cfg: ChipConfig, steps: list[Step], results: list[list[int]]):
    """Compare every step's result words with the twin's."""
    for n, (s, got) in enumerate(zip(steps, results, strict=True)):
        where = f"step {n} ({s.op.name}, tile {s.tile})"
        if s.kind == "mvm":
            y, sat = s.expected
            codes = np.array([decode_result(w)[0] for w in got]).reshape(y.shape)
            flags = np.array([decode_result(w)[1] for w in got]).reshape(y.shape)
            np.testing.assert_array_equal(codes, y, err_msg=where)
            np.testing.assert_array_equal(flags.sum(axis=1), sat, err_msg=where)
            m = 2 ** (s.settings.out_bits - 1) - 1
            assert np.all(np.abs(codes[flags]) == m), where
        elif s.kind == "counters":
            vals = [got[2 * k] | (got[2 * k + 1] << 32) for k in range(len(COUNTER_NAMES))]
            assert vals[1:] == s.expected, (where, vals, s.expected)
            s.meta["cycles"] = vals[0]
        else:
            assert [signed32(w) for w in got] == s.expected, where
