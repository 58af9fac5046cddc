"""The UART against a bit-level line model, in the Amaranth simulator."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator
from ohmflow.hdl.link.uart import UART, uart_divisor

from .uart_model import decode, encode


def run(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def drive_rx(dut: UART, levels: list[int], ready=lambda k: True):
    """A testbench driving ``levels`` into rx_pin; returns (bytes, framing errors, overruns)."""
    got, events = [], {"ferr": 0, "overrun": 0}

    async def tb(ctx):
        for k, level in enumerate(levels):
            ctx.set(dut.rx_pin, level)
            ctx.set(dut.rx.ready, ready(k))
            if ctx.get(dut.rx.valid) and ctx.get(dut.rx.ready):
                got.append(ctx.get(dut.rx.payload))
            events["ferr"] += ctx.get(dut.rx_ferr)
            events["overrun"] += ctx.get(dut.rx_overrun)
            await ctx.tick()

    return tb, got, events


@pytest.mark.parametrize("divisor", [4, 7, 17])
def test_tx_bit_timing(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(12)] + [0x00, 0xFF, 0x55]
    dut = UART(divisor)
    levels = []

    async def tb(ctx):
        assert ctx.get(dut.tx_pin) == 1
        for byte in data:
            ctx.set(dut.tx.payload, byte)
            ctx.set(dut.tx.valid, 1)
            while True:
                ready = ctx.get(dut.tx.ready)
                levels.append(ctx.get(dut.tx_pin))
                await ctx.tick()
                if ready:
                    break
            ctx.set(dut.tx.valid, 0)
            for _ in range(rng.choice([0, 0, 3])):  # back to back, or a gap
                levels.append(ctx.get(dut.tx_pin))
                await ctx.tick()
        for _ in range(12 * divisor):
            levels.append(ctx.get(dut.tx_pin))
            await ctx.tick()

    run(dut, tb)
    assert decode(levels, divisor) == data


@pytest.mark.parametrize("divisor,error", [(4, 0.0), (8, -0.03), (8, 0.03), (17, 0.04),
                                           (17, -0.04)])
def test_rx_baud_tolerance(divisor, error):
    rng = random.Random(divisor * 100 + int(error * 100))
    data = [rng.randrange(256) for _ in range(16)] + [0x00, 0xFF]
    levels = encode(data, divisor * (1 + error), idle=0.0)
    dut = UART(divisor)
    tb, got, events = drive_rx(dut, levels)
    run(dut, tb)
    assert got == data
    assert events == {"ferr": 0, "overrun": 0}


def test_rx_framing_error_and_break():
    div = 8
    levels = encode([0x41, (0x42, 0), 0x43], div, idle=1.0)
    levels += [0] * (30 * div) + encode([0x44], div, idle=1.0)  # a break, then a byte
    dut = UART(div)
    tb, got, events = drive_rx(dut, levels)
    run(dut, tb)
    assert got == [0x41, 0x43, 0x44]
    assert events["ferr"] == 2 and events["overrun"] == 0


def test_rx_ignores_glitch():
    div = 16
    levels = [1] * 10 + [0] * (div // 2 - 3) + [1] * (3 * div) + encode([0x5A], div)
    dut = UART(div)
    tb, got, events = drive_rx(dut, levels)
    run(dut, tb)
    assert got == [0x5A] and events["ferr"] == 0


def test_rx_holds_byte_and_reports_overrun():
    div = 5
    levels = encode([0x11, 0x22, 0x33], div)
    stall = len(encode([0x11, 0x22], div)) - 2 * div  # refuse until the second byte is done
    dut = UART(div)
    tb, got, events = drive_rx(dut, levels + [1] * 20, ready=lambda k: k > stall)
    run(dut, tb)
    assert got == [0x11, 0x33]
    assert events["overrun"] == 1


def test_loopback():
    div = 6
    top = Module()
    top.submodules.uart = uart = UART(div)
    top.d.comb += uart.rx_pin.eq(uart.tx_pin)
    data = bytes(random.Random(1).randrange(256) for _ in range(20))
    got = []

    async def tb(ctx):
        ctx.set(uart.rx.ready, 1)
        pending = list(data)
        for _ in range(len(data) * 10 * div + 50):
            ctx.set(uart.tx.valid, bool(pending))
            ctx.set(uart.tx.payload, pending[0] if pending else 0)
            if pending and ctx.get(uart.tx.ready):
                pending.pop(0)
            if ctx.get(uart.rx.valid):
                got.append(ctx.get(uart.rx.payload))
            await ctx.tick()

    run(top, tb)
    assert bytes(got) == data


def test_divisor():
    assert uart_divisor(50_000_000, 3_000_000) == 17
    assert uart_divisor(12_000_000, 3_000_000) == 4
    assert uart_divisor(24_000_000, 115_200) == 208
    with pytest.raises(ValueError, match="too slow"):
        uart_divisor(8_000_000, 3_000_000)
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(25_000_000, 3_000_000)


def test_divisor_type():
    with pytest.raises(TypeError):
        UART(3)
