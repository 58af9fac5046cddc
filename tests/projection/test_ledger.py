"""CostLedger: attribution of the twin's counter deltas to (layer, phase), totals, JSON."""

import numpy as np
import pytest
from ohmflow.host.device import TwinDevice
from ohmflow.host.ledger import FIELDS, PHASES, CostLedger


@pytest.fixture
def dev():
    d = TwinDevice("tiny")  # 2 tiles of 5 inputs x 7 outputs
    d.configure(shapes=((5, 7), (4, 3)), bl=9)
    return d


def _codes(rng, b, n, m=50):
    return rng.integers(-m, m + 1, size=(b, n))


def test_forward_adds_exact_macs_to_its_phase_only(dev):
    led = CostLedger()
    rng = np.random.default_rng(1)
    b, n_in, n_out = 3, 5, 7
    with led.phase("fc1", "forward", dev, 0):
        dev.forward(0, _codes(rng, b, n_in))
    e = led.get("fc1", "forward")
    assert e["macs"] == b * n_in * n_out
    assert e["dac_conversions"] == b * n_in
    assert e["adc_conversions"] == b * n_out
    assert e["fwd_vectors"] == b and e["bwd_vectors"] == 0
    assert e["calls"] == 1 and e["weight_elems"] == n_in * n_out
    assert e["update_samples"] == e["pulses"] == e["pulse_slots"] == e["device_updates"] == 0
    for phase in ("backward", "update"):
        assert all(v == 0 for v in led.get("fc1", phase).values())
    assert led.layers == ["fc1"]
    assert led.shapes == {"fc1": (5, 7)}


def test_backward_and_update_attribution(dev):
    led = CostLedger()
    rng = np.random.default_rng(2)
    with led.phase("fc2", "backward", dev, 1):
        dev.backward(1, _codes(rng, 4, 3))
    b = led.get("fc2", "backward")
    assert (b["bwd_vectors"], b["macs"], b["dac_conversions"], b["adc_conversions"]) == (
        4, 4 * 3 * 4, 4 * 3, 4 * 4)
    before = dev.counters()[1]["pulses"]
    with led.phase("fc2", "update", dev, 1):
        dev.update(1, _codes(rng, 6, 4, 200), _codes(rng, 6, 3, 200))
    u = led.get("fc2", "update")
    assert u["update_samples"] == 6
    assert u["pulses"] == dev.counters()[1]["pulses"] - before > 0
    assert u["pulse_slots"] == 6 * 9  # update_samples * bl
    assert u["device_updates"] == 6 * 4 * 3
    assert u["update_values"] == 6 * (4 + 3)
    assert u["macs"] == 0


def test_updates_are_charged_the_bl_they_ran_with(dev):
    """An update writes its BL inside the block (as `AnalogTile.apply_update` does): the slots
    are those of that BL, not of the one in force when the block began."""
    led = CostLedger()
    rng = np.random.default_rng(3)
    with led.phase("fc2", "update", dev, 1):
        dev.configure(bl=21)
        dev.update(1, _codes(rng, 5, 4, 200), _codes(rng, 5, 3, 200))
    assert dev.settings().bl == 21
    assert led.get("fc2", "update")["pulse_slots"] == 5 * 21


def test_other_tiles_are_not_attributed(dev):
    led = CostLedger()
    rng = np.random.default_rng(3)
    with led.phase("fc1", "forward", dev, 0):
        dev.forward(1, _codes(rng, 2, 4))  # work on tile 1 inside a tile-0 block
    assert led.get("fc1", "forward")["macs"] == 0


def test_totals_and_by_phase(dev):
    led = CostLedger()
    rng = np.random.default_rng(4)
    for _ in range(2):
        with led.phase("fc1", "forward", dev, 0):
            dev.forward(0, _codes(rng, 3, 5))
        with led.phase("fc2", "forward", dev, 1):
            dev.forward(1, _codes(rng, 3, 4))
    fwd = led.by_phase()["forward"]
    assert fwd["macs"] == 2 * (3 * 5 * 7 + 3 * 4 * 3)
    assert fwd["calls"] == 4
    assert led.totals()["macs"] == fwd["macs"]
    assert led.by_phase()["update"]["macs"] == 0
    assert led.emulator_wall_s("forward") > 0
    assert led.fpga_time_s() is None  # the twin reports no cycles


def test_cycles_give_fpga_time():
    led = CostLedger(clock_hz=50e6)
    led.add("fc1", "forward", {"cycles": 5000, "macs": 10})
    led.add("fc1", "update", {"cycles": 2500})
    assert led.fpga_time_s() == pytest.approx(7500 / 50e6)
    assert led.fpga_time_s("update") == pytest.approx(2500 / 50e6)


def test_json_round_trip(dev, tmp_path):
    led = CostLedger()
    rng = np.random.default_rng(5)
    with led.phase("fc1", "forward", dev, 0):
        dev.forward(0, _codes(rng, 2, 5))
    with led.phase("fc1", "update", dev, 0):
        dev.update(0, _codes(rng, 2, 5), _codes(rng, 2, 7))
    again = CostLedger.from_json(led.to_json())
    assert again.to_dict() == led.to_dict()
    led.save(tmp_path / "ledger.json")
    loaded = CostLedger.load(tmp_path / "ledger.json")
    assert loaded.to_dict() == led.to_dict()
    assert loaded.clock_hz == dev.config.clock_hz
    assert set(loaded.get("fc1", "update")) == set(FIELDS)


def test_bad_inputs(dev):
    led = CostLedger()
    with pytest.raises(ValueError, match="'pulses'.*non-negative"):
        led.add("fc1", "forward", {"pulses": -1})
    with pytest.raises(ValueError, match="'macs'.*integer"):
        led.add("fc1", "forward", {"macs": 1.5})
    with pytest.raises(ValueError, match="unknown counter"):
        led.add("fc1", "forward", {"flops": 1})
    with pytest.raises(ValueError, match="phase must be one of"):
        led.add("fc1", "inference", {"macs": 1})
    with pytest.raises(ValueError, match="phase must be one of"), led.phase("fc1", "fwd", dev, 0):
        pass
    with pytest.raises(ValueError, match="must not nest"):
        with led.phase("a", "forward", dev, 0):
            with led.phase("b", "forward", dev, 1):
                pass
    dev.forward(0, np.zeros((2, 5), dtype=int))
    with pytest.raises(ValueError, match="went down"), led.phase("fc1", "forward", dev, 0):
        dev.reset()
    with pytest.raises(ValueError, match="format"):
        CostLedger.from_dict({"entries": []})
    with pytest.raises(ValueError, match="clock_hz"):
        CostLedger(clock_hz=0)
    assert PHASES == ("forward", "backward", "update")


def test_phases_attribute_each_tile_as_one_phase_per_call(dev):
    """Pulse ops on two tiles in one `phases` block: each layer gets what one `phase` block per
    op gives (calls, weight_elems, pulse ops and slots); bad parts are refused."""
    rng = np.random.default_rng(3)
    ops = [(0, int(rng.integers(0, 7)), rng.integers(-5, 6, size=5)) for _ in range(3)]
    ops += [(1, int(rng.integers(0, 3)), rng.integers(-5, 6, size=4)) for _ in range(2)]
    one, many = CostLedger(), CostLedger()
    twin2 = TwinDevice("tiny")
    twin2.configure(shapes=((5, 7), (4, 3)), bl=9)
    for tile, j, c in ops:
        with one.phase(f"fc{tile}", "update", dev, tile):
            dev.pulse(tile, "col", j, c)
    with many.phases("update", twin2, [("fc0", 0, 3), ("fc1", 1, 2)]):
        twin2.pulse_lines("col", *zip(*ops, strict=True))
    assert many.entries == one.entries
    assert one.get("fc0", "update")["calls"] == 3
    assert one.get("fc1", "update")["weight_elems"] == 2 * 4 * 3
    assert np.array_equal(dev.read(0), twin2.read(0))
    with pytest.raises(ValueError, match="calls must be an integer >= 1"):
        many.phases("update", twin2, [("fc0", 0, 0)])
    with pytest.raises(ValueError, match="each tile may appear once"):
        many.phases("update", twin2, [("fc0", 0, 1), ("fc1", 0, 1)])


def test_numpy_integer_counters_are_written_as_ints(dev):
    """A device whose counters are numpy integers: the deltas are the same and the ledger's
    JSON holds plain integers."""
    class NumpyCounters(TwinDevice):
        def tile_counters(self, tile):
            return {k: np.int64(v) for k, v in super().tile_counters(tile).items()}

    numpy_dev = NumpyCounters("tiny")
    numpy_dev.configure(shapes=((5, 7), (4, 3)), bl=9)
    led, ref = CostLedger(), CostLedger()
    for d, ledger in ((numpy_dev, led), (dev, ref)):
        with ledger.phase("fc1", "forward", d, 0):
            d.forward(0, _codes(np.random.default_rng(6), 3, 5))
    assert led.to_dict()["entries"][0]["counts"] == ref.to_dict()["entries"][0]["counts"]
    assert all(type(v) is int for v in led.to_dict()["totals"].values())
    assert CostLedger.from_json(led.to_json()).get("fc1", "forward")["macs"] == 3 * 5 * 7
