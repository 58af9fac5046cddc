"""A link device with time and temperature (config.TIME_ENGINES) drifts and decays as the twin;
one of an engine without them refuses ADVANCE and those settings with the reason, and changes
nothing."""

import numpy as np
import pytest
from ohmflow.emulator.config import TIME_ENGINES
from ohmflow.host.device import DeviceError


def test_link_refuses_time_and_temperature(tiny_link, monkeypatch):
    from ohmflow.emulator import config as C

    # the tiny chip's engine taken out of TIME_ENGINES: an engine without time and temperature
    monkeypatch.setattr(C, "TIME_ENGINES", tuple(e for e in TIME_ENGINES if e != "tile"))
    assert tiny_link.config.engine not in C.TIME_ENGINES
    before = tiny_link.settings()
    with pytest.raises(DeviceError, match="has no chip time, drift, decay or temperature"):
        tiny_link.advance(1.0)
    with pytest.raises(DeviceError, match="drift_nu, temperature: the tile engine"):
        tiny_link.configure(temperature=400, drift_nu=3000)
    with pytest.raises(DeviceError, match="config.TIME_ENGINES"):
        tiny_link.load_device_key(7)
    assert tiny_link.refresh_settings() == before
    tiny_link.configure(bl=9)  # the defaults of time and temperature go through as before
    assert tiny_link.refresh_settings().bl == 9
    assert np.array_equal(tiny_link.read(0), np.zeros((7, 5)))


@pytest.fixture
def timed_link():
    """A link device to the reference executor of the tiny chip, its engine (the tile) among
    config.TIME_ENGINES."""
    from ohmflow.host.link import LinkDevice
    from ohmflow.sim.twin_server import TwinServer

    assert "tile" in TIME_ENGINES
    with TwinServer("tiny") as srv:
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", "tiny", timeout=2.0)
        yield dev, srv.executor.twin
        dev.close()


def test_a_link_device_with_time_drifts_and_decays_as_the_twin(timed_link):
    """configure (T = 350 K, drift with spread, decay), load_device_key, advance by 1 s, 1 h and
    30 days, reads and updates: the link device ends bit for bit as a TwinDevice given the same
    calls, and reads its time and temperature settings back."""
    from ohmflow.emulator.physics import decay_rate_code, drift_nu_code, dtod_code
    from ohmflow.host.device import TwinDevice

    dev, remote = timed_link
    ref = TwinDevice("tiny")
    rng = np.random.default_rng(8)
    w = rng.integers(-9000, 9000, (7, 5))
    x, d = rng.integers(-200, 201, (4, 5)), rng.integers(-200, 201, (4, 7))
    codes = dict(temperature=350, drift_nu=drift_nu_code(0.06),
                 drift_nu_dtod=dtod_code("drift_nu_dtod", 0.02),
                 decay_rate=decay_rate_code(30 * 86400.0),
                 decay_dtod=dtod_code("decay_dtod", 0.3), seed=3)
    for device in (dev, ref):
        device.configure(**codes)
        device.load_device_key(0xBEEF)
        device.program(1, w)
        device.update(1, x, d)
    for seconds in (1.0, 3600.0, 30 * 86400.0):
        assert dev.advance(seconds) == ref.advance(seconds)
        assert np.array_equal(dev.read(1), ref.read(1))
    assert not np.array_equal(ref.read(1), w)
    y, y_ref = dev.forward(1, x[:, :5] // 4), ref.forward(1, x[:, :5] // 4)
    assert all(np.array_equal(a, b) for a, b in zip(y, y_ref, strict=True))
    assert remote.device_key == 0xBEEF and dev.chip_time_ms() == ref.chip_time_ms()
    s = dev.refresh_settings()
    assert s == ref.settings() and (s.temperature, s.drift_nu) == (350, codes["drift_nu"])
    dev.reset()  # the settings' defaults, the key kept
    assert dev.settings().temperature == 300 and dev.chip_time_ms() == 0
    assert remote.device_key == 0xBEEF


def test_a_link_device_with_time_checks_the_key_before_sending(timed_link):
    dev, remote = timed_link
    frames = dev.stats["frames"]
    with pytest.raises(ValueError, match="device key"):
        dev.load_device_key(2**32)
    assert dev.stats["frames"] == frames and remote.device_key == 0
