"""Link faults against the Verilator emulator: lost, corrupt, late and truncated frames, a stalled
server, a killed server, and a training run that survives it through its checkpoint."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import serial
from ohmflow.host import checkpoint
from ohmflow.host.device import DeviceError, TwinDevice
from ohmflow.host.link import EmulatorDevice, LinkDevice
from ohmflow.host.soak import blobs, train_config
from ohmflow.host.trainer import Trainer
from ohmflow.sim import verilator_server

from tests.link.faults import FaultyPort

from .conftest import CFG


def connect(port, timeout=0.5, retries=3, stall=1.0):
    url = f"socket://127.0.0.1:{port}"
    fp = FaultyPort(serial.serial_for_url(url, timeout=0.02), stall=stall)
    dev = LinkDevice(fp, CFG, url=url, timeout=timeout, retries=retries)
    dev.connect()
    return dev, fp


def workload(dev):
    rng = np.random.default_rng(7)
    dev.program(0, rng.integers(-5000, 5000, (CFG.cols, CFG.rows)))
    y = dev.forward(0, rng.integers(-63, 64, (6, CFG.rows)))
    dev.update(0, rng.integers(-256, 257, (4, CFG.rows)), rng.integers(-256, 257, (4, CFG.cols)))
    dev.pulse(0, "row", 2, rng.integers(-63, 64, CFG.cols))
    return y, dev.read(0), [{k: v for k, v in c.items() if k != "cycles"}
                            for c in dev.counters()]


@pytest.mark.parametrize("action", ["drop_reply", "corrupt_reply", "stall_reply",
                                    "drop_request", "corrupt_request", "truncate_request"])
def test_a_fault_on_the_rtl_link_is_retried_and_applied_once(tiny_server, action):
    """A truncated request stays in the gateware's receiver until its byte timeout in emulated
    cycles (seconds of wall time); the host resyncs by reconnecting, and the server serves the
    new connection once the device has dropped the partial frame, so the resend gets through."""
    dev, fp = connect(tiny_server[1])
    fp.plan("UPDATE", action)
    got, want = workload(dev), workload(TwinDevice(CFG))
    assert fp.done == [action] and dev.stats["retries"] >= 1
    np.testing.assert_array_equal(got[0][0], want[0][0])
    np.testing.assert_array_equal(got[1], want[1])  # the UPDATE was applied exactly once
    assert got[2] == want[2]


def test_a_stalled_server_times_out_then_resyncs_with_nothing_applied_twice(tiny_server):
    proc, port = tiny_server
    dev, _ = connect(port, timeout=0.3, retries=2)
    ref = TwinDevice(CFG)
    x, d = np.full((3, CFG.rows), 200), np.full((3, CFG.cols), -256)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"no valid reply to UPDATE .* 3 attempts"):
            dev.update(0, x, d)  # three copies of one frame wait in the socket
        assert time.monotonic() - t0 < 3 * (0.3 + 1.5)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    ref.update(0, x, d)  # executed once; the two resends hit the reply cache
    assert dev.info().config == CFG  # the stale replies are skipped
    np.testing.assert_array_equal(dev.read(0), ref.read(0))
    assert dev.stats["stale"] >= 1


def test_a_short_stall_is_ridden_out_by_retries(tiny_server):
    proc, port = tiny_server
    dev, _ = connect(port, timeout=0.3, retries=4)
    os.kill(proc.pid, signal.SIGSTOP)
    threading.Timer(0.5, os.kill, (proc.pid, signal.SIGCONT)).start()
    y, _ = dev.forward(0, np.ones((2, CFG.rows), dtype=np.int64))
    want, _ = TwinDevice(CFG).forward(0, np.ones((2, CFG.rows), dtype=np.int64))
    np.testing.assert_array_equal(y, want)


def test_a_killed_server_is_a_clear_error_in_bounded_time(tiny_exe):
    proc, port = verilator_server.start(tiny_exe)
    try:
        dev, fp = connect(port)
        fp.plan("FORWARD", "on_send", proc.kill)
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="link lost during FORWARD|no valid reply"):
            dev.forward(0, np.zeros((2, CFG.rows), dtype=np.int64))
        assert time.monotonic() - t0 < 10
        dev.close()
    finally:
        verilator_server.stop(proc)


def test_training_killed_mid_epoch_resumes_bit_identically(tiny_exe, tmp_path):
    cfg, data = train_config(seed=4, epochs=3), blobs(4)
    whole = Trainer(cfg, TwinDevice(CFG), data)
    whole.run()
    proc, port = verilator_server.start(tiny_exe)
    try:
        dev, fp = connect(port, timeout=1.0)
        first = Trainer(cfg, dev, data, out_dir=tmp_path)
        first.run(stop_after=1)
        saved = (tmp_path / checkpoint.FILENAME).read_bytes()
        for _ in range(3):  # the third UPDATE of epoch 2 kills the server
            fp.plan("UPDATE", "on_send", proc.kill if _ == 2 else None)
        with pytest.raises(DeviceError):
            first.run()
        assert first.epoch == 1
        dev.close()
    finally:
        verilator_server.stop(proc)
    assert (tmp_path / checkpoint.FILENAME).read_bytes() == saved
    checkpoint.load(tmp_path / checkpoint.FILENAME)
    with EmulatorDevice(CFG, server="verilator", timeout=5.0) as fresh:
        resumed = Trainer.resume(tmp_path, fresh, data=data)
        assert resumed.epoch == 1
        resumed.run()
        a, b = whole.analog.state(), resumed.analog.state()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        keys = ("analog_train_loss", "analog_test_loss", "analog_test_acc")
        assert [[h[k] for k in keys] for h in whole.history] == \
            [[h[k] for k in keys] for h in resumed.history]
        assert [c["pulses"] for c in whole.counters()] == [c["pulses"] for c in resumed.counters()]
