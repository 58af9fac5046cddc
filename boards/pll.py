"""Board clocks: PLL parameters for the ECP5 (EHXPLLL) and the iCE40 (SB_PLL40_PAD), and the
elaboratable that instantiates them.

The parameter searches are those of Project Trellis' ``ecppll`` and IceStorm's ``icepll`` (the
tests compare them with the YoWASP builds of both tools), so a frequency that the tools accept is
accepted here with the same dividers. nextpnr derives the output clock's constraint from the
oscillator pin's and the PLL's dividers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Elaboratable, Instance, Module, Signal
from ohmflow.hdl.lib.checked import Checked

__all__ = ["EcpPll", "IcePll", "ecp5_pll", "ice40_pll", "pll_params", "PllClock"]


@dataclass(frozen=True)
class EcpPll:
    """EHXPLLL dividers: ``f_out = f_in / clki_div * clkfb_div`` (feedback from CLKOP)."""

    f_in: float
    f_out: float
    f_vco: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def clkop_cphase(self) -> int:
        """CLKOP coarse phase as ``ecppll`` writes it: half an output period in VCO cycles,
        computed in its float32 arithmetic and truncated (so 5.0 may come out as 4)."""
        f32 = np.float32
        f_pfd = f32(f32(self.f_in) / f32(self.clki_div))
        f_vco = f32(f32(f_pfd * f32(self.clkfb_div)) * f32(self.clkop_div))
        f_out = f32(f_vco / f32(self.clkop_div))
        ns_phase = f32(1 / (float(f_out) * 1e6) * 0.5)
        return int(float(ns_phase) * (float(f_vco) * 1e6))


@dataclass(frozen=True)
class IcePll:
    """SB_PLL40 dividers, simple feedback: ``f_out = f_in / (divr+1) * (divf+1) / 2**divq``."""

    f_in: float
    f_out: float
    f_vco: float
    divr: int
    divf: int
    divq: int
    filter_range: int


def ecp5_pll(f_in_mhz: float, f_out_mhz: float) -> EcpPll:
    """The EHXPLLL dividers closest to ``f_out_mhz``; ties go to the VCO nearest 600 MHz."""
    best, err = None, float("inf")
    for i_div in range(1, 129):
        f_pfd = f_in_mhz / i_div
        if not 3.125 <= f_pfd <= 400:
            continue
        for fb_div in range(1, 81):
            f_out = f_pfd * fb_div
            for o_div in range(1, 129):
                f_vco = f_out * o_div
                if not 400 <= f_vco <= 800:
                    continue
                e = abs(f_out - f_out_mhz)
                if e < err or (e == err and abs(f_vco - 600) < abs(best.f_vco - 600)):
                    best, err = EcpPll(f_in_mhz, f_out, f_vco, i_div, fb_div, o_div), e
    if best is None or not 10 <= best.f_out <= 400:
        raise ValueError(f"the ECP5 PLL cannot make {f_out_mhz} MHz from {f_in_mhz} MHz")
    return best


def ice40_pll(f_in_mhz: float, f_out_mhz: float) -> IcePll:
    """The SB_PLL40 dividers (simple feedback) closest to ``f_out_mhz``."""
    if not 10 <= f_in_mhz <= 133:
        raise ValueError(f"the iCE40 PLL needs a 10..133 MHz input, got {f_in_mhz} MHz")
    if not 16 <= f_out_mhz <= 275:
        raise ValueError(f"the iCE40 PLL makes 16..275 MHz, not {f_out_mhz} MHz")
    best, err = None, float("inf")
    for divr in range(16):
        f_pfd = f_in_mhz / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2**divq
                e = abs(f_out - f_out_mhz)
                if e < err:
                    fr = next((k for k, top in enumerate((17, 26, 44, 66, 101), 1) if f_pfd < top),
                              6)
                    best, err = IcePll(f_in_mhz, f_out, f_vco, divr, divf, divq, fr), e
    if best is None:
        raise ValueError(f"the iCE40 PLL cannot make {f_out_mhz} MHz from {f_in_mhz} MHz")
    return best


def pll_params(family: str, osc_hz: int, clock_hz: int) -> EcpPll | IcePll:
    """The family's PLL dividers making exactly ``clock_hz`` (to 1 Hz); ValueError otherwise."""
    if family == "ecp5":
        params = ecp5_pll(osc_hz / 1e6, clock_hz / 1e6)
    elif family == "ice40":
        params = ice40_pll(osc_hz / 1e6, clock_hz / 1e6)
    else:
        raise ValueError(f"unknown FPGA family {family!r}: expected ecp5 or ice40")
    if abs(params.f_out * 1e6 - clock_hz) > 1:
        raise ValueError(f"the {family} PLL makes {params.f_out:.4f} MHz, not exactly "
                         f"{clock_hz / 1e6:g} MHz, from {osc_hz / 1e6:g} MHz: choose a clock it "
                         "can make exactly (the UART divisor and clock_hz depend on it)")
    return params


class PllClock(Checked, Elaboratable):
    """A clock of ``clock_hz`` from the board oscillator, through the family's PLL.

    Parameters
    ----------
    family:
        ``ecp5`` or ``ice40``.
    clk_in:
        ECP5: the oscillator as a signal (a buffered input). iCE40: the oscillator's pad (the
        ``io`` of a ``dir="-"`` request), which SB_PLL40_PAD takes directly.
    osc_hz, clock_hz:
        Oscillator and wanted output frequency; the output must be exact to 1 Hz.

    Attributes
    ----------
    clk: Signal
        The output clock (on a global network).
    locked: Signal
        The PLL's lock output.
    """

    @classmethod
    def check(cls, family: str, clk_in, osc_hz: int, clock_hz: int) -> None:
        pll_params(family, osc_hz, clock_hz)

    def __init__(self, family: str, clk_in, osc_hz: int, clock_hz: int):
        self.params = pll_params(family, osc_hz, clock_hz)
        self.family = family
        self.clk_in = clk_in
        self.osc_hz = osc_hz
        self.clock_hz = clock_hz
        self.clk = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        clk = self.clk
        p = self.params
        if self.family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{p.f_in:g}", a_FREQUENCY_PIN_CLKOP=f"{p.f_out:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p.clkop_div,
                p_CLKOP_CPHASE=p.clkop_cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p.clkfb_div,
                i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=clk, i_CLKFB=clk,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked,
            )
        else:
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=p.divr, p_DIVF=p.divf, p_DIVQ=p.divq,
                p_FILTER_RANGE=p.filter_range,
                i_PACKAGEPIN=self.clk_in, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk, o_LOCK=self.locked,
            )
        return m
