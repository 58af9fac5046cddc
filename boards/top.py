"""Board tops: the design behind a UART, status LEDs, and the board's clock and pins.

`BoardCore` is everything clocked by ``sync``: the design (the SoC of the config's engine,
`ohmflow.hdl.soc.make_soc`, with byte-stream ports, or a byte echo for link bring-up) behind a
`UART` on two pins, and the LED drivers. The
UART sits here rather than inside the SoC so that its framing errors and lost bytes reach the
error LED, with the link-level error replies that `ReplyMonitor` sees going out. It has no
platform dependency, so tests simulate it through its UART pins. `BoardTop` adds what only a
board has: the PLL making ``sync`` from the oscillator, the reset button, and the pins of the
UART and LEDs (`ohmflow.boards.BOARDS` names them).

LEDs: ``rx`` and ``tx`` light while the line is active (stretched to be visible), ``busy`` while
the design is not idle, ``error`` latches on the first bad frame (a reply with a link-level
status: bad CRC, too long, truncated, busy; or a UART framing error or lost byte) until reset,
``alive`` blinks at 1-2 Hz while the clock runs and the design is out of reset. On the rv32
engine a trap of its core (a firmware fault) latches ``error`` too.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Module, Mux, Signal
from amaranth.lib import fifo, io, stream, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out
from ohmflow.boards import Board, board_config
from ohmflow.boards.pll import PllClock, pll_params
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.lib.checked import Checked
from ohmflow.hdl.link.uart import UART

__all__ = ["DESIGNS", "Loopback", "ReplyMonitor", "BoardCore", "BoardTop", "make_design"]

#: what a board top can carry: the chip (``soc``) or a UART echo to test the link (``loopback``)
DESIGNS = ("soc", "loopback")


class Loopback(wiring.Component):
    """A byte echo through a 16-byte FIFO: every byte received is sent back.

    Attributes
    ----------
    rx: In(stream.Signature(8)), tx: Out(stream.Signature(8))
        The byte link.
    idle: Out(1)
        No byte waits to be echoed.
    """

    def __init__(self):
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "idle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=8, depth=16)
        m.d.comb += [
            q.w_data.eq(self.rx.payload), q.w_en.eq(self.rx.valid), self.rx.ready.eq(q.w_rdy),
            self.tx.payload.eq(q.r_data), self.tx.valid.eq(q.r_rdy), q.r_en.eq(self.tx.ready),
            self.idle.eq(~q.r_rdy),
        ]
        return m


def make_design(design: str, cfg: ChipConfig):
    """The design a board top carries: byte streams ``rx``, ``tx`` and an ``idle`` output."""
    if design == "loopback":
        return Loopback()
    if design == "soc":
        from ohmflow.hdl.soc import make_soc

        return make_soc(cfg)
    raise ValueError(f"unknown design {design!r}: expected one of {', '.join(DESIGNS)}")


class ReplyMonitor(wiring.Component):
    """Watches the reply bytes the device sends and flags a link-level error reply.

    It follows the frames of `ohmflow.emulator.protocol` (sync, opcode, seq, length, payload,
    CRC); ``bad`` pulses when a reply (opcode with the reply flag) starts with a status that the
    protocol marks link-level: a bad CRC, an over-long or truncated frame, a frame while busy.

    Attributes
    ----------
    valid, ready, payload: In
        The observed byte stream's handshake and byte.
    bad: Out(1)
        One-cycle pulse on a link-level error reply.
    """

    def __init__(self):
        super().__init__({"valid": In(1), "ready": In(1), "payload": In(8), "bad": Out(1)})

    def elaborate(self, platform):
        from ohmflow.emulator import protocol as P

        m = Module()
        sync, flag = P.TABLE.sync, P.TABLE.reply_flag
        link = [s.code for s in P.TABLE.statuses if s.link]
        byte = self.payload
        reply = Signal()
        length = Signal(8)
        left = Signal(range(P.TABLE.max_payload + 5))  # payload bytes after the status, CRC
        with m.If(self.valid & self.ready):
            with m.FSM(name="reply_fsm"):
                with m.State("SYNC0"):
                    with m.If(byte == sync[0]):
                        m.next = "SYNC1"
                with m.State("SYNC1"):
                    with m.If(byte == sync[1]):
                        m.next = "OPCODE"
                    with m.Elif(byte != sync[0]):
                        m.next = "SYNC0"
                with m.State("OPCODE"):
                    m.d.sync += reply.eq((byte & flag) != 0)
                    m.next = "SEQ"
                with m.State("SEQ"):
                    m.next = "LEN0"
                with m.State("LEN0"):
                    m.d.sync += length.eq(byte)
                    m.next = "LEN1"
                with m.State("LEN1"):
                    n = Cat(length, byte)
                    # REST takes left + 1 bytes: the payload after the status byte and the CRC
                    m.d.sync += left.eq(Mux(n == 0, 3, n + 2))
                    m.next = "STATUS"
                    with m.If(n == 0):
                        m.next = "REST"
                with m.State("STATUS"):
                    m.d.comb += self.bad.eq(reply & byte.matches(*link))
                    m.next = "REST"
                with m.State("REST"):  # payload after the status, then 4 CRC bytes
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 0):
                        m.next = "SYNC0"
        return m


def _stretch(m: Module, name: str, trigger, tick):
    """A signal high from ``trigger`` until the 7th ``tick`` after it was last high.

    Three-bit counters on a shared prescaler tick: long free-running counters with reload logic
    are the slowest path of a small design on the iCE40UP5K."""
    count = Signal(3, name=f"{name}_count")
    with m.If(trigger):
        m.d.sync += count.eq(7)
    with m.Elif(tick & (count != 0)):
        m.d.sync += count.eq(count - 1)
    return count != 0


class BoardCore(wiring.Component):
    """The design behind a UART, and the LED drivers, all in ``sync``.

    Parameters
    ----------
    design:
        One of `DESIGNS`.
    cfg:
        The chip config (its ``clock_hz`` times the LEDs).
    divisor:
        UART clocks per bit.
    prescale:
        log2 of the cycles between LED timer ticks (default: about 1/150 s); an activity LED
        stays lit 6 to 7 ticks after the last activity.

    Attributes
    ----------
    rx_pin: In(1), tx_pin: Out(1)
        The UART line.
    led_rx, led_tx, led_busy, led_error, led_alive: Out(1)
        The status LEDs (active high).
    """

    LEDS = ("rx", "tx", "busy", "error", "alive")

    def __init__(self, design: str, cfg: ChipConfig, divisor: int, prescale: int | None = None):
        self.design = design
        self.cfg = cfg
        self.divisor = divisor
        self.prescale = self.default_prescale(cfg.clock_hz) if prescale is None else prescale
        super().__init__({"rx_pin": In(1, init=1), "tx_pin": Out(1, init=1),
                          **{f"led_{n}": Out(1) for n in self.LEDS}})

    @staticmethod
    def default_prescale(clock_hz: int) -> int:
        """log2 of the LED tick period in cycles: about 1/150 s."""
        return max(1, (clock_hz // 150).bit_length())

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = UART(self.divisor)
        m.submodules.design = dut = make_design(self.design, self.cfg)
        m.submodules.replies = mon = ReplyMonitor()
        m.d.comb += [uart.rx_pin.eq(self.rx_pin), self.tx_pin.eq(uart.tx_pin)]
        wiring.connect(m, uart.rx, dut.rx)
        wiring.connect(m, dut.tx, uart.tx)
        m.d.comb += [mon.valid.eq(dut.tx.valid), mon.ready.eq(dut.tx.ready),
                     mon.payload.eq(dut.tx.payload)]
        error = Signal()
        bad = uart.rx_ferr | uart.rx_overrun | mon.bad
        if hasattr(dut, "trap"):  # the rv32 engine: its core restarted on a bad instruction
            bad = bad | dut.trap
        with m.If(bad):
            m.d.sync += error.eq(1)
        # A free-running counter (a plain increment maps onto the carry chain without muxes):
        # its low bits make the LED tick, its top bit blinks at 1-2 Hz.
        top = max(self.prescale + 1, (self.cfg.clock_hz // 2).bit_length())
        free = Signal(top)
        m.d.sync += free.eq(free + 1)
        tick = Signal()
        m.d.sync += tick.eq(free[:self.prescale].all())
        m.d.comb += [
            self.led_rx.eq(_stretch(m, "rx", ~self.rx_pin, tick)),
            self.led_tx.eq(_stretch(m, "tx", ~uart.tx_pin, tick)),
            self.led_busy.eq(_stretch(m, "busy", ~dut.idle, tick)),
            self.led_error.eq(error),
            self.led_alive.eq(free[-1]),
        ]
        return m


class BoardTop(Checked, wiring.Component):
    """A `BoardCore` on a board: PLL clock, reset button, UART and LED pins.

    Parameters
    ----------
    board:
        The board (`ohmflow.boards.BOARDS`).
    cfg:
        The chip config; default: the board's (`ohmflow.boards.board_config`).
    design:
        One of `DESIGNS`.
    """

    def __init__(self, board: Board, cfg: ChipConfig | None = None, design: str = "soc"):
        self.board = board
        self.cfg = board_config(board) if cfg is None else cfg
        self.design = design
        super().__init__({})

    @classmethod
    def check(cls, board: Board, cfg: ChipConfig | None = None, design: str = "soc") -> None:
        problem = cls._check(board, board_config(board) if cfg is None else cfg, design)
        if problem:
            raise ValueError(problem)

    @staticmethod
    def _check(board: Board, cfg: ChipConfig, design: str) -> str | None:
        """What is wrong with building ``design`` at ``cfg`` for ``board``, if anything."""
        try:
            pll_params(board.family, board.osc_hz, board.clock_hz)
            board.divisor  # noqa: B018 - raises if the link's baud rate does not fit the clock
        except ValueError as e:
            return str(e)
        if cfg.clock_hz != board.clock_hz:
            return (f"config {cfg.name!r} is clocked at {cfg.clock_hz} Hz but the {board.name} "
                    f"PLL makes {board.clock_hz} Hz; use board_config()")
        if design not in DESIGNS:
            return f"unknown design {design!r}: expected one of {', '.join(DESIGNS)}"
        return None

    def elaborate(self, platform):
        m = Module()
        b = self.board
        osc = platform.request(platform.default_clk, dir="-")
        if b.family == "ecp5":
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            clk_in = osc_buf.i
        else:
            clk_in = osc.io
        m.submodules.reset_buf = rst_buf = io.Buffer("i", platform.request(*b.reset, dir="-"))
        m.submodules.clock = pll = PllClock(b.family, clk_in, b.osc_hz, b.clock_hz)
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += cd.clk.eq(pll.clk)
        # held in reset until the PLL locks and while the button is pressed
        m.submodules.reset_sync = ResetSynchronizer(~pll.locked | rst_buf.i, domain="sync")

        m.submodules.core = core = BoardCore(self.design, self.cfg, b.divisor)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx_pin.eq(rx_buf.i), tx_buf.o.eq(core.tx_pin)]
        if b.family == "ice40":
            platform.add_resources(platform.break_off_pmod)  # its LEDs show rx, tx and busy
        for sig, res in b.leds:
            m.submodules[f"led_{sig}_buf"] = buf = io.Buffer("o", platform.request(*res,
                                                                                     dir="-"))
            m.d.comb += buf.o.eq(getattr(core, f"led_{sig}"))
        return m
