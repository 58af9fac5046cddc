"""The SoC of the ``rv32`` engine: the chip as firmware on a small core, for the iCE40UP5K.

The lane-parallel tile (`ohmflow.hdl.soc.SoC`) needs about 3.4 times the UP5K's logic cells
with any config; this SoC serves the same bytes (docs/protocol.md) and computes the same
integers (docs/numerics.md) with an `RV32Core` and the firmware of `ohmflow.hdl.firmware`:

- block RAM at 0: the firmware image, sized to it (the core fetches and reads constants here);
- SPRAM: four 16 K x 16 iCE40 SPRAMs as two 32-bit banks (`SpramBank`): frame buffers, device
  states and maps, the stack;
- I/O (`ohmflow.hdl.core_map.IO`): a 512-byte receive FIFO, the transmit register, the byte
  timeout's silence timer and a cycle counter.

The ports are the tile SoC's (``rx``, ``tx``, ``idle``; or ``rx_pin``, ``tx_pin`` behind a
`UART`), so the Verilator emulator and the boards carry either. ``idle`` is high while the core
waits for a byte between frames with nothing left to send: a simulator may sleep until the next
byte. A received byte waits in the FIFO while the firmware is busy; the engine never answers
BUSY (a host that keeps stop and wait, as the protocol asks, never meets it).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.hdl import core_map
from ohmflow.hdl.rv32 import RV32Core
from ohmflow.hdl.spram import WORDS, SpramBank
from ohmflow.hdl.uart import UART

__all__ = ["CoreSoC", "RX_FIFO_DEPTH"]

RX_FIFO_DEPTH = 512  #: received bytes the SoC holds while the firmware is busy (one block RAM)


class CoreSoC(wiring.Component):
    """The chip as RV32 firmware: `RV32Core`, block RAM, SPRAM, link I/O (+ `UART`).

    Parameters
    ----------
    cfg: a `ChipConfig` with ``engine = "rv32"``, or the name of a preset / TOML file.
    uart_divisor: clocks per bit; given, the link is a UART on ``rx_pin`` / ``tx_pin``.
    byte_timeout: cycles of line silence that drop a partial frame (default: the protocol's).

    Attributes
    ----------
    rx, tx: byte streams of the link (without a UART).
    rx_pin, tx_pin: serial lines (with a UART).
    idle: the core waits for a byte between frames and nothing waits to be sent.
    trap: one-cycle pulse when the core met an instruction it does not execute and restarted.
    """

    def __init__(self, cfg: ChipConfig | str, *, uart_divisor: int | None = None,
                 byte_timeout: int | None = None):
        from ohmflow.hdl import firmware

        self.cfg = get_config(cfg)
        if self.cfg.engine != "rv32":
            self._MustUse__silence = True
            raise ValueError(f"config {self.cfg.name!r} has engine {self.cfg.engine!r}; "
                             "CoreSoC runs the 'rv32' engine (use ohmflow.hdl.soc.SoC)")
        self.firmware = firmware.build(self.cfg)
        self.uart_divisor = uart_divisor
        timeout = P.constants(self.cfg)["BYTE_TIMEOUT_CYCLES"]
        self.byte_timeout = timeout if byte_timeout is None else byte_timeout
        if self.byte_timeout < 2:
            self._MustUse__silence = True
            raise ValueError(f"byte_timeout must be at least 2 cycles, got {self.byte_timeout}")
        if uart_divisor is None:
            ports = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))}
        else:
            ports = {"rx_pin": In(1, init=1), "tx_pin": Out(1, init=1)}
        super().__init__({**ports, "idle": Out(1), "trap": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = RV32Core()
        bus = core.bus
        region = bus.addr[core_map.REGION_SHIFT:]
        word = bus.addr[2:]
        take = bus.ready & (bus.re | bus.we)  # an access this cycle
        last_region = Signal(4)
        last_bank = Signal()
        io_data = Signal(32)
        with m.If(take):
            m.d.sync += [last_region.eq(region), last_bank.eq(bus.addr[16])]

        # block RAM: the image and the firmware's small variables
        fw = self.firmware
        depth = max(2, fw.bram_bytes // 4)
        m.submodules.bram = bram = Memory(shape=32, depth=depth, init=fw.words)
        b_rd, b_wr = bram.read_port(), bram.write_port(granularity=8)
        is_bram = region == core_map.BRAM_BASE >> core_map.REGION_SHIFT
        m.d.comb += [b_rd.addr.eq(word), b_rd.en.eq(is_bram & bus.re), b_wr.addr.eq(word),
                     b_wr.data.eq(bus.wdata), b_wr.en.eq(bus.wmask & (is_bram & bus.we)
                                                          .replicate(4))]

        # SPRAM: two banks of 64 KiB, bank by address bit 16
        assert core_map.SPRAM_BYTES == 2 * 4 * WORDS
        is_spram = region == core_map.SPRAM_BASE >> core_map.REGION_SHIFT
        banks = []
        for k in range(2):
            m.submodules[f"spram{k}"] = bank = SpramBank()
            m.d.comb += [bank.addr.eq(bus.addr[2:16]), bank.wdata.eq(bus.wdata),
                         bank.wmask.eq(bus.wmask), bank.we.eq(bus.we),
                         bank.en.eq(is_spram & (bus.addr[16] == k) & (bus.re | bus.we))]
            banks.append(bank)

        # I/O: the link and the cycle counter
        is_io = region == core_map.IO_BASE >> core_map.REGION_SHIFT
        reg = bus.addr[2:5]
        io = {name: off >> 2 for name, off in core_map.IO.items()}
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        tx_full = Signal()
        tx_byte = Signal(8)
        cycles = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        silent = Signal(range(self.byte_timeout + 1))  # cycles since a byte last arrived
        expired = Signal()
        m.d.comb += expired.eq(silent == self.byte_timeout)
        with m.If(fifo.w_en & fifo.w_rdy):
            m.d.sync += silent.eq(0)
        with m.Elif(~expired):
            m.d.sync += silent.eq(silent + 1)

        pop = Signal()
        ready = Signal(init=1)
        with m.If(is_io & bus.re):
            with m.Switch(reg):
                with m.Case(io["RX"]):
                    m.d.comb += pop.eq(fifo.r_rdy)
                with m.Case(io["RX_WAIT"]):
                    m.d.comb += [pop.eq(fifo.r_rdy), ready.eq(fifo.r_rdy)]
                with m.Case(io["RX_TIMED"]):
                    m.d.comb += [pop.eq(fifo.r_rdy), ready.eq(fifo.r_rdy | expired)]
            with m.Switch(reg):
                with m.Case(io["RX"], io["RX_WAIT"], io["RX_TIMED"]):
                    m.d.sync += io_data.eq(fifo.r_data | (fifo.r_rdy << 8))
                with m.Case(io["TX"]):
                    m.d.sync += io_data.eq(tx_full)
                with m.Case(io["CYCLES"]):
                    m.d.sync += io_data.eq(cycles)
        send = is_io & bus.we & (reg == io["TX"])
        with m.If(send):
            m.d.comb += ready.eq(~tx_full)
        m.d.comb += [bus.ready.eq(ready), fifo.r_en.eq(pop)]

        with m.Switch(last_region):
            with m.Case(core_map.BRAM_BASE >> core_map.REGION_SHIFT):
                m.d.comb += bus.rdata.eq(b_rd.data)
            with m.Case(core_map.SPRAM_BASE >> core_map.REGION_SHIFT):
                m.d.comb += bus.rdata.eq(Mux(last_bank, banks[1].rdata, banks[0].rdata))
            with m.Default():
                m.d.comb += bus.rdata.eq(io_data)

        # the link
        if self.uart_divisor is None:
            rx, tx = self.rx, self.tx
            m.d.comb += [fifo.w_data.eq(rx.payload), fifo.w_en.eq(rx.valid),
                         rx.ready.eq(fifo.w_rdy)]
        else:
            m.submodules.uart = uart = UART(self.uart_divisor)
            m.d.comb += [uart.rx_pin.eq(self.rx_pin), self.tx_pin.eq(uart.tx_pin),
                         fifo.w_data.eq(uart.rx.payload), fifo.w_en.eq(uart.rx.valid),
                         uart.rx.ready.eq(fifo.w_rdy)]
            tx = uart.tx
        m.d.comb += [tx.valid.eq(tx_full), tx.payload.eq(tx_byte)]
        with m.If(tx.valid & tx.ready):
            m.d.sync += tx_full.eq(0)
        with m.If(send & ~tx_full):  # never in the cycle a byte leaves (tx.valid is low)
            m.d.sync += [tx_byte.eq(bus.wdata[:8]), tx_full.eq(1)]

        waiting = is_io & bus.re & (reg == io["RX_WAIT"]) & ~fifo.r_rdy
        m.d.comb += [self.idle.eq(waiting & ~tx_full), self.trap.eq(core.trap)]
        return m
