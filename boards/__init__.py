"""Board support: the boards ohmflow builds for, their clocks and host-link rates.

`BOARDS` is the one table of board facts. The host's serial backend takes its baud rate from it
(``BOARDS[name].baud``); `ohmflow.boards.build` synthesizes `ohmflow.boards.top.BoardTop` for it.
Importing this module is cheap: it needs neither Amaranth nor the board platforms.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass

from ohmflow.emulator.config import ChipConfig, get_config

__all__ = ["Board", "BOARDS", "get_board", "board_config", "LINK_BAUD"]

#: The host link's rate on every board: 3 Mbaud, the FT231X's (ULX3S) top rate and well inside
#: the FT2232H's (iCEBreaker). The iCEBreaker's clock is an exact multiple of it; the ULX3S's
#: 50 MHz gives 17 clocks a bit, 2.941 Mbaud (1.96 % slow: the stop bit is sampled 0.19 bit from
#: its centre, inside both UARTs' tolerance).
LINK_BAUD = 3_000_000


@dataclass(frozen=True)
class Board:
    """One board: its platform, clocks, link, LEDs, chip config and programmer."""

    name: str
    platform: str  #: ``module:Class`` of the amaranth-boards platform
    family: str  #: ``ecp5`` or ``ice40``
    preset: str  #: the chip config preset (`ohmflow.emulator.config.PRESETS`) built by default
    osc_hz: int  #: the board oscillator, into the PLL
    clock_hz: int  #: the PLL output clocking the design: the target of timing closure
    baud: int  #: the UART rate of the host link
    #: design signal -> ("resource", number) of the LED showing it
    leds: tuple[tuple[str, tuple[str, int]], ...]
    reset: tuple[str, int]  #: the button resource that resets the design while pressed
    synth_opts: str  #: extra options of Yosys' ``synth_<family>``
    programmer: str  #: the tool ``ohmflow build --program`` runs
    program_args: tuple[str, ...]  #: its arguments; ``{bitstream}`` is replaced
    bitstream: str  #: the file of the build that is programmed
    install: str  #: how to install the programmer
    #: device capacity per resource (names as in `ohmflow.boards.report`), for percentages
    capacity: tuple[tuple[str, int], ...]

    @property
    def divisor(self) -> int:
        """UART clocks per bit at `clock_hz` (ValueError if the rate would be off by over 2 %)."""
        from ohmflow.hdl.link.uart import uart_divisor

        return uart_divisor(self.clock_hz, self.baud)

    def at(self, clock_hz: int | None) -> Board:
        """This board with its design clocked at ``clock_hz`` (None: unchanged)."""
        if clock_hz is None or clock_hz == self.clock_hz:
            return self
        return dataclasses.replace(self, clock_hz=int(clock_hz))

    def platform_class(self):
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board(
            name="ulx3s-85f",
            platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
            family="ecp5",
            preset="ulx3s",
            osc_hz=25_000_000,
            clock_hz=50_000_000,  # 25 MHz * 2 (VCO 600 MHz, output divider 12)
            baud=LINK_BAUD,
            leds=(("rx", ("led", 0)), ("tx", ("led", 1)), ("busy", ("led", 2)),
                  ("error", ("led", 3)), ("alive", ("led", 7))),
            reset=("button_pwr", 0),
            synth_opts="",  # synth_ecp5 maps multipliers to MULT18X18D by default
            programmer="openFPGALoader",
            program_args=("-b", "ulx3s", "{bitstream}"),
            bitstream="top.bit",
            install="apt-get install openfpgaloader (Debian 12 and later), or build it from "
                    "https://github.com/trabucayre/openFPGALoader; then put it on PATH",
            capacity=(("LUT4", 83_640), ("FF", 83_640), ("DSP", 156), ("BRAM", 208)),
        ),
        Board(
            name="icebreaker",
            platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
            family="ice40",
            preset="icebreaker",
            osc_hz=12_000_000,
            clock_hz=24_000_000,
            baud=LINK_BAUD,
            leds=(("alive", ("led_g", 0)), ("error", ("led_r", 0)), ("rx", ("led", 2)),
                  ("tx", ("led", 3)), ("busy", ("led", 4))),
            reset=("button", 0),
            synth_opts="-dsp",  # map multipliers to the UP5K's SB_MAC16 (off by default)
            programmer="iceprog",
            program_args=("{bitstream}",),
            bitstream="top.bin",
            install="apt-get install fpga-icestorm (Debian 12 and later; it provides iceprog), "
                    "or build it from "
                    "https://github.com/YosysHQ/icestorm; then put it on PATH",
            capacity=(("LC", 5_280), ("FF", 5_280), ("DSP", 8), ("BRAM", 30), ("SPRAM", 4)),
        ),
    )
}


def get_board(name: str) -> Board:
    """The board called ``name``; ValueError naming the known boards otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}: expected one of {', '.join(BOARDS)}") from None


def board_config(board: Board | str, config: str | ChipConfig | None = None) -> ChipConfig:
    """The chip config built for ``board``: ``config`` (default: the board's preset) clocked at
    the board's PLL frequency. ``clock_hz`` is not part of the config fingerprint, so the host's
    config check accepts the board whatever its clock."""
    b = get_board(board) if isinstance(board, str) else board
    cfg = get_config(b.preset if config is None else config)
    if cfg.clock_hz != b.clock_hz:
        cfg = dataclasses.replace(cfg, clock_hz=b.clock_hz)
    return cfg
