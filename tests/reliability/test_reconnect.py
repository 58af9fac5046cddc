"""A client that leaves a partial frame behind never corrupts the next one, however loaded the
machine: the emulator server lets the device drop the partial frame by its own byte timeout (in
simulated cycles) before it serves the next client, and the host resyncs a socket link by
reconnecting. The machine's load is modelled by stopping the server most of the time, so that
the byte timeout takes many times longer in wall time than the host's timeouts."""

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest
import serial
from ohmflow.emulator import protocol as P
from ohmflow.host.device import TwinDevice
from ohmflow.host.link import EmulatorDevice, LinkDevice

from tests.link.faults import FaultyPort

from .conftest import CFG


class Throttle:
    """Stop a process 20 ms out of every 25 ms (a heavily loaded machine) while in the block."""

    def __init__(self, pid: int):
        self.pid, self.done = pid, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(0.020)
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        os.kill(self.pid, signal.SIGCONT)


@pytest.fixture
def loaded(tiny_server):
    """The tiny server on a heavily loaded machine."""
    with Throttle(tiny_server[0].pid):
        yield tiny_server


def half_frame() -> bytes:
    """The first half of a PROGRAM frame: a complete header, half its payload."""
    w = np.arange(CFG.rows * CFG.cols) - 10
    payload = P.encode_payload(P.command("PROGRAM").request,
                               {"tile": 0, "k0": 0, "k": w.size, "w": w}, CFG)
    frame = P.encode_frame(P.command("PROGRAM").opcode, 1, payload)
    return frame[: P.OVERHEAD + len(payload) // 2]


@pytest.mark.parametrize("run", range(3))
def test_a_client_right_after_one_that_left_mid_frame_gets_clean_replies(loaded, run):
    _proc, port = loaded
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(half_frame())
        time.sleep(0.05)
    url = f"socket://127.0.0.1:{port}"
    dev = LinkDevice(serial.serial_for_url(url, timeout=0.02), CFG, url=url, timeout=60.0,
                     retries=0)  # no retry to hide behind: the first reply must be right
    try:
        dev.connect()
        rng = np.random.default_rng(run)
        w = rng.integers(-5000, 5000, (CFG.cols, CFG.rows))
        ref = TwinDevice(CFG)
        dev.program(1, w)
        ref.program(1, w)
        np.testing.assert_array_equal(dev.read(0), ref.read(0))  # the half PROGRAM: nothing
        np.testing.assert_array_equal(dev.read(1), w)
        assert dev.stats["retries"] == 0
    finally:
        dev.close()


def test_a_truncated_request_costs_one_retry_on_a_loaded_machine(tiny_exe):
    """The host waits while the emulator's clock runs (the device's own byte timeout, answered
    TRUNCATED), then resends once on a new connection."""
    dev = EmulatorDevice(CFG, server="verilator", timeout=1.0, retries=1)
    try:
        fp = dev.port = FaultyPort(dev.port)
        ref = TwinDevice(CFG)
        x, d = np.full((3, CFG.rows), 200), np.full((3, CFG.cols), -256)
        with Throttle(dev.process.pid):
            fp.plan("UPDATE", "truncate_request")
            dev.update(0, x, d)
            ref.update(0, x, d)
            assert fp.done == ["truncate_request"] and dev.stats["retries"] == 1
            np.testing.assert_array_equal(dev.read(0), ref.read(0))  # applied exactly once
    finally:
        dev.close()
