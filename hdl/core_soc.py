"""The SoC of the ``rv32`` engine: the chip as firmware on a small core, for the iCE40UP5K.

The lane-parallel tile (`ohmflow.hdl.soc.SoC`) needs about 3.4 times the UP5K's logic cells
with any config; this SoC serves the same bytes (docs/protocol.md) and computes the same
integers (docs/numerics.md) with an `RV32Core` and the firmware of `ohmflow.hdl.firmware`:

- block RAM at 0: the firmware image, sized to it, read only (code and constants);
- SPRAM: four 16 K x 16 iCE40 SPRAMs as two 32-bit banks (`SpramBank`): frame buffers, device
  states and maps, the stack;
- I/O (`ohmflow.hdl.core_map.IO`): a 512-byte receive FIFO, the transmit register, the byte
  timeout's silence timer, the link's CRC-32 over the bytes taken and sent, a cycle counter.

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
from ohmflow.hdl.framing import crc32_update
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
        access = bus.re | bus.we  # an address cycle (the core issues none while it waits)
        data = access & ~bus.fetch  # a load or store (fetches read the block RAM only)
        last_region = Signal(4)
        last_bank = Signal()
        with m.If(data):
            m.d.sync += [last_region.eq(region), last_bank.eq(bus.addr[16])]
        with m.Elif(access):
            m.d.sync += last_region.eq(core_map.BRAM_BASE >> core_map.REGION_SHIFT)

        # block RAM: the firmware image (code and constants), read only
        fw = self.firmware
        depth = max(2, fw.bram_bytes // 4)
        m.submodules.bram = bram = Memory(shape=32, depth=depth, init=fw.words)
        b_rd = bram.read_port()
        is_bram = region == core_map.BRAM_BASE >> core_map.REGION_SHIFT
        m.d.comb += [b_rd.addr.eq(word), b_rd.en.eq(bus.fetch | is_bram & bus.re)]

        # SPRAM: two banks of 64 KiB, bank by address bit 16
        assert core_map.SPRAM_BYTES == 2 * 4 * WORDS
        is_spram = region == core_map.SPRAM_BASE >> core_map.REGION_SHIFT
        banks = []
        for k in range(2):
            m.submodules[f"spram{k}"] = bank = SpramBank()
            m.d.comb += [bank.addr.eq(bus.addr[2:16]), bank.wdata.eq(bus.wdata),
                         bank.wmask.eq(bus.wmask), bank.we.eq(bus.we),
                         bank.en.eq(is_spram & (bus.addr[16] == k) & data)]
            banks.append(bank)

        # I/O: the link and the cycle counter. An access is registered in its address cycle
        # and completed in its data cycle(s), from registers only.
        is_io = (region == core_map.IO_BASE >> core_map.REGION_SHIFT) & ~bus.fetch
        io = {name: off >> 2 for name, off in core_map.IO.items()}
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        pend = {n: Signal(name=f"pend_{n.lower()}") for n in ("RX", "RX_WAIT", "RX_TIMED", "TX")}
        tx_full = Signal()
        tx_byte = Signal(8)
        tx_next = Signal(8)
        cycles = Signal(32)
        io_word = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        # the byte timeout: ``expired`` once the line has been silent for byte_timeout cycles
        silent = Signal(range(self.byte_timeout))
        expired = Signal()
        with m.If(fifo.w_en & fifo.w_rdy):
            m.d.sync += [silent.eq(0), expired.eq(0)]
        with m.Elif(~expired):
            m.d.sync += silent.eq(silent + 1)
            with m.If(silent == self.byte_timeout - 1):
                m.d.sync += expired.eq(1)

        crc = Signal(32)
        reg = bus.addr[2:5]
        wait = Signal()
        with m.If(~wait):  # the data cycle completes: the access is done (a new one may start)
            m.d.sync += [p.eq(0) for p in pend.values()]
        with m.If(is_io & bus.re):
            m.d.sync += [pend["RX"].eq(reg == io["RX"]), pend["RX_WAIT"].eq(reg == io["RX_WAIT"]),
                         pend["RX_TIMED"].eq(reg == io["RX_TIMED"]),
                         io_word.eq(Mux(reg == io["TX"], tx_full,
                                        Mux(reg == io["CRC"], crc, cycles)))]
        with m.If(is_io & bus.we & (reg == io["TX"])):
            m.d.sync += [pend["TX"].eq(1), tx_next.eq(bus.wdata[:8])]
        popping = pend["RX"] | pend["RX_WAIT"] | pend["RX_TIMED"]
        m.d.comb += wait.eq((pend["RX_WAIT"] & ~fifo.r_rdy)
                            | (pend["RX_TIMED"] & ~fifo.r_rdy & ~expired)
                            | (pend["TX"] & tx_full))
        m.d.comb += [bus.wait.eq(wait), fifo.r_en.eq(popping & ~wait)]
        # the link's CRC over the bytes the firmware takes and sends
        with m.If(fifo.r_en & fifo.r_rdy):
            m.d.sync += crc.eq(crc32_update(crc, fifo.r_data))
        with m.If(pend["TX"] & ~tx_full):
            m.d.sync += crc.eq(crc32_update(crc, tx_next))
        with m.If(is_io & bus.we & (reg == io["CRC"])):
            m.d.sync += crc.eq(bus.wdata)

        with m.Switch(last_region):
            with m.Case(core_map.BRAM_BASE >> core_map.REGION_SHIFT):
                m.d.comb += bus.rdata.eq(b_rd.data)
            with m.Case(core_map.SPRAM_BASE >> core_map.REGION_SHIFT):
                m.d.comb += bus.rdata.eq(Mux(last_bank, banks[1].rdata, banks[0].rdata))
            with m.Default():
                m.d.comb += bus.rdata.eq(Mux(popping, fifo.r_data | (fifo.r_rdy << 8),
                                             io_word))

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
        with m.If(pend["TX"] & ~tx_full):  # never in the cycle a byte leaves (tx.valid is low)
            m.d.sync += [tx_byte.eq(tx_next), tx_full.eq(1)]

        m.d.comb += [self.idle.eq(pend["RX_WAIT"] & ~fifo.r_rdy & ~tx_full),
                     self.trap.eq(core.trap)]
        return m
