"""A 64 KiB bank of single-port RAM, 32 bits wide, with byte writes: two iCE40UP5K SPRAMs.

On an iCE40 (SiliconBlue) platform the bank is two ``SB_SPRAM256KA`` primitives side by side
(16 K x 16 bits each; the byte enables become their nibble masks); elsewhere (simulation,
Verilator, other FPGAs) it is a `lib.memory.Memory` with the same behaviour: one access per
cycle, a read's word in the next cycle, and no contents at power-up (the SPRAM is not part of
the bitstream; the firmware initializes what it uses).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.vendor import SiliconBluePlatform

__all__ = ["SpramBank", "WORDS"]

WORDS = 16384  #: 32-bit words of a bank


class SpramBank(wiring.Component):
    """One bank: ``addr`` (word), ``en`` (access this cycle), ``we`` with ``wmask`` (bytes of
    ``wdata``), ``rdata`` (the word read by the previous cycle's access).
    """

    def __init__(self):
        super().__init__({
            "addr": In(14), "en": In(1), "we": In(1), "wdata": In(32), "wmask": In(4),
            "rdata": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        if isinstance(platform, SiliconBluePlatform):
            for half in range(2):
                out = Signal(16, name=f"rdata_{half}")
                mask = Cat(*(self.wmask[2 * half + b // 2] for b in range(4)))
                m.submodules[f"spram{half}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=self.addr, i_DATAIN=self.wdata[16 * half:16 * half + 16],
                    i_MASKWREN=mask, i_WREN=self.we, i_CHIPSELECT=self.en,
                    i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=out)
                m.d.comb += self.rdata[16 * half:16 * half + 16].eq(out)
            return m
        m.submodules.mem = mem = Memory(shape=32, depth=WORDS, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en & ~self.we), self.rdata.eq(rd.data),
                     wr.addr.eq(self.addr), wr.data.eq(self.wdata),
                     wr.en.eq(self.wmask & (self.en & self.we).replicate(4))]
        return m
