"""Link efficiency of batched FORWARD on 64-element vectors, measured on the wire."""

import numpy as np
import pytest
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS
from ohmflow.host.link import LinkDevice
from ohmflow.sim.twin_server import TwinServer


@pytest.fixture(scope="module")
def default_link():
    with TwinServer(PRESETS["default"]) as srv:
        # generous timeout: a retry on a loaded machine would count its bytes twice
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", "default", timeout=120.0)
        yield dev
        dev.close()


@pytest.mark.parametrize("batch", [1, 8, 31, 32, 1024])
def test_forward_carries_at_least_85_percent_codes(default_link, batch):
    """DAC codes out plus ADC codes in, over every byte on the wire (headers, CRCs, status,
    saturation counts) as counted by the link itself."""
    dev = default_link
    before = dict(dev.stats)
    y, _ = dev.forward(0, np.ones((batch, 64), dtype=np.int64))
    wire = (dev.stats["bytes_out"] - before["bytes_out"]) + (dev.stats["bytes_in"] -
                                                           before["bytes_in"])
    frames = dev.stats["frames"] - before["frames"]
    assert dev.stats["retries"] == before["retries"]
    codes = batch * 64 * 1 + y.size * 2  # int8 DAC codes, int16 ADC codes
    assert codes / wire >= 0.85
    assert frames == -(-batch // 31)  # as few frames as max_payload allows
    if batch >= 31:
        assert codes / wire >= 0.98


def test_encoder_sizes_agree_with_the_link():
    cfg = PRESETS["default"]
    req = P.payload_size(P.command("FORWARD").request, {"b": 31, "n": 64}, cfg)
    rep = 1 + P.payload_size(P.command("FORWARD").reply, {"b": 31, "m": 64}, cfg)
    assert req == 5 + 31 * 64 and rep == 1 + 4 + 31 * 64 * 2 + 31
    assert max(req, rep) <= P.TABLE.max_payload
    assert 1 + P.payload_size(P.command("FORWARD").reply, {"b": 32, "m": 64}, cfg) > \
        P.TABLE.max_payload
