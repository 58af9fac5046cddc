"""The Verilator emulator server end to end: pyserial socket:// against the reference device."""

import time

import numpy as np
import pytest
import serial
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import get_config
from ohmflow.sim import verilator_server
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

CONFIG = "tiny"


@pytest.fixture(scope="module")
def exe():
    return verilator_server.build(CONFIG)


@pytest.fixture
def link(exe):
    proc, port = verilator_server.start(exe)
    port_ = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=10)
    yield proc, port_
    port_.close()
    verilator_server.stop(proc)


def call(port, frame: bytes, timeout: float = 20.0) -> P.Frame:
    """Send one frame and return the one reply frame (stop and wait, as the host does)."""
    port.write(frame)
    parser, deadline = P.FrameParser(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = parser.feed(port.read(max(1, port.in_waiting)))
        if got:
            assert len(got) == 1 and not parser.partial, "exactly one reply per frame"
            return got[0]
    raise AssertionError(f"no reply within {timeout} s")


def test_info_forward_update_byte_exact(link):
    _proc, port = link
    cfg = get_config(CONFIG)
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    frames = [gen.frame("INFO"),
              gen.frame("PROGRAM", tile=1, k0=0, k=cfg.rows * cfg.cols,
                        w=rng.integers(-4000, 4000, cfg.rows * cfg.cols))]
    for _ in range(6):
        frames += [gen.frame("FORWARD", tile=1, b=3, n=cfg.rows,
                             x=rng.integers(-20, 21, 3 * cfg.rows)),
                   gen.frame("UPDATE", tile=1, b=2, ni=cfg.rows, nj=cfg.cols,
                             x=rng.integers(-256, 257, 2 * cfg.rows),
                             d=rng.integers(-256, 257, 2 * cfg.cols))]
    frames.append(gen.frame("READ", tile=1, k0=0, k=cfg.rows * cfg.cols))
    for f in frames:
        want = sb.ref.feed(f)
        got = call(port, f)
        assert P.encode_frame(got.opcode, got.seq, got.payload) == want, \
            f"reply to opcode 0x{f[2]:02x} differs"
        assert got.payload[0] == P.ST["OK"]


def test_random_session(link):
    """Random commands (valid, refused, as large as a frame allows), settings and
    retransmissions, one at a time."""
    proc, port = link
    cfg = get_config(CONFIG)
    sb = Scoreboard(cfg)
    gen = FrameGen(cfg, sb.ref.twin, np.random.default_rng(7), max_vectors=8)
    for n in range(300):
        f = gen.last if n and n % 25 == 0 else gen.large() if n % 10 == 3 else gen.command()
        sb.sent(f)
        reply = call(port, f)
        sb.received += P.encode_frame(reply.opcode, reply.seq, reply.payload)
    assert sb.compare() == 300
    st = verilator_server.stats(proc)
    assert st["rx"] > 0 and st["tx"] > 0 and st["cycles"] > 0


def test_truncated_frame_times_out(link):
    """A cut frame is answered TRUNCATED after the byte timeout: the model runs while a frame
    is pending, even with no byte arriving."""
    _proc, port = link
    cfg = get_config(CONFIG)
    frame = P.encode_frame(P.command("FORWARD").opcode, 9, bytes(5 + cfg.rows))
    reply = call(port, frame[:-3], timeout=60.0)
    assert (reply.opcode, reply.seq, reply.payload) == (
        P.command("FORWARD").opcode | P.TABLE.reply_flag, 9, bytes((P.ST["TRUNCATED"],)))
    assert call(port, P.encode_frame(P.command("INFO").opcode, 10, b"")).payload[0] == 0
