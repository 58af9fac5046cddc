"""The top of the Verilator emulator: the SoC behind registered byte ports, with its own reset.

The C++ harness (``sim/harness.cpp``) evaluates the model twice a clock: once with the clock low,
to see ``rx.ready`` and ``tx.valid`` before the edge, and once with it high. Everything that
depends combinationally on a top-level input is evaluated in both, so this top leaves none:

- two-byte FIFOs register the byte ports (one cycle in each direction);
- there is no reset input: a power-on counter holds the SoC in reset for its first
  `POWER_ON_CYCLES` clocks (a reset input would enter the next-state logic of every register
  that has one).

The SoC behind them is the very one a board runs (`ohmflow.hdl.soc.make_soc`: the tile's
`SoC`, or `CoreSoC` for the rv32 engine); a board puts its UART
and its PLL-lock reset in front instead.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.hdl.soc import make_soc

__all__ = ["EmulatorTop", "POWER_ON_CYCLES"]

#: clocks the SoC is held in reset after the model starts
POWER_ON_CYCLES = 7


class EmulatorTop(wiring.Component):
    """`SoC` with registered byte streams and a power-on reset, for the Verilator harness.

    Ports: ``clk``; ``rx`` / ``tx`` byte streams; ``idle`` (out of reset, nothing buffered and
    the SoC idle: the harness may sleep until a byte arrives).
    """

    def __init__(self, cfg: ChipConfig | str, *, byte_timeout: int | None = None,
                 device_map: DeviceMap | None = None):
        self.cfg = get_config(cfg)
        self.byte_timeout = byte_timeout
        self.device_map = device_map
        super().__init__({
            "clk": In(1),
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.domains.power_on = ClockDomain(reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(self.clk), ClockSignal("power_on").eq(self.clk)]
        hold = Signal(range(POWER_ON_CYCLES + 1), init=POWER_ON_CYCLES)
        with m.If(hold != 0):
            m.d.power_on += hold.eq(hold - 1)
        m.d.comb += ResetSignal("sync").eq(hold != 0)

        m.submodules.soc = soc = make_soc(self.cfg, byte_timeout=self.byte_timeout,
                                          device_map=self.device_map, gate_tile_clock=True)
        m.submodules.rx_fifo = rxf = SyncFIFO(width=8, depth=2)
        m.submodules.tx_fifo = txf = SyncFIFO(width=8, depth=2)
        m.d.comb += [
            rxf.w_data.eq(self.rx.payload), rxf.w_en.eq(self.rx.valid),
            self.rx.ready.eq(rxf.w_rdy & (hold == 0)),
            soc.rx.payload.eq(rxf.r_data), soc.rx.valid.eq(rxf.r_rdy), rxf.r_en.eq(soc.rx.ready),
            txf.w_data.eq(soc.tx.payload), txf.w_en.eq(soc.tx.valid),
            soc.tx.ready.eq(txf.w_rdy),
            self.tx.payload.eq(txf.r_data), self.tx.valid.eq(txf.r_rdy),
            txf.r_en.eq(self.tx.ready),
            self.idle.eq((hold == 0) & soc.idle & ~rxf.r_rdy & ~txf.r_rdy),
        ]
        return m
