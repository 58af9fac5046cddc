"""The board core (design + LEDs) in the Amaranth simulator, through its UART pins."""

from __future__ import annotations

import dataclasses
import random

import pytest
from amaranth.sim import Simulator
from ohmflow.boards import BOARDS
from ohmflow.boards.top import BoardCore, BoardTop
from ohmflow.emulator.config import PRESETS

from .line import decode, exchange, levels_of


def run_core(core: BoardCore, rx: list[int], extra: int) -> dict[str, list[int]]:
    """Drive ``rx`` into the core's rx pin then idle ``extra`` clocks; the trace of the tx pin
    (``line``) and of every LED."""
    trace: dict[str, list[int]] = {n: [] for n in ("line", *core.LEDS)}

    async def tb(ctx):
        for level in rx + [1] * extra:
            ctx.set(core.rx_pin, level)
            await ctx.tick()
            trace["line"].append(ctx.get(core.tx_pin))
            for n in core.LEDS:
                trace[n].append(ctx.get(getattr(core, f"led_{n}")))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return trace


def small_cfg():
    return dataclasses.replace(PRESETS["tiny"], clock_hz=64)


def test_loopback_echoes_and_lights_activity():
    rng = random.Random(6)
    data = bytes(rng.randrange(256) for _ in range(24)) + b"\x00\xff\x55"
    divisor = 4
    core = BoardCore("loopback", small_cfg(), divisor, prescale=2)
    trace = run_core(core, levels_of(data, divisor), extra=40 * divisor)
    assert decode(trace["line"], divisor) == data
    assert any(trace["rx"]) and any(trace["tx"]) and any(trace["busy"])
    assert not any(trace["error"])
    # activity LEDs go dark again once the line is idle for 7 ticks of 4 clocks
    assert trace["rx"][-1] == trace["tx"][-1] == trace["busy"][-1] == 0
    # alive: the top bit of a 6-bit counter (clock_hz 64) toggles every 32 clocks
    edges = [k for k in range(1, len(trace["alive"])) if trace["alive"][k] != trace["alive"][k - 1]]
    assert edges and all(b - a == 32 for a, b in zip(edges, edges[1:], strict=False))


def test_framing_error_latches_the_error_led():
    divisor = 4
    core = BoardCore("loopback", small_cfg(), divisor, prescale=2)
    rx = levels_of(b"\x12", divisor) + levels_of(b"\x34", divisor, stop=0) + [1] * 20 \
        + levels_of(b"\x56", divisor)
    trace = run_core(core, rx, extra=200 * divisor)
    assert decode(trace["line"], divisor) == b"\x12\x56"  # the broken byte is dropped
    first = trace["error"].index(1)
    assert first > 10 * divisor and all(trace["error"][first:])


def test_led_prescale_default_is_visible():
    for b in BOARDS.values():
        tick_s = 2 ** BoardCore.default_prescale(b.clock_hz) / b.clock_hz
        assert 0.003 < tick_s < 0.02  # an activity LED stays lit 6-7 ticks: about 20-130 ms


def test_board_top_rejects_a_config_at_another_clock():
    b = BOARDS["icebreaker"]
    with pytest.raises(ValueError, match="PLL makes"):
        BoardTop(b, dataclasses.replace(PRESETS["icebreaker"], clock_hz=12_000_000))
    with pytest.raises(ValueError, match="unknown design"):
        BoardTop(b, design="blinky")


def test_loopback_returns_a_protocol_frame_intact():
    from ohmflow.emulator import protocol as P

    frame = P.encode_frame(P.command("INFO").opcode, 7, b"")
    divisor = BOARDS["icebreaker"].divisor
    core = BoardCore("loopback", small_cfg(), divisor, prescale=2)
    got = exchange(core, frame, divisor, lambda b: len(b) >= len(frame), 20 * len(frame) * divisor)
    (parsed,) = P.FrameParser().feed(got)
    assert (parsed.opcode, parsed.seq, parsed.payload) == (P.command("INFO").opcode, 7, b"")
