"""The tile link: the TileController's command interface as one `TileLink` signature, with its
operations, command payload, run-time settings and the word formats of its ``data_in`` /
``data_out`` streams (docs/gateware.md)."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import (
    COUNTERS,
    DW_STD_BITS,
    SETTING_NAMES,
    SHAPE_MODES,
    SHIFT_BITS,
    TEMP_FRAC,
    ChipConfig,
    Settings,
)
from ohmflow.hdl.tile.physics_math import CS_BITS, GAIN_T_BITS, SIGMA_T_BITS
from ohmflow.hdl.tile.shape_unit import SHAPE_LATENCY, divider_latency, shape_write_layout

__all__ = ["COUNTER_NAMES", "COUNTER_BITS", "WORD", "RESULT", "Op", "TileLink", "cmd_layout",
           "settings_layout", "settings_value", "result_word", "decode_result", "op_cycles"]

WORD = 32  #: width of an operand or result word on the link
#: a FORWARD/BACKWARD result word: the ADC code (two's complement) in bits 15..0, its saturation
#: flag in bit 16; the bits above are zero
RESULT = data.StructLayout({"code": signed(16), "saturated": 1})

#: per-tile counters, in the order COUNTERS returns them: cycles first, then the twin's
COUNTER_NAMES = ("cycles", *COUNTERS)
COUNTER_BITS = 48  #: each counter is returned as two words: bits 31..0, then bits 47..32


class Op(enum.Enum, shape=4):
    """TileController operations (see docs/gateware.md for operands and results)."""

    NOP = 0
    FORWARD = 1
    BACKWARD = 2
    UPDATE = 3
    PULSE = 4
    PROGRAM = 5
    READ = 6
    MAP_WRITE = 7
    MAP_READ = 8
    COUNTERS = 9
    SEED = 10
    RESET = 11
    ADVANCE = 12


def cmd_layout(cfg: ChipConfig) -> data.StructLayout:
    """The ``cmd`` payload: op, tile, axis (0 row, 1 column), line index, batch count."""
    return data.StructLayout({
        "op": Op,
        "tile": unsigned(max(1, (cfg.tiles - 1).bit_length())),
        "axis": 1,
        "index": unsigned(max(1, (max(cfg.rows, cfg.cols) - 1).bit_length())),
        "count": 16,
    })


def settings_layout(cfg: ChipConfig) -> data.StructLayout:
    """Run-time settings as one input signal; the seed is set by the SEED operation instead.
    The gains and sigmas are wide enough for their values at any temperature (§11.4)."""
    shape = data.StructLayout({"n_in": range(cfg.rows + 1), "n_out": range(cfg.cols + 1)})
    return data.StructLayout({
        "in_bits": range(cfg.in_bits + 1),
        "out_bits": range(cfg.out_bits + 1),
        "fwd_gain": GAIN_T_BITS, "fwd_shift": SHIFT_BITS,
        "bwd_gain": GAIN_T_BITS, "bwd_shift": SHIFT_BITS,
        "fwd_sigma": SIGMA_T_BITS, "bwd_sigma": SIGMA_T_BITS,
        "bl": range(cfg.bl_max + 1),
        "dw_std": DW_STD_BITS,
        "shapes": data.ArrayLayout(shape, cfg.tiles),
    })


def settings_value(cfg: ChipConfig, s: Settings) -> dict:
    """`Settings` as a value for the ``settings`` input (e.g. ``ctx.set(dut.settings, ...)``)."""
    s = s.validated(cfg)
    v = {k: getattr(s, k) for k in SETTING_NAMES}
    v["shapes"] = [{"n_in": a, "n_out": b} for a, b in s.shapes]
    return v


class TileLink(wiring.Signature):
    """The link from a command processor to a TileController, seen from the command processor.

    Members
    -------
    cmd: Out stream of `cmd_layout` beats ``{op, tile, axis, index, count}``, one an operation.
    data_in: Out stream of `WORD`-bit operand words.
    data_out: In stream of `WORD`-bit result words (`RESULT` for FORWARD and BACKWARD).
    settings: Out run-time settings (`settings_layout`), sampled when a command is accepted.
    shape_mode, shape_wr: Out, the step shape's mode (0 linear, 1 bottom, 2 centered) and its
        node writes (`shape_write_layout`), both while the tile is idle (§5.4.1).
    step_factor: Out, CS[T], the step factor of the temperature (TEMP_FRAC bits, §11.4) the
        nodes are scaled by, while the tile is idle (1.0 when not driven).
    busy: In, high from the cycle after a command is accepted until it has completed.
    settling: In, the tile still writes derived state (rinv after a map write) while not busy:
        a simulation clock gate keeps the tile's clock running.

    The TileController's own signature is ``TileLink(cfg).flip()``.
    """

    def __init__(self, cfg: ChipConfig):
        super().__init__({
            "cmd": Out(stream.Signature(cmd_layout(cfg))),
            "data_in": Out(stream.Signature(WORD)),
            "data_out": In(stream.Signature(WORD)),
            "settings": Out(settings_layout(cfg)),
            "shape_mode": Out(range(len(SHAPE_MODES))),
            "shape_wr": Out(shape_write_layout()),
            "step_factor": Out(CS_BITS, init=1 << TEMP_FRAC),
            "busy": In(1),
            "settling": In(1),
        })


def result_word(code: int, sat: bool) -> int:
    """The `RESULT` word of an ADC code and its saturation flag."""
    return RESULT.const({"code": code, "saturated": int(bool(sat))}).as_value().value


def decode_result(word: int) -> tuple[int, bool]:
    """``(code, saturated)`` of a `RESULT` word."""
    r = RESULT.from_bits(word & ((1 << RESULT.size) - 1))
    return r.code, bool(r.saturated)


#: cycles from a program beat's acceptance to its state write in the array (linear mode)
ARRAY_WRITE = 6


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _vector_pipeline(n: int, t: int, d: int, count: int) -> int:
    """FORWARD / BACKWARD: the cycle of the last drive request of ``count`` vectors, counted
    from the first code, for n codes a vector, a pulse of t cycles and d drive requests.

    Vector k's codes are accepted in cycles s..s+n-1 (``load``); its pulse starts at the later
    of its last code and the previous pulse's end, and ends t cycles later; its first request
    is accepted at the later of its pulse's end and the cycle after the previous vector's last
    request, the others follow one a cycle. The DAC has two buffers: vector k+1 starts loading
    the cycle after vector k's last code, but not before vector k-1's last request.
    """
    load = pulse = drive = drive_before = -1  # "before the first vector"
    for _ in range(count):
        load = max(load, drive_before) + n
        pulse = max(load, pulse) + t
        drive_before, drive = drive, max(pulse, drive + 1) + d - 1
    return drive


def op_cycles(cfg: ChipConfig, s: Settings, op: Op, tile: int = 0, axis: int = 0,
              count: int = 1, table: bool = False) -> int:
    """Busy cycles of one operation when ``data_in`` always has a word and ``data_out`` is always
    ready (docs/gateware.md, "Cycle counts"). The ``cycles`` counter adds exactly this for the
    operations on a tile (all but COUNTERS, SEED, RESET, ADVANCE, NOP). ``table``: a step-shape
    table mode is loaded (its extra array stages, and a map write waits for the range divider),
    as the linear mode is at a temperature other than T0 (§11.4)."""
    if not table:
        return _linear_cycles(cfg, s, op, tile, axis, count)
    base = _linear_cycles(cfg, s, op, tile, axis, count)
    if op in (Op.FORWARD, Op.BACKWARD) and count == 0:
        return base
    extra = {Op.FORWARD: SHAPE_LATENCY, Op.BACKWARD: SHAPE_LATENCY,
             Op.UPDATE: SHAPE_LATENCY * count, Op.PULSE: SHAPE_LATENCY,
             Op.PROGRAM: SHAPE_LATENCY, Op.RESET: SHAPE_LATENCY, Op.ADVANCE: SHAPE_LATENCY,
             Op.MAP_WRITE: max(SHAPE_LATENCY, divider_latency(cfg) - ARRAY_WRITE)}
    return base + extra.get(op, 0)


def _linear_cycles(cfg: ChipConfig, s: Settings, op: Op, tile: int, axis: int,
                   count: int) -> int:
    """`op_cycles` in the linear mode."""
    n_in, n_out = s.shapes[tile]
    L = cfg.lanes
    if op in (Op.FORWARD, Op.BACKWARD):
        n_dac, n_adc = (n_in, n_out) if op == Op.FORWARD else (n_out, n_in)
        if count == 0:
            return 3
        last = _vector_pipeline(n_dac, 2 ** (s.in_bits - 1), n_adc * _ceil(n_dac, L), count)
        return last + s.out_bits + 13
    if op == Op.UPDATE:
        rounds = _ceil(_ceil(s.bl, 4), L)
        return count * (27 + (n_in + n_out) * rounds + n_out * _ceil(n_in, L)) + 3
    if op == Op.PULSE:
        return 26 + (2 * n_out if axis == 0 else n_in + _ceil(n_in, L))
    if op == Op.PROGRAM:
        return n_in * n_out + 10
    if op == Op.READ:
        return n_in * n_out + 7
    if op == Op.MAP_WRITE:
        return 6 * cfg.rows * cfg.cols + 10
    if op == Op.MAP_READ:
        return 6 * cfg.rows * cfg.cols + 7
    if op == Op.COUNTERS:
        return 2 + 2 * len(COUNTER_NAMES)
    if op == Op.SEED:
        return 13
    if op == Op.RESET:
        return cfg.tiles * cfg.rows * cfg.cols + max(6, cfg.tiles + 1)
    if op == Op.ADVANCE:
        from ohmflow.hdl.tile.tile_drift import DriftWalker  # it takes WORD from here
        return DriftWalker.OVERHEAD_CYCLES + DriftWalker.DEVICE_CYCLES * cfg.rows * cfg.cols
    return 0
