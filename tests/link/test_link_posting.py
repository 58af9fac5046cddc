"""Posted frames (`LinkDevice.posting`): UPDATE frames and counter reads sent without waiting for
their replies give the same device state, results and counters as calls that wait."""

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host.device import DeviceError, TwinDevice
from ohmflow.host.link import LinkDevice
from ohmflow.host.link_posted import PostedCounters
from ohmflow.sim.twin_server import TwinServer

CFG = PRESETS["tiny"]


def ops(dev, rng, inside):
    """Updates, counter reads and reads; ``inside`` is the block the updates run in."""
    dev.program(0, rng.integers(-3000, 3000, (7, 5)))
    seen = []
    with inside():
        for _ in range(3):
            dev.update(0, rng.integers(-256, 257, (4, 5)), rng.integers(-256, 257, (4, 7)))
            seen.append(dev.tile_counters(0))
            dev.update(0, rng.integers(-256, 257, (2, 5)), rng.integers(-256, 257, (2, 7)))
        y = dev.forward(0, rng.integers(-63, 64, (6, 5)))[0]
        seen.append(dev.tile_counters(0))
    return y, dev.read(0), [dict(c) for c in seen], seen


def test_posted_updates_and_counters_equal_the_twin(tiny_link):
    want = ops(TwinDevice(CFG), np.random.default_rng(3), lambda: _Nothing())
    posted_while_open = []

    class Watch:
        def __enter__(self):
            self.block = tiny_link.posting()
            self.block.__enter__()

        def __exit__(self, *exc):
            posted_while_open.append(len(tiny_link._posted))
            return self.block.__exit__(*exc)

    got = ops(tiny_link, np.random.default_rng(3), Watch)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])  # every UPDATE applied once
    assert got[2] == want[2]  # each counter reading is the state right after its command
    assert all(isinstance(c, PostedCounters) for c in got[3])  # the reads were posted
    assert posted_while_open == [1]  # the last counter read was still in flight
    assert not tiny_link._posted


def test_posting_waits_on_a_serial_style_link(tiny_server):
    import serial

    url = f"socket://127.0.0.1:{tiny_server.port}"
    dev = LinkDevice(serial.serial_for_url(url, timeout=0.02), CFG, url=url, timeout=0.3)
    dev.connect()
    assert not dev.pipelined
    with dev.posting():
        dev.update(0, np.ones((2, 5), dtype=int), np.ones((2, 7), dtype=int))
        assert not dev._posted
        assert isinstance(dev.tile_counters(0), dict)
    dev.close()


def test_a_lost_link_under_posted_frames_is_a_clear_error():
    srv = TwinServer(CFG)
    port = srv.start()
    dev = LinkDevice.open(f"socket://127.0.0.1:{port}", CFG, timeout=0.3)
    with pytest.raises(DeviceError, match="posted UPDATE|link lost during UPDATE"):
        with dev.posting():
            srv.stop()  # the frame may still go into the socket's buffer; no reply comes
            dev.update(0, np.ones((2, 5), dtype=int), np.ones((2, 7), dtype=int))
    dev.close()


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
