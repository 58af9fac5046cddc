"""LinkDevice over real loopback TCP against TwinDevice: identical results for every operation."""

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS, DeviceModel
from ohmflow.emulator.fabrication import fabricate
from ohmflow.host.device import ConfigMismatch, TwinDevice, open_device
from ohmflow.host.link import EmulatorDevice, LinkDevice
from ohmflow.sim.twin_server import TwinServer


def same(a, b):
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


def exercise(devs, cfg, rng):
    """Apply the same calls to every device; assert identical results after each."""
    def both(method, *args, **kw):
        out = [getattr(d, method)(*args, **kw) for d in devs]
        for o in out[1:]:
            if hasattr(o, "equals"):
                assert o.equals(out[0]), method
            else:
                assert same(o, out[0]) if not isinstance(o, list | dict) else o == out[0], method
        return out[0]

    dm = fabricate(cfg, DeviceModel.soft_bounds(), 3)
    both("load_device_map", dm)
    both("read_device_map")
    one = fabricate(cfg, DeviceModel(), 8).tile(0)
    both("load_device_map", one, 1)
    both("read_device_map", 1)
    both("configure", seed=123, bl=17, out_bits=8)
    both("configure", shapes=[(cfg.rows - 1, cfg.cols), (cfg.rows, cfg.cols - 2)] +
         [(cfg.rows, cfg.cols)] * (cfg.tiles - 2))
    both("settings")
    for t in range(cfg.tiles):
        n_in, n_out = devs[0].settings().shapes[t]
        both("program", t, rng.integers(-9000, 9000, (n_out, n_in)))
        both("read", t)
        both("forward", t, rng.integers(-63, 64, (45, n_in)))
        both("backward", t, rng.integers(-63, 64, (33, n_out)))
        both("update", t, rng.integers(-256, 257, (20, n_in)), rng.integers(-256, 257, (20, n_out)))
        both("pulse", t, "row", n_in - 1, rng.integers(-63, 64, n_out))
        both("pulse", t, "col", 0, rng.integers(-63, 64, n_in))
        both("read", t)
    both("counters")
    both("reset")
    both("settings")
    both("read", 0)
    both("counters")
    both("read_device_map", 0)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_every_operation_matches_the_twin(name):
    cfg = PRESETS[name]
    with TwinServer(cfg) as srv:
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", cfg, timeout=1.0)
        try:
            exercise([TwinDevice(cfg), dev], cfg, np.random.default_rng(0))
            assert dev.stats["retries"] == 0
        finally:
            dev.close()


def test_info_and_open_device(tiny_server):
    url = f"socket://127.0.0.1:{tiny_server.port}"
    with open_device(url, "tiny") as dev:
        info = dev.info()
        assert info.config == PRESETS["tiny"] and info.fingerprint == PRESETS["tiny"].fingerprint()
        assert info.backend == "link"
    with pytest.raises(ConfigMismatch, match="rows"):
        LinkDevice.open(url, "default")


def test_bad_input_raises_like_the_twin(tiny_link):
    twin = TwinDevice("tiny")
    calls = [("forward", (0, np.zeros((2, 4), dtype=int))), ("forward", (0, np.full((1, 5), 64))),
             ("forward", (2, np.zeros((1, 5), dtype=int))), ("forward", (0, np.zeros((0, 5)))),
             ("update", (0, np.zeros((1, 5), dtype=int), np.zeros((2, 7), dtype=int))),
             ("pulse", (0, "diag", 0, [0] * 7)), ("pulse", (0, "row", 5, [0] * 7)),
             ("program", (0, np.full((7, 5), 0.5)))]
    for method, args in calls:
        for d in (twin, tiny_link):
            with pytest.raises(ValueError):
                getattr(d, method)(*args)
    for d in (twin, tiny_link):
        with pytest.raises(ValueError):
            d.configure(in_bits=99)
    assert np.array_equal(tiny_link.read(0), twin.read(0))
    assert tiny_link.counters() == twin.counters()
    for d in (twin, tiny_link):
        for bad in (-1, 2, True, 0.0):
            with pytest.raises(ValueError, match="tile must be"):
                d.tile_counters(bad)


def test_tile_counters_reads_one_tile(tiny_link):
    twin = TwinDevice("tiny")
    x = np.random.default_rng(3).integers(-63, 64, (3, 5))
    for d in (twin, tiny_link):
        d.forward(1, x)
    for t in range(2):
        frames = tiny_link.stats["frames"]
        assert tiny_link.tile_counters(t) == twin.tile_counters(t) == twin.counters()[t]
        assert tiny_link.stats["frames"] == frames + 1  # one COUNTERS frame, not one per tile
    assert twin.tile_counters(1)["fwd_vectors"] - twin.tile_counters(0)["fwd_vectors"] == 3


def test_counter_readings_are_reused_until_a_command_could_change_them(tiny_link):
    twin = TwinDevice("tiny")
    rng = np.random.default_rng(4)

    def check(tile, frames_sent):
        before = tiny_link.stats["frames"]
        assert tiny_link.tile_counters(tile) == twin.tile_counters(tile)
        assert tiny_link.stats["frames"] == before + frames_sent

    x = rng.integers(-63, 64, (2, 5))
    for d in (twin, tiny_link):
        d.forward(0, x)
    check(0, 1)
    check(0, 0)  # nothing happened since: the reading stands
    tiny_link.tile_counters(0)["fwd_vectors"] = -1  # a caller's copy, not the cached reading
    check(0, 0)
    check(1, 1)
    for d in (twin, tiny_link):
        d.forward(1, x)
        d.configure(bl=9)  # settings leave the counters alone
    check(0, 0)  # an operation on tile 1 leaves tile 0's reading valid
    check(1, 1)
    samples = tiny_link.tile_counters(0)["update_samples"]
    tiny_link.update(0, rng.integers(-255, 256, (2, 5)), rng.integers(-255, 256, (2, 7)))
    before = tiny_link.stats["frames"]
    assert tiny_link.tile_counters(0)["update_samples"] == samples + 2
    assert tiny_link.stats["frames"] == before + 1
    for d in (twin, tiny_link):
        d.reset()  # counters to 0 on every tile
    check(0, 1)
    check(1, 1)


def test_emulator_device_runs_the_twin_server_process():
    cfg = PRESETS["tiny"]
    dm = fabricate(cfg, DeviceModel(), 5)
    with EmulatorDevice(cfg, server="twin", device_map=dm, timeout=1.0) as dev:
        assert dev.info().backend == "twin-server"
        ref = TwinDevice(cfg, device_map=dm)
        x = np.arange(-10, 10).reshape(4, 5)
        for d in (dev, ref):
            d.program(0, np.full((7, 5), 3000))
        assert same(dev.forward(0, x), ref.forward(0, x))
        proc = dev.process
    assert proc.poll() is not None  # closing the device stopped the server


def test_step_shape_tables_over_the_link(tiny_link):
    """LOAD_SHAPE / READ_SHAPE (numerics §5.4.1): both engines (the tile's `tiny`, an rv32
    chip) hold a table and read it back; a malformed one is refused by the device."""
    import dataclasses

    from ohmflow.emulator.step_shape import linear_shape, step_shape
    from ohmflow.host.link import BadArgument

    table = step_shape(DeviceModel(model="PowStep"))
    tiny_link.load_step_shape(linear_shape())
    assert tiny_link.read_step_shape().equals(linear_shape())
    tiny_link.load_step_shape(table)
    assert tiny_link.read_step_shape().equals(table)
    with pytest.raises(BadArgument, match="LOAD_SHAPE"):
        tiny_link._call("LOAD_SHAPE", mode=3, up=table.up, down=table.down)
    assert tiny_link.read_step_shape().equals(table)
    rv32 = dataclasses.replace(PRESETS["tiny"], lanes=1, engine="rv32", name="tiny-rv32")
    with TwinServer(rv32) as srv:
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", rv32, timeout=0.3)
        try:
            dev.load_step_shape(table)
            assert dev.read_step_shape().equals(table)
        finally:
            dev.close()
