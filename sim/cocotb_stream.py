"""cocotb building blocks for `lib.stream` byte ports: clock/reset, a source and a sink.

Both sides act between falling edges: they drive their outputs after a falling edge, read the
design's answer (the source waits for ``ReadOnly``, since a consumer's ready may depend on valid)
and count a transfer when valid and ready are both high; it happens at the next rising edge. This
does not depend on when a simulator reports values around the active edge. Idle cycles (source)
and back-pressure (sink) come from a ``pause`` callable returning True for cycles to hold off.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, ReadOnly, RisingEdge

__all__ = ["start_clock", "reset", "random_pause", "StreamSource", "StreamSink"]

PERIOD_NS = 10


def start_clock(dut) -> None:
    Clock(dut.clk, PERIOD_NS, unit="ns").start()


async def reset(dut, cycles: int = 3) -> None:
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


def random_pause(rng: random.Random, fraction: float, burst: int = 8) -> Callable[[], bool]:
    """Pauses in bursts of up to ``burst`` cycles, about ``fraction`` of the time."""
    state = {"left": 0}

    def pause() -> bool:
        if state["left"]:
            state["left"] -= 1
            return True
        if rng.random() < fraction / max(1.0, burst / 2):
            state["left"] = rng.randrange(burst)
            return True
        return False

    return pause


class StreamSource:
    """Drives bytes into a stream port ``<prefix>__valid/ready/payload`` of the design."""

    def __init__(self, dut, prefix: str, pause: Callable[[], bool] | None = None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.pause = pause or (lambda: False)
        self.queue: bytearray = bytearray()
        self.sent = 0
        self._idle = Event()
        self._wake = Event()
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def send(self, data: bytes) -> None:
        self.queue += data
        self._idle.clear()
        self._wake.set()

    async def wait_sent(self) -> None:
        """Until every queued byte was taken by the design."""
        if self.queue:
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clk)
            if not self.queue:  # nothing to send: sleep instead of waking every cycle
                self.valid.value = 0
                self._wake.clear()
                await self._wake.wait()
                await FallingEdge(self.clk)
            drive = bool(self.queue) and not self.pause()
            self.valid.value = int(drive)
            self.payload.value = self.queue[0] if drive else 0
            await ReadOnly()
            if drive and self.ready.value == 1:
                del self.queue[0]
                self.sent += 1
                if not self.queue:
                    self._idle.set()


class StreamSink:
    """Takes bytes from a stream port of the design; ``on_byte`` hears each one."""

    def __init__(self, dut, prefix: str, pause: Callable[[], bool] | None = None,
                 on_byte: Callable[[int], None] | None = None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.pause = pause or (lambda: False)
        self.on_byte = on_byte
        self.received = bytearray()
        self.ready.value = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        # One trigger per cycle: a producer's valid and payload never depend on ready (the
        # stream rules), so after the falling edge they are what the rising edge will see.
        while True:
            await FallingEdge(self.clk)
            take = not self.pause()
            self.ready.value = int(take)
            if take and self.valid.value == 1:
                byte = int(self.payload.value)
                self.received.append(byte)
                if self.on_byte:
                    self.on_byte(byte)

    async def wait_bytes(self, n: int, max_cycles: int) -> bytes:
        """Until ``n`` bytes in all were received; AssertionError after ``max_cycles``."""
        for _ in range(max_cycles):
            if len(self.received) >= n:
                return bytes(self.received[:n])
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout: {len(self.received)} of {n} bytes after {max_cycles} "
                             "cycles")
