"""The address map of the ``rv32`` engine: one table for the SoC's decoder and the firmware.

`CoreSoC` (``hdl/core_soc.py``) decodes the core's bus with these constants, and the firmware
build (``hdl/firmware``) writes them into the firmware's generated header, so the two cannot
disagree. Regions are selected by address bits 31:28.
"""

from __future__ import annotations

__all__ = ["BRAM_BASE", "SPRAM_BASE", "SPRAM_BYTES", "IO_BASE", "IO", "REGION_SHIFT",
           "c_defines"]

REGION_SHIFT = 28  #: address bits 31:28 select the region
BRAM_BASE = 0x0000_0000  #: block RAM, read only: the firmware image (code, constants)
SPRAM_BASE = 0x1000_0000  #: single-port RAM: variables, frame buffers, devices, the stack
SPRAM_BYTES = 128 * 1024  #: four iCE40UP5K SPRAMs of 16 K x 16 bits, as two banks of 32 bits
IO_BASE = 0x2000_0000  #: the link and the cycle counter

#: I/O registers, by offset from `IO_BASE` (all 32 bits; a read answers in the next cycle)
IO = {
    # read: pop a received byte if there is one: bit 8 valid, bits 7:0 the byte
    "RX": 0x00,
    # read: pop a received byte, waiting for one; the core sleeps (the SoC reports idle)
    "RX_WAIT": 0x04,
    # read: pop a received byte, waiting at most until the line has been silent for the
    # byte timeout (then bit 8 is 0)
    "RX_TIMED": 0x08,
    # write: send a byte (the write waits while the transmitter holds one); read: bit 0 set
    # while a byte waits to leave
    "TX": 0x0C,
    # read: clock cycles since reset, modulo 2**32
    "CYCLES": 0x10,
    # the link's CRC-32 (docs/protocol.md; the register before the final XOR), updated by every
    # byte received from RX* and every byte sent to TX; write: set it (CRC_INIT at a frame's
    # start, after the sync bytes); read: its value
    "CRC": 0x14,
}


def c_defines() -> list[str]:
    """The map as C preprocessor lines for the firmware's header."""
    lines = [f"#define BRAM_BASE 0x{BRAM_BASE:08x}u", f"#define SPRAM_BASE 0x{SPRAM_BASE:08x}u",
             f"#define SPRAM_BYTES {SPRAM_BYTES}u", f"#define IO_BASE 0x{IO_BASE:08x}u"]
    lines += [f"#define IO_{name} 0x{off:02x}u" for name, off in IO.items()]
    return lines
