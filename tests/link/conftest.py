"""Fixtures: a twin server on 127.0.0.1 and link devices connected to it."""

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host.device import TwinDevice
from ohmflow.host.link import LinkDevice
from ohmflow.sim.twin_server import TwinServer


@pytest.fixture(scope="session", autouse=True)
def twin_kernels_compiled():
    """Compile the twin's numba kernels before any test times a reply.

    These tests give the link timeouts of 0.2-0.5 s to tell a lost reply from a late one; a
    twin's first read or update compiles its kernels for seconds (with numba's on-disk cache
    empty, as in a fresh clone), so the first fault test to reach one saw every attempt time
    out. The in-process servers share these compiled kernels; server processes load them from
    the cache this writes."""
    for name in ("tiny", "icebreaker"):
        dev = TwinDevice(PRESETS[name])
        rows, cols = PRESETS[name].rows, PRESETS[name].cols
        rng = np.random.default_rng(0)
        dev.program(0, rng.integers(-5000, 5000, (cols, rows)))
        dev.forward(0, rng.integers(-63, 64, (2, rows)))
        dev.backward(0, rng.integers(-63, 64, (2, cols)))
        dev.update(0, rng.integers(-256, 257, (2, rows)), rng.integers(-256, 257, (2, cols)))
        dev.pulse(0, "col", 0, rng.integers(-63, 64, rows))
        dev.pulse(0, "row", 0, rng.integers(-63, 64, cols))
        dev.read(0)
        dev.counters()


@pytest.fixture
def tiny_server():
    with TwinServer(PRESETS["tiny"]) as srv:
        yield srv


@pytest.fixture
def tiny_link(tiny_server):
    dev = LinkDevice.open(f"socket://127.0.0.1:{tiny_server.port}", "tiny", timeout=0.3)
    yield dev
    dev.close()
