"""A link device of an engine without time and temperature (config.TIME_ENGINES) refuses ADVANCE
and those settings with the reason, and changes nothing."""

import numpy as np
import pytest
from ohmflow.emulator.config import TIME_ENGINES
from ohmflow.host.device import DeviceError


def test_link_refuses_time_and_temperature(tiny_link):
    assert tiny_link.config.engine not in TIME_ENGINES
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
