"""The SoC of the ``rv32`` engine: the chip as firmware on a small core, for the iCE40UP5K.

The lane-parallel tile (`ohmflow.hdl.soc.SoC`) needs about 3.4 times the UP5K's logic cells
with any config; this SoC serves the same bytes (docs/protocol.md) and computes the same
integers (docs/numerics.md) with an `RV32Core` and the firmware of `ohmflow.hdl.rv32.firmware`:

- block RAM at 0: the firmware image, sized to it, read only (code and constants);
- SPRAM: four 16 K x 16 iCE40 SPRAMs as two 32-bit banks (`SpramBank`): frame buffers, device
  states and maps, the stack;
- I/O (`ohmflow.hdl.rv32.core_map.IO`): a 512-byte receive FIFO, the transmit register, the byte
  timeout's silence timer, the link's CRC-32 over the bytes taken and sent, a cycle counter;
- the crossbar read (`CrossbarRead`): the exact sums of the forward and transposed reads from
  the states in SPRAM, one product a cycle, when the config's sums fit its 32 bits.

The ports are the tile SoC's (``rx``, ``tx``, ``idle``; or ``rx_pin``, ``tx_pin`` behind a
`UART`), so the Verilator emulator and the boards carry either. ``idle`` is high while the core
waits for a byte between frames with nothing left to send: a simulator may sleep until the next
byte. A received byte waits in the FIFO while the firmware is busy; the engine never answers
BUSY (a host that keeps stop and wait, as the protocol asks, never meets it).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.hdl.lib.checked import Checked
from ohmflow.hdl.link.framing import crc32_update
from ohmflow.hdl.link.uart import UART
from ohmflow.hdl.rv32 import core_map, crossbar_read
from ohmflow.hdl.rv32.core import RV32Core
from ohmflow.hdl.rv32.crossbar_read import CrossbarRead
from ohmflow.hdl.rv32.spram import WORDS, SpramBank

__all__ = ["CoreSoC", "RX_FIFO_DEPTH"]

RX_FIFO_DEPTH = 512  #: received bytes the SoC holds while the firmware is busy (one block RAM)


class CoreSoC(Checked, wiring.Component):
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
        from ohmflow.hdl.rv32 import firmware

        self.cfg = get_config(cfg)
        self.firmware = firmware.build(self.cfg)
        self.uart_divisor = uart_divisor
        timeout = P.constants(self.cfg)["BYTE_TIMEOUT_CYCLES"]
        self.byte_timeout = timeout if byte_timeout is None else byte_timeout
        if uart_divisor is None:
            ports = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))}
        else:
            ports = {"rx_pin": In(1, init=1), "tx_pin": Out(1, init=1)}
        super().__init__({**ports, "idle": Out(1), "trap": Out(1)})

    @classmethod
    def check(cls, cfg: ChipConfig | str, *, byte_timeout: int | None = None, **_kw) -> None:
        cfg = get_config(cfg)
        if cfg.engine != "rv32":
            raise ValueError(f"config {cfg.name!r} has engine {cfg.engine!r}; "
                             "CoreSoC runs the 'rv32' engine (use ohmflow.hdl.soc.SoC)")
        if byte_timeout is not None and byte_timeout < 2:
            raise ValueError(f"byte_timeout must be at least 2 cycles, got {byte_timeout}")

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = RV32Core()
        bus = core.bus
        region = bus.daddr[core_map.REGION_SHIFT:]  # of a load or store (fetches: block RAM)
        word = bus.addr[2:]
        access = bus.re | bus.we  # an address cycle (the core issues none while it waits)
        data = access & ~bus.fetch  # a load or store (fetches read the block RAM only)
        last_region = Signal(4)
        last_bank = Signal()
        with m.If(data):
            m.d.sync += [last_region.eq(region), last_bank.eq(bus.daddr[16])]
        with m.Elif(access):
            m.d.sync += last_region.eq(core_map.BRAM_BASE >> core_map.REGION_SHIFT)

        # block RAM: the firmware image (code and constants), read only
        fw = self.firmware
        depth = max(2, fw.bram_bytes // 4)
        m.submodules.bram = bram = Memory(shape=32, depth=depth, init=fw.words)
        b_rd = bram.read_port()
        is_bram = region == core_map.BRAM_BASE >> core_map.REGION_SHIFT
        m.d.comb += [b_rd.addr.eq(word), b_rd.en.eq(bus.fetch | is_bram & bus.re)]

        # the crossbar read: the forward and transposed sums from the states in SPRAM
        xb = None
        if crossbar_read.fits(self.cfg):
            m.submodules.crossbar = xb = CrossbarRead()

        # SPRAM: two banks of 64 KiB, bank by address bit 16; the crossbar read borrows them
        # while the core waits for its sum
        assert core_map.SPRAM_BYTES == 2 * 4 * WORDS
        is_spram = region == core_map.SPRAM_BASE >> core_map.REGION_SHIFT
        banks = []
        xb_bank = Signal()
        for k in range(2):
            m.submodules[f"spram{k}"] = bank = SpramBank()
            m.d.comb += [bank.addr.eq(bus.daddr[2:16]), bank.wdata.eq(bus.wdata),
                         bank.wmask.eq(bus.wmask), bank.we.eq(bus.we),
                         bank.en.eq(is_spram & (bus.daddr[16] == k) & data)]
            if xb is not None:
                with m.If(xb.mem_en):
                    m.d.comb += [bank.addr.eq(xb.mem_addr[2:16]), bank.we.eq(0),
                                 bank.en.eq(xb.mem_addr[16] == k)]
            banks.append(bank)
        if xb is not None:
            with m.If(xb.mem_en):
                m.d.sync += xb_bank.eq(xb.mem_addr[16])
            m.d.comb += xb.mem_rdata.eq(Mux(xb_bank, banks[1].rdata, banks[0].rdata))

        # I/O: an access is registered in its address cycle and completed in its data cycle(s),
        # from registers only
        is_io = (region == core_map.IO_BASE >> core_map.REGION_SHIFT) & ~bus.fetch
        io = {name: off >> 2 for name, off in core_map.IO.items()}
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        reads = ("RX", "RX_WAIT", "RX_TIMED")
        writes = ("TX", "CRC", "XB_LINE", "XB_CODE", "XB_STRIDE", "XB_SUM_AT")
        pend = {n: Signal(name=f"pend_{n.lower()}") for n in reads + writes}
        io_wdata = Signal(32, reset_less=True)
        io_word = Signal(32)
        tx_full = Signal()
        tx_byte = Signal(8)
        cycles = Signal(32)
        crc = Signal(32)
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

        reg = bus.daddr[2:6]
        wait = Signal()
        xb_started = Signal()  # XB_SUM_AT: the sum was started in an earlier data cycle
        with m.If(~wait):  # the data cycle completes: the access is done (a new one may start)
            m.d.sync += [p.eq(0) for p in pend.values()]
            m.d.sync += xb_started.eq(0)
        with m.If(is_io & bus.re):
            m.d.sync += [pend[n].eq(reg == io[n]) for n in reads]
            sources = {"TX": tx_full, "CRC": crc, "CYCLES": cycles}
            if xb is not None:
                sources["XB_SUM"] = xb.total
            value = Const(0, 32)
            for n, v in sources.items():
                value = Mux(reg == io[n], v, value)
            m.d.sync += io_word.eq(value)
        with m.If(is_io & bus.we):
            m.d.sync += [io_wdata.eq(bus.wdata), *(pend[n].eq(reg == io[n]) for n in writes)]
        popping = pend["RX"] | pend["RX_WAIT"] | pend["RX_TIMED"]
        xb_wait = 0
        if xb is not None:
            m.d.comb += [xb.line.eq(io_wdata), xb.line_we.eq(pend["XB_LINE"]),
                         xb.code.eq(io_wdata[:16]), xb.code_we.eq(pend["XB_CODE"]),
                         xb.stride.eq(io_wdata), xb.stride_we.eq(pend["XB_STRIDE"]),
                         xb.start.eq(io_wdata), xb.start_we.eq(pend["XB_SUM_AT"] & ~xb_started)]
            with m.If(pend["XB_SUM_AT"]):
                m.d.sync += xb_started.eq(1)
            xb_wait = pend["XB_SUM_AT"] & (~xb_started | xb.busy)
        m.d.comb += wait.eq((pend["RX_WAIT"] & ~fifo.r_rdy)
                            | (pend["RX_TIMED"] & ~fifo.r_rdy & ~expired)
                            | (pend["TX"] & tx_full) | xb_wait)
        m.d.comb += [bus.wait.eq(wait), fifo.r_en.eq(popping & ~wait)]
        # the link's CRC over the bytes the firmware takes and sends
        with m.If(fifo.r_en & fifo.r_rdy):
            m.d.sync += crc.eq(crc32_update(crc, fifo.r_data))
        with m.If(pend["TX"] & ~tx_full):
            m.d.sync += crc.eq(crc32_update(crc, io_wdata[:8]))
        with m.If(pend["CRC"]):
            m.d.sync += crc.eq(io_wdata)

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
            m.d.sync += [tx_byte.eq(io_wdata[:8]), tx_full.eq(1)]

        m.d.comb += [self.idle.eq(pend["RX_WAIT"] & ~fifo.r_rdy & ~tx_full),
                     self.trap.eq(core.trap)]
        return m
