"""Fixtures: a twin server on 127.0.0.1 and link devices connected to it."""

import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host.link import LinkDevice
from ohmflow.sim.twin_server import TwinServer


@pytest.fixture
def tiny_server():
    with TwinServer(PRESETS["tiny"]) as srv:
        yield srv


@pytest.fixture
def tiny_link(tiny_server):
    dev = LinkDevice.open(f"socket://127.0.0.1:{tiny_server.port}", "tiny", timeout=0.3)
    yield dev
    dev.close()
