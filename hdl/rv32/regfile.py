"""The RV32 core's register file: 32 words of 32 bits, two read ports and one write port.

On an iCE40 (SiliconBlue) platform it is four ``SB_RAM40_4K`` block RAMs (two copies, one per
read port, of two 16-bit halves), instantiated directly: a `lib.memory.Memory` would be given
bypass logic for a read and a write of one address in the same cycle, which the core never
does (it reads in DECODE and writes in other cycles), and that logic sat on the core's slowest
path. Elsewhere it is a `Memory` with the same behaviour: a read's word in the next cycle,
held while the port is not enabled. All words are 0 at power-up (x0 is never written).
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.vendor import SiliconBluePlatform

__all__ = ["RegisterFile"]


class RegisterFile(wiring.Component):
    """Ports: ``r{1,2}_addr``, ``r{1,2}_en`` (read this cycle), ``r{1,2}_data``; ``w_addr``,
    ``w_en``, ``w_data``. A read and a write of one address must not share a cycle."""

    def __init__(self):
        super().__init__({
            "r1_addr": In(5), "r1_en": In(1), "r1_data": Out(32),
            "r2_addr": In(5), "r2_en": In(1), "r2_data": Out(32),
            "w_addr": In(5), "w_en": In(1), "w_data": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        reads = ((self.r1_addr, self.r1_en, self.r1_data), (self.r2_addr, self.r2_en,
                                                            self.r2_data))
        if isinstance(platform, SiliconBluePlatform):
            for port, (addr, en, data) in enumerate(reads):
                for half in range(2):
                    out = Signal(16, name=f"r{port + 1}_half{half}")
                    m.submodules[f"ram{port}_{half}"] = Instance(
                        "SB_RAM40_4K", p_READ_MODE=0, p_WRITE_MODE=0,
                        i_RCLK=ClockSignal(), i_RCLKE=1, i_RE=en,
                        i_RADDR=Const(0, 11) | addr, o_RDATA=out,
                        i_WCLK=ClockSignal(), i_WCLKE=1, i_WE=self.w_en,
                        i_WADDR=Const(0, 11) | self.w_addr, i_MASK=Const(0, 16),
                        i_WDATA=self.w_data[16 * half:16 * half + 16])
                    m.d.comb += data[16 * half:16 * half + 16].eq(out)
            return m
        m.submodules.mem = mem = Memory(shape=32, depth=32, init=[])
        wr = mem.write_port()
        m.d.comb += [wr.addr.eq(self.w_addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data)]
        for addr, en, data in reads:
            rd = mem.read_port()
            m.d.comb += [rd.addr.eq(addr), rd.en.eq(en), data.eq(rd.data)]
        return m
