"""Geometry and stream payload layouts shared by the tile's components, derived from `ChipConfig`.

Devices are stored lane-banked: device (j, i) of tile t lives in bank ``(j + i) mod L`` at address
``{t, j // L, j % L, i // L}`` (bit fields, most significant first). A row of L devices
``(j, kL .. kL+L-1)`` and a column of L devices ``(mL .. mL+L-1, i)`` then both touch every bank
once, so the forward and the transposed read each take one cycle per L devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum
from amaranth.utils import ceil_log2
from ohmflow.emulator.config import (
    C2C_SHIFT,
    DW_STD_BITS,
    SHAPE_FRAC,
    SLOPE_FRAC,
    SQRT_FRAC,
    ChipConfig,
)
from ohmflow.hdl.tile.physics_math import NODE_T_MAX

__all__ = ["Geometry", "ProgCmd"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class ProgCmd(enum.Enum, shape=2):
    """Commands of the array's program port."""

    READ = 0  #: return the device's state and parameters
    STATE = 1  #: write the state, clipped to the device's bounds
    MAP = 2  #: write the parameters and clip the state into the new bounds


@dataclass(frozen=True)
class Geometry:
    """Index widths, memory depth and payload layouts of a config."""

    cfg: ChipConfig

    @property
    def lanes(self) -> int:
        return self.cfg.lanes

    @property
    def iq(self) -> int:
        """Chunks of L along a row of devices (input lines i)."""
        return _ceil_div(self.cfg.rows, self.cfg.lanes)

    @property
    def jq(self) -> int:
        """Chunks of L along a column of devices (output lines j)."""
        return _ceil_div(self.cfg.cols, self.cfg.lanes)

    @property
    def qmax(self) -> int:
        return max(self.iq, self.jq)

    @property
    def iq_bits(self) -> int:
        return ceil_log2(self.iq)

    @property
    def jq_bits(self) -> int:
        return ceil_log2(self.jq)

    @property
    def r_bits(self) -> int:
        return ceil_log2(self.cfg.lanes)

    @property
    def q_bits(self) -> int:
        return ceil_log2(self.qmax)

    @property
    def tile_bits(self) -> int:
        return ceil_log2(self.cfg.tiles)

    @property
    def depth(self) -> int:
        """Words per bank memory (at least 2, so no address is zero bits wide)."""
        return max(2, self.cfg.tiles << (self.iq_bits + self.r_bits + self.jq_bits))

    def address(self, t: int, j: int, i: int) -> tuple[int, int]:
        """(bank, address) of device (j, i) of tile t."""
        L = self.cfg.lanes
        bank = (j + i) % L
        addr = ((((t << self.jq_bits) | (j // L)) << self.r_bits | (j % L)) << self.iq_bits) | (
            i // L)
        return bank, addr

    def index_shape(self, bits: int):
        """Shape of an index field of ``bits`` bits in a port layout (at least one bit)."""
        return unsigned(max(1, bits))

    # ----- derived arithmetic widths -----
    @property
    def n_shape(self):
        """Coincidence count per device and sample, 0 .. bl_max."""
        return unsigned(ceil_log2(self.cfg.bl_max + 1))

    @property
    def e_max(self) -> int:
        """Largest |e| = |rnd(g * dw_std, C2C_SHIFT)|."""
        return (510 * (2**DW_STD_BITS - 1) + (1 << (C2C_SHIFT - 1))) >> C2C_SHIFT

    @property
    def step_width(self) -> int:
        """Unsigned width of a pulse step, max(0, b + rnd(k*w, SLOPE_FRAC)), b = s or, in a step
        shape's table mode, rnd(s g, SHAPE_FRAC) with g up to the largest node scaled by the
        step factor of any temperature (§5.4.1, §11.4)."""
        c = self.cfg
        kw = c.slope_max * (2 ** (c.w_bits - 1))
        base = max(c.step_max, (c.step_max * NODE_T_MAX + (1 << (SHAPE_FRAC - 1))) >> SHAPE_FRAC)
        return (base + ((kw + (1 << (SLOPE_FRAC - 1))) >> SLOPE_FRAC)).bit_length()

    @property
    def e_shape(self):
        """Signed width of e = rnd(g * dw_std, C2C_SHIFT)."""
        return signed(self.e_max.bit_length() + 1)

    @property
    def sqrt_max(self) -> int:
        return math.isqrt(self.cfg.bl_max << (2 * SQRT_FRAC))

    @property
    def t_shape(self):
        """Signed width of t = rnd(e * SQRT[n], SQRT_FRAC)."""
        t = (self.e_max * self.sqrt_max + (1 << (SQRT_FRAC - 1))) >> SQRT_FRAC
        return signed(t.bit_length() + 1)

    # ----- payload layouts (index fields at least one bit wide; slice with the *_bits) -----
    @property
    def map_layout(self) -> data.StructLayout:
        c = self.cfg
        return data.StructLayout({
            "su": unsigned(c.step_bits), "sd": unsigned(c.step_bits),
            "ku": signed(c.slope_bits), "kd": signed(c.slope_bits),
            "wmax": signed(c.w_bits), "wmin": signed(c.w_bits),
        })

    @property
    def bounds_layout(self) -> data.StructLayout:
        return data.StructLayout({"wmax": signed(self.cfg.w_bits), "wmin": signed(self.cfg.w_bits)})

    @property
    def slopes_layout(self) -> data.StructLayout:
        c = self.cfg
        return data.StructLayout({
            "su": unsigned(c.step_bits), "sd": unsigned(c.step_bits),
            "ku": signed(c.slope_bits), "kd": signed(c.slope_bits),
        })

    @property
    def drive_layout(self) -> data.StructLayout:
        """A drive beat: L input codes of chunk ``chunk`` for output line ``(line_q, line_r)``."""
        return data.StructLayout({
            "tile": self.index_shape(self.tile_bits),
            "transpose": 1,
            "line_q": self.index_shape(self.q_bits),
            "line_r": self.index_shape(self.r_bits),
            "chunk": self.index_shape(self.q_bits),
            "last": 1,
            "codes": data.ArrayLayout(signed(self.cfg.in_bits), self.cfg.lanes),
        })

    @property
    def pulse_layout(self) -> data.StructLayout:
        """A pulse beat: devices (j, chunk*L + l), l < L, with j = jq*L + jr."""
        L = self.cfg.lanes
        return data.StructLayout({
            "tile": self.index_shape(self.tile_bits),
            "jq": self.index_shape(self.jq_bits),
            "jr": self.index_shape(self.r_bits),
            "chunk": self.index_shape(self.iq_bits),
            "n": data.ArrayLayout(self.n_shape, L),
            "up": unsigned(L),
            "t": data.ArrayLayout(self.t_shape, L),
        })

    @property
    def prog_layout(self) -> data.StructLayout:
        """A program-port beat on device (jq*L + jr, iq*L + ir)."""
        return data.StructLayout({
            "cmd": ProgCmd,
            "tile": self.index_shape(self.tile_bits),
            "jq": self.index_shape(self.jq_bits),
            "jr": self.index_shape(self.r_bits),
            "iq": self.index_shape(self.iq_bits),
            "ir": self.index_shape(self.r_bits),
            "state": signed(self.cfg.w_bits),
            "map": self.map_layout,
        })

    @property
    def prog_out_layout(self) -> data.StructLayout:
        return data.StructLayout({"state": signed(self.cfg.w_bits), "map": self.map_layout})
