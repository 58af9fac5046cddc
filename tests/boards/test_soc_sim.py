"""The board core with the SoC, simulated through its UART pins: INFO reports the board's config,
a corrupted frame lights the error LED; and the reply monitor on its own."""

from __future__ import annotations

import dataclasses

import pytest
from amaranth.sim import Simulator
from ohmflow.boards import BOARDS, board_config
from ohmflow.boards.top import BoardCore, ReplyMonitor
from ohmflow.emulator import protocol as P

from .line import exchange

INFO = P.command("INFO")


def one_reply(got: bytes) -> bool:
    return any(isinstance(f, P.Frame) for f in P.FrameParser().feed(got))


@pytest.mark.slow
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_info_through_the_uart_pins_reports_the_board_config(board):
    b = BOARDS[board]
    cfg = board_config(b)
    core = BoardCore("soc", cfg, b.divisor)
    request = P.encode_frame(INFO.opcode, 0x42, b"")
    # the rv32 engine's firmware first writes the nominal map of every device (about 110,000
    # cycles for the iCEBreaker's 4,096); the request waits in its receive FIFO meanwhile
    boot = 300_000 if cfg.engine == "rv32" else 0
    got = exchange(core, request, b.divisor, one_reply, max_cycles=boot + 200 * 10 * b.divisor)
    (reply,) = P.FrameParser().feed(got)
    assert (reply.opcode, reply.seq) == (INFO.opcode | P.TABLE.reply_flag, 0x42)
    assert reply.payload[0] == P.ST["OK"]
    fields = P.decode_payload(INFO.reply, reply.payload[1:], cfg)
    assert P.config_from_info(fields) == cfg  # including the board's PLL clock
    assert fields["fingerprint"] == cfg.fingerprint()


def test_corrupted_frame_gets_bad_crc_and_latches_the_error_led():
    b = BOARDS["icebreaker"]
    cfg = dataclasses.replace(board_config(b), tiles=1, rows=4, cols=4, lanes=1, name="small")
    frame = bytearray(P.encode_frame(INFO.opcode, 1, b""))
    frame[-1] ^= 0xFF
    core = BoardCore("soc", cfg, b.divisor, prescale=2)
    errors: list[int] = []

    async def watch(ctx):
        async for _, _, led in ctx.tick().sample(core.led_error):
            errors.append(led)

    got = exchange(core, bytes(frame), b.divisor, one_reply, 200 * 10 * b.divisor,
                   extra=watch)
    (reply,) = P.FrameParser().feed(got)
    assert reply.payload[0] == P.ST["BAD_CRC"]
    assert errors[0] == 0 and errors[-1] == 1


def test_reply_monitor_flags_link_errors_only():
    frames = [
        P.encode_reply(0x05, 1, P.ST["OK"], bytes([0xA5, 0x5A, 0x81, 0, 1, 0, 0x01])),
        P.encode_frame(0x01, 2, bytes([P.ST["BAD_CRC"]])),  # a request echoed: not a reply
        P.encode_reply(0x01, 3, P.ST["BAD_CRC"]),
        P.encode_reply(0x10, 4, P.ST["BAD_ARGUMENT"]),  # a command error, not a link error
        P.encode_reply(0x02, 5, P.ST["TRUNCATED"]),
        P.encode_frame(0x82, 6, b""),  # an empty payload carries no status
        P.encode_reply(0x01, 7, P.ST["OK"]),
    ]
    dut = ReplyMonitor()
    flagged: list[int] = []

    async def tb(ctx):
        for k, frame in enumerate(frames):
            for byte in frame:
                ctx.set(dut.valid, 1)
                ctx.set(dut.ready, 1)
                ctx.set(dut.payload, byte)
                if ctx.get(dut.bad):
                    flagged.append(k)
                await ctx.tick()
                ctx.set(dut.valid, 0)  # a gap between bytes
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert flagged == [2, 4]
