"""Faults on the link: lost, corrupt and late frames, dead servers, missing ports."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import serial
from ohmflow.emulator.config import PRESETS
from ohmflow.host.device import DeviceError, TwinDevice
from ohmflow.host.link import EmulatorDevice, LinkDevice, start_twin_server, stop_process

from tests.link.faults import FaultyPort

CFG = PRESETS["tiny"]


def faulty(server, stall=0.5, timeout=0.3):
    url = f"socket://127.0.0.1:{server.port}"
    port = FaultyPort(serial.serial_for_url(url, timeout=0.02), stall=stall)
    dev = LinkDevice(port, CFG, url=url, timeout=timeout, retries=3)
    dev.connect()
    return dev, port


def ops(dev):
    """State-changing and reading calls; returns what they give back."""
    rng = np.random.default_rng(1)
    dev.program(0, rng.integers(-5000, 5000, (7, 5)))
    y = dev.forward(0, rng.integers(-63, 64, (6, 5)))
    dev.update(0, rng.integers(-256, 257, (4, 5)), rng.integers(-256, 257, (4, 7)))
    dev.pulse(0, "col", 3, rng.integers(-63, 64, 5))
    return y, dev.read(0), dev.counters()


ACTIONS = ["drop_reply", "corrupt_reply", "stall_reply", "drop_request", "corrupt_request",
           "truncate_request"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("target", ["UPDATE", "PULSE", "FORWARD", "READ"])
def test_one_fault_is_retried_and_applied_exactly_once(tiny_server, action, target):
    dev, port = faulty(tiny_server)
    port.plan(target, action)
    got = ops(dev)
    want = ops(TwinDevice(CFG))
    assert port.done == [action]
    assert dev.stats["retries"] >= 1
    np.testing.assert_array_equal(got[0][0], want[0][0])
    np.testing.assert_array_equal(got[1], want[1])  # UPDATE/PULSE applied once, not twice
    assert got[2] == want[2]


def test_persistent_loss_gives_a_clear_error_in_bounded_time(tiny_server):
    dev, port = faulty(tiny_server)
    for _ in range(dev.retries + 1):
        port.plan("INFO", "drop_reply")
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"no valid reply to INFO .* 4 attempts: no reply within"):
        dev.info()
    assert time.monotonic() - t0 < 4 * (0.3 + 1.5)
    assert dev.info().config == CFG  # the link works again afterwards


def test_silent_peer_times_out():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="no valid reply to INFO"):
            LinkDevice.open(f"socket://127.0.0.1:{port}", "tiny", timeout=0.2, retries=1)
        assert time.monotonic() - t0 < 3


def test_server_killed_mid_command_is_a_clear_error():
    proc, port = start_twin_server(CFG)
    try:
        url = f"socket://127.0.0.1:{port}"
        fp = FaultyPort(serial.serial_for_url(url, timeout=0.02))
        dev = LinkDevice(fp, CFG, url=url, timeout=0.3)
        dev.connect()
        os.kill(proc.pid, signal.SIGSTOP)  # it cannot answer before it dies (no race)
        fp.plan("FORWARD", "on_send", proc.kill)  # dies with the request unanswered
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="link lost during FORWARD"):
            dev.forward(0, np.zeros((3, 5), dtype=int))
        assert time.monotonic() - t0 < 5
        with pytest.raises(DeviceError):
            dev.info()
    finally:
        stop_process(proc)


def test_server_stopped_then_used():
    with EmulatorDevice(CFG, server="twin", timeout=0.3) as dev:
        stop_process(dev.process)
        t0 = time.monotonic()
        with pytest.raises(DeviceError):
            dev.read(0)
        assert time.monotonic() - t0 < 5


def test_missing_port_names_it_and_suggests_alternatives():
    with pytest.raises(DeviceError, match=r"/dev/ttyUSB_ohmflow_missing.*Serial ports on this "
                                          r"machine.*socket://127.0.0.1:PORT"):
        LinkDevice.open("/dev/ttyUSB_ohmflow_missing", "tiny")
    with socket.create_server(("127.0.0.1", 0)) as s:
        free = s.getsockname()[1]
    with pytest.raises(DeviceError, match="Connection refused"):
        LinkDevice.open(f"socket://127.0.0.1:{free}", "tiny")


def test_verilator_server_unavailable_is_a_clear_error(monkeypatch):
    import ohmflow.sim

    monkeypatch.setitem(sys.modules, "ohmflow.sim.verilator_server", None)
    monkeypatch.delattr(ohmflow.sim, "verilator_server", raising=False)  # imported by another test
    with pytest.raises(DeviceError, match="server='twin'"):
        EmulatorDevice(CFG)


def test_garbage_from_the_device_is_skipped(tiny_server):
    dev, port = faulty(tiny_server)
    port._out += b"\x00\xa5\x13 noise"  # bytes before the next reply
    assert dev.info().config == CFG


def test_server_survives_clients_that_vanish(tiny_server):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", tiny_server.port)) as s:
            s.sendall(b"\xa5\x5a\x01\x00\x00")  # half a header, then gone
    dev = LinkDevice.open(f"socket://127.0.0.1:{tiny_server.port}", "tiny", timeout=0.5)
    assert dev.info().config == CFG
    dev.close()


def test_a_twin_server_compiles_its_kernels_before_it_listens(tmp_path):
    """With numba's cache empty (a fresh clone), the first UPDATE took 2.5 s to compile, longer
    than a link waits before it resends. A new server has compiled everything its FORWARD,
    BACKWARD, UPDATE and PULSE frames run: serving them compiles nothing more."""
    script = """
import numpy as np
from numba.core.registry import CPUDispatcher
from ohmflow.emulator import coincidence, kernels
from ohmflow.sim.twin_server import TwinServer
from ohmflow.host.link import LinkDevice

def compiled():
    return {n: len(f.signatures) for mod in (kernels, coincidence) for n, f in vars(mod).items()
            if isinstance(f, CPUDispatcher)}

with TwinServer("tiny") as srv:
    before = compiled()
    dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", "tiny")
    rng = np.random.default_rng(2)
    dev.program(0, rng.integers(-5000, 5000, (7, 5)))
    dev.forward(0, rng.integers(-63, 64, (6, 5)))
    dev.backward(0, rng.integers(-63, 64, (3, 7)))
    dev.update(0, rng.integers(-256, 257, (4, 5)), rng.integers(-256, 257, (4, 7)))
    dev.pulse(0, "col", 3, rng.integers(-63, 64, 5))
    dev.pulse(0, "row", 2, rng.integers(-63, 64, 7))
    dev.close()
    assert sum(before.values()) > 0, before
    assert compiled() == before, (before, compiled())
print("ok")
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
