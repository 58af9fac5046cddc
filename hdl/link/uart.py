"""An 8N1 UART with `lib.stream` byte ports: the board's host link.

One start bit (low), eight data bits LSB first, one stop bit (high); the line idles high. Both
directions run from one clock divisor, ``round(clk_hz / baud)`` clocks per bit, so 3 Mbaud needs a
clock of at least 12 MHz (divisor >= 4). The receiver resynchronises the pin, waits half a bit
after the falling edge, checks the start bit is still low (a shorter glitch is ignored) and samples
every bit in its middle; a stop bit that reads low is a framing error: the byte is dropped,
``rx_ferr`` pulses and the receiver waits for the line to go high again (a break is one error).
A received byte waits in a one-byte holding register; when the next byte completes before the
stream took it, the new byte is dropped and ``rx_overrun`` pulses (an 8N1 link has no flow
control: the protocol above must pace itself).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.hdl.lib.checked import Checked

__all__ = ["UART", "uart_divisor", "MIN_DIVISOR"]

#: Smallest clocks-per-bit the receiver supports (mid-bit sampling needs a few clocks per bit).
MIN_DIVISOR = 4


def uart_divisor(clk_hz: int, baud: int) -> int:
    """Clocks per bit for ``baud`` at ``clk_hz``; raises ValueError when the error exceeds 2 %."""
    if clk_hz <= 0 or baud <= 0:
        raise ValueError(f"clock and baud must be positive, got {clk_hz} Hz and {baud} Bd")
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        raise ValueError(f"{clk_hz} Hz is too slow for {baud} Bd: need at least "
                         f"{MIN_DIVISOR} clocks per bit, got {clk_hz / baud:.2f}")
    err = abs(clk_hz / div - baud) / baud
    if err > 0.02:
        raise ValueError(f"{baud} Bd at {clk_hz} Hz is off by {err:.1%} (divisor {div}); "
                         "choose a baud rate closer to clk_hz / n")
    return div


class UART(Checked, wiring.Component):
    """8N1 receiver and transmitter sharing one divisor.

    Parameters
    ----------
    divisor:
        Clocks per bit (see `uart_divisor`), at least `MIN_DIVISOR`.

    Attributes
    ----------
    rx_pin: In(1)
        The serial input (asynchronous; resynchronised inside).
    tx_pin: Out(1)
        The serial output, high when idle.
    rx: Out(stream.Signature(8))
        Received bytes.
    tx: In(stream.Signature(8))
        Bytes to send; ``tx.ready`` is high while the transmitter is idle.
    rx_ferr, rx_overrun: Out(1)
        One-cycle pulses: a framing error, a byte lost because ``rx`` was not taken in time.
    """

    @classmethod
    def check(cls, divisor: int) -> None:
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise TypeError(f"divisor must be an integer >= {MIN_DIVISOR}, got {divisor!r}")

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__({
            "rx_pin": In(1, init=1),
            "tx_pin": Out(1, init=1),
            "rx": Out(stream.Signature(8)),
            "tx": In(stream.Signature(8)),
            "rx_ferr": Out(1),
            "rx_overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        self._elab_tx(m, div)
        self._elab_rx(m, div)
        return m

    def _elab_tx(self, m: Module, div: int) -> None:
        shreg = Signal(10, init=0x3FF)  # stop, data[7:0], start: shifted out LSB first
        bits = Signal(range(11))
        timer = Signal(range(div))
        m.d.comb += [self.tx_pin.eq(shreg[0]), self.tx.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.tx.valid):
                m.d.sync += [shreg.eq((1 << 9) | (self.tx.payload << 1)), bits.eq(10),
                             timer.eq(div - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shreg.eq((1 << 9) | (shreg >> 1)), bits.eq(bits - 1), timer.eq(div - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)

    def _elab_rx(self, m: Module, div: int) -> None:
        pin = Signal(init=1)
        m.submodules.rx_sync = cdc.FFSynchronizer(self.rx_pin, pin, init=1)
        timer = Signal(range(div))
        shreg = Signal(8)
        bit = Signal(range(9))
        hold = Signal(8)
        full = Signal()
        m.d.comb += [self.rx.valid.eq(full), self.rx.payload.eq(hold)]
        with m.If(self.rx.ready):
            m.d.sync += full.eq(0)
        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(~pin):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(pin):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq((pin << 7) | (shreg >> 1)), timer.eq(div - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(pin):
                    with m.If(full & ~self.rx.ready):
                        m.d.comb += self.rx_overrun.eq(1)
                    with m.Else():
                        m.d.sync += [hold.eq(shreg), full.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.rx_ferr.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(pin):
                    m.next = "IDLE"
