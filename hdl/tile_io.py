"""The TileController's command interface: operations, the command payload, run-time settings,
and the word formats of its ``data_in`` / ``data_out`` streams (docs/gateware.md)."""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum
from ohmflow.emulator.config import (
    COUNTERS,
    DW_STD_BITS,
    GAIN_BITS,
    SETTING_NAMES,
    SHIFT_BITS,
    SIGMA_BITS,
    ChipConfig,
    Settings,
)

__all__ = ["COUNTER_NAMES", "COUNTER_BITS", "Op", "cmd_layout", "settings_layout",
           "settings_value", "result_word", "decode_result", "op_cycles"]

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
    """Run-time settings as one input signal; the seed is set by the SEED operation instead."""
    shape = data.StructLayout({"n_in": range(cfg.rows + 1), "n_out": range(cfg.cols + 1)})
    return data.StructLayout({
        "in_bits": range(cfg.in_bits + 1),
        "out_bits": range(cfg.out_bits + 1),
        "fwd_gain": GAIN_BITS, "fwd_shift": SHIFT_BITS,
        "bwd_gain": GAIN_BITS, "bwd_shift": SHIFT_BITS,
        "fwd_sigma": SIGMA_BITS, "bwd_sigma": SIGMA_BITS,
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


def result_word(code: int, sat: bool) -> int:
    """A FORWARD/BACKWARD result word: bits 15..0 the code (two's complement), bit 16 saturated."""
    return (code & 0xFFFF) | (int(bool(sat)) << 16)


def decode_result(word: int) -> tuple[int, bool]:
    """``(code, saturated)`` of a FORWARD/BACKWARD result word."""
    code = word & 0xFFFF
    return (code - 0x10000 if code & 0x8000 else code), bool(word >> 16 & 1)


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
              count: int = 1) -> int:
    """Busy cycles of one operation when ``data_in`` always has a word and ``data_out`` is always
    ready (docs/gateware.md, "Cycle counts"). The ``cycles`` counter adds exactly this for the
    operations on a tile (all but COUNTERS, SEED, RESET, NOP)."""
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
    return 0
