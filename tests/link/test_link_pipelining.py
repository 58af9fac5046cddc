"""Frames in flight on a TCP link: the same results as one frame at a time, a bounded window,
and a clear error when a reply in flight is lost."""

import numpy as np
import pytest
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS, DeviceModel
from ohmflow.emulator.fabrication import fabricate
from ohmflow.host.device import DeviceError, TwinDevice
from ohmflow.host.link import WINDOW, LinkDevice
from ohmflow.host.socket_port import SocketPort
from ohmflow.sim.twin_server import TwinServer

CFG = PRESETS["default"]


class WatchedPort(SocketPort):
    """Counts the frames written since the last reply frame was read; can corrupt a reply."""

    def __init__(self, *a, corrupt_reply: int | None = None, **kw):
        super().__init__(*a, **kw)
        self.ahead = self.most_ahead = 0
        self.replies, self.corrupt_reply = 0, corrupt_reply
        self._parser = P.FrameParser()

    def write(self, data: bytes) -> int:
        self.ahead += 1
        self.most_ahead = max(self.most_ahead, self.ahead)
        return super().write(data)

    def read_some(self, want: int) -> bytes:
        data = super().read_some(want)
        for _ in self._parser.feed(data):
            self.replies += 1
            self.ahead -= 1
            if self.replies == self.corrupt_reply:
                data = data[:-1] + bytes((data[-1] ^ 0xFF,))  # its CRC no longer matches
        return data


@pytest.fixture
def server():
    with TwinServer(CFG) as srv:
        yield srv


def _link(server, **kw) -> LinkDevice:
    url = f"socket://127.0.0.1:{server.port}"
    return LinkDevice(WatchedPort(url, 0.02, 2.0, **kw), CFG, url=url, timeout=2.0)


def test_many_frames_in_flight_give_the_twin_results(server):
    dev, twin = _link(server), TwinDevice(CFG)
    dev.connect()
    rng = np.random.default_rng(5)
    dm = fabricate(CFG, DeviceModel.soft_bounds(), 2)
    for d in (dev, twin):
        d.load_device_map(dm)
    assert dev.read_device_map().equals(twin.read_device_map())
    w = rng.integers(-9000, 9000, (CFG.cols, CFG.rows))
    x = rng.integers(-63, 64, (300, CFG.rows))  # several FORWARD frames, more than the window
    xc = rng.integers(-256, 257, (200, CFG.rows))
    dc = rng.integers(-256, 257, (200, CFG.cols))
    for d in (dev, twin):
        d.program(1, w)
        d.update(1, xc, dc)
    for got, want in zip(dev.forward(1, x), twin.forward(1, x), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(dev.read(1), twin.read(1))
    assert dev.counters() == twin.counters()
    assert dev.port.most_ahead == WINDOW  # frames were in flight, never more than the window
    dev.close()


def test_a_lost_reply_in_flight_is_a_clear_error(server):
    dev = _link(server)
    dev.connect()
    dev.port.corrupt_reply = dev.port.replies + 2  # a chunk that ends a FORWARD reply
    x = np.ones((300, CFG.rows), dtype=np.int64)
    with pytest.raises(DeviceError, match=r"no valid reply to FORWARD .*frame [2-9] of 10, sent "
                                          r"with others in flight\): corrupt reply .*cannot be "
                                          "resent"):
        dev.forward(0, x)
    dev.port.corrupt_reply = None
    assert dev.info().config == CFG  # later calls work: the rest in flight is skipped as stale
    dev.close()


def test_a_refused_frame_stops_the_sending(server):
    dev = _link(server)
    dev.connect()
    frames = dev.stats["frames"]
    parts = [dict(tile=0, k0=k0, k=2000, w=np.zeros(2000, dtype=np.int64))
             for k0 in range(0, 20000, 2000)]  # beyond the 64x64 tile from the third on
    with pytest.raises(DeviceError, match="refused PROGRAM"):
        dev._calls("PROGRAM", parts)
    assert dev.stats["frames"] - frames <= 2 + WINDOW  # nothing sent after the refusal came
    assert dev.info().config == CFG
    dev.close()
