"""Tile mapping: block grids, placement on chips, mapped layers against float math, several chips
against one chip large enough, and the errors of networks that do not fit."""

import numpy as np
import pytest
from ohmflow.emulator.config import ChipConfig, DeviceModel, get_config
from ohmflow.emulator.fabrication import FIELDS, DeviceMap, fabricate, nominal
from ohmflow.host.chips import Chips, backends_of
from ohmflow.host.device import TwinDevice
from ohmflow.host.layers import AnalogLinear
from ohmflow.host.mapping import MappingParameter, NetworkMap, split_sizes
from ohmflow.host.mlp import AnalogMLP, init_params

TINY = get_config("tiny")  # 2 tiles of 5 inputs x 7 outputs
OUT_BOUND, OUT_MAX, IN_MAX = 12.0, 255, 63


def quiet_chips(n, config=TINY):
    """n twins with nominal devices and no read noise."""
    devs = []
    for _ in range(n):
        d = TwinDevice(config)
        d.load_device_map(nominal(d.config, DeviceModel()))
        d.configure(fwd_sigma=0, bwd_sigma=0)
        devs.append(d)
    return Chips(devs)


@pytest.mark.parametrize("size, most", [(1, 1), (5, 5), (6, 5), (11, 5), (64, 64), (65, 64),
                                        (256, 64), (500, 64), (13, 4)])
def test_splits_are_balanced_and_cover_the_layer(size, most):
    parts = split_sizes(size, most)
    assert sum(parts) == size
    assert max(parts) <= most
    assert len(parts) == -(-size // most)  # as few blocks as the limit allows
    assert max(parts) - min(parts) <= 1


def test_placement_is_round_robin_and_one_block_layers_keep_tile_k():
    one = NetworkMap(get_config("default"), [(64, 32), (32, 10)])
    assert [(b.chip, b.tile, b.name) for b in one.blocks] == [(0, 0, "layer0"), (0, 1, "layer1")]
    m = NetworkMap(get_config("default"), [(64, 256), (256, 128), (128, 10)], chips=4)
    assert m.tiles_needed == 14
    assert [lm.grid for lm in m.layers] == [(1, 4), (4, 2), (2, 1)]
    slots = [(b.chip, b.tile) for b in m.blocks]
    assert len(set(slots)) == 14  # no tile holds two blocks
    assert slots[:5] == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1)]
    # every input and output of every layer is in exactly one block per output/input slice
    for lm in m.layers:
        cover = np.zeros((lm.n_out, lm.n_in), dtype=int)
        for b in lm.blocks:
            cover[b.outputs, b.inputs] += 1
        assert (cover == 1).all()
    assert m.chip_shapes(3) == ((64, 64), (64, 64), (64, 64), (64, 64))
    assert m.chip_shapes(2)[3] == (64, 64)  # unused tile: the whole tile
    assert NetworkMap(get_config("default"), [(64, 256), (256, 128), (128, 10)],
                      chips=None).chips == 4


def test_a_network_that_does_not_fit_names_tiles_chips_and_configs():
    with pytest.raises(ValueError) as e:
        NetworkMap(get_config("default"), [(64, 256), (256, 128), (128, 10)], chips=2)
    msg = str(e.value)
    for words in ("64-256-128-10", "needs 14 tiles of 64x64", "2 chip(s)", "--chips 4",
                  "tiles16"):
        assert words in msg, msg
    with pytest.raises(ValueError, match="max_input_size 70 exceeds"):
        NetworkMap(get_config("default"), [(64, 10)], mapping=MappingParameter(70, 0))
    with pytest.raises(ValueError, match="non-negative integer"):
        MappingParameter(-1, 0)
    assert backends_of("/dev/ttyUSB0,/dev/ttyUSB1", None) == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
    with pytest.raises(ValueError, match="one port or URL per chip"):
        backends_of("/dev/ttyUSB0,/dev/ttyUSB1", 3)
    with pytest.raises(ValueError, match="comma-separated list"):
        backends_of("/dev/ttyUSB0", 2)


def block_tolerance(w, x, layer):
    """Worst-case |error| of a mapped read: per block DAC and ADC rounding (each block has its
    own abs-max scale), summed over the row blocks of each output."""
    tol = np.zeros((len(x), w.shape[0]))
    for b in layer.blocks:
        xs, wb = x[:, b.inputs], w[b.outputs, b.inputs]
        s = np.abs(xs).max(axis=1, keepdims=True)
        dac = 0.5 / IN_MAX * np.abs(wb).sum(axis=1)[None, :]
        adc = 0.5 * OUT_BOUND / OUT_MAX
        tol[:, b.outputs] += s * (dac + adc * 1.001) + 1e-3 * np.abs(xs @ wb.T)
    return tol


@pytest.mark.parametrize("n_in, n_out, chips, mapping", [
    (11, 7, 2, MappingParameter()),        # 3 input blocks (4, 4, 3) on 2 chips
    (9, 13, 2, MappingParameter()),        # 2 x 2 blocks ending mid-tile
    (13, 9, 6, MappingParameter(4, 3)),    # 4 x 3 blocks of at most 4 x 3 on 6 chips
])
def test_mapped_layer_matches_float_within_the_per_block_bound(n_in, n_out, chips, mapping):
    rng = np.random.default_rng(7)
    layer = AnalogLinear(quiet_chips(chips), n_in, n_out, mapping=mapping)
    assert len(layer.blocks) > 1
    layer.set_weights(rng.uniform(-0.4, 0.4, (n_out, n_in)), rng.normal(size=n_out))
    w = layer.weights()
    x = rng.normal(size=(40, n_in)) * rng.uniform(0.05, 3, size=(40, 1))
    err = np.abs(layer.forward(x) - (x @ w.T + layer.bias))
    assert (err <= block_tolerance(w, x, layer)).all()
    assert err.max() > 0
    d = rng.normal(size=(40, n_out))
    err_b = np.abs(layer.backward(d) - d @ w)
    # the transposed read: blocks of one input slice summed over output blocks
    tol = np.zeros_like(err_b)
    for b in layer.blocks:
        ds, wb = d[:, b.outputs], w[b.outputs, b.inputs].T
        s = np.abs(ds).max(axis=1, keepdims=True)
        tol[:, b.inputs] += (s * (0.5 / IN_MAX * np.abs(wb).sum(axis=1)[None, :]
                                  + 0.5 * OUT_BOUND / OUT_MAX * 1.001) + 1e-3 * np.abs(ds @ wb.T))
    assert (err_b <= tol).all()


def test_mapped_update_moves_each_block_by_its_own_slices():
    """E[dW] = -lr d x^T holds across block boundaries: 60 batches of 100 samples (seed 11),
    the whole matrix within 4 % (relative Frobenius norm), signs right where |ref| is large."""
    chips = quiet_chips(2)
    layer = AnalogLinear(chips, 9, 12)  # 2 x 2 blocks
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, 9)
    d = rng.uniform(-0.05, 0.05, 12)
    acc = np.zeros((12, 9))
    for _ in range(60):
        layer.set_weights(np.zeros((12, 9)))
        layer.update(np.tile(x, (100, 1)), np.tile(d, (100, 1)), 0.1, rng)
        acc += layer.weights() / 100
    mean, ref = acc / 60, -0.1 * np.outer(d, x)
    assert np.linalg.norm(mean - ref) / np.linalg.norm(ref) < 0.04
    big = np.abs(ref) > 0.3 * np.abs(ref).max()
    assert np.array_equal(np.sign(mean[big]), np.sign(ref[big]))


def test_several_chips_read_exactly_like_one_chip_large_enough():
    """A network on 4 tiny chips and on one chip with 8 tiles of the same geometry, given the
    same devices per block and no read noise: programmed states, forward and backward reads are
    bit-identical. (What differs with noise on: each chip draws read noise and pulse trains from
    its own seed and nonce, docs/mapping.md.)"""
    big_cfg = ChipConfig(tiles=8, rows=5, cols=7, lanes=3, name="tiny8")
    sizes = [9, 11, 4]  # 9x11: 2x2 blocks, 11x4: 3x1 blocks -> 7 tiles
    many = AnalogMLP(quiet_chips(4), sizes)
    one = AnalogMLP(quiet_chips(1, big_cfg), sizes)
    assert many.map.chips == 4 and one.map.chips == 1
    # the same fabricated device under every block on both
    fab = fabricate(big_cfg, DeviceModel(), 3)
    for dev in one.chips:
        dev.load_device_map(fab)
    for b_one, b_many in zip(one.map.blocks, many.map.blocks, strict=True):
        src = {f: getattr(fab, f)[b_one.tile:b_one.tile + 1] for f in FIELDS}
        many.chips[b_many.chip].load_device_map(DeviceMap(**src), b_many.tile)
    many.refresh()
    one.refresh()
    params = init_params(sizes, np.random.default_rng(2))
    many.set_params(params)
    one.set_params(params)
    for a, b in zip(many.state().values(), one.state().values(), strict=True):
        assert np.array_equal(a, b)
    x = np.random.default_rng(3).normal(size=(30, 9))
    assert np.array_equal(many.logits(x), one.logits(x))
    g = np.random.default_rng(4).normal(size=(30, 4))
    assert np.array_equal(many.layers[1].backward(g), one.layers[1].backward(g))


def test_a_multi_chip_run_resumes_bit_identically(tmp_path):
    """9-11-4 on four tiny chips: stopped after epoch 1 and resumed on fresh chips, the run ends
    in the same states, biases and history as the run that never stopped; a resume on another
    number of chips is refused."""
    from ohmflow.host.checkpoint import CheckpointError
    from ohmflow.host.datasets import Dataset
    from ohmflow.host.trainer import TrainConfig, Trainer

    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 9))
    data = Dataset("blobs", x[:40], x[:40, :3].argmax(axis=1), x[40:], x[40:, :3].argmax(axis=1),
                   3)
    cfg = TrainConfig(config="tiny", hidden=(11,), chips=4, epochs=2, seed=4, batch=8)
    four = lambda: Chips([TwinDevice("tiny") for _ in range(4)])  # noqa: E731
    whole = Trainer(cfg, four(), data)
    whole.run()
    first = Trainer(cfg, four(), data, out_dir=tmp_path)
    first.run(stop_after=1)
    resumed = Trainer.resume(tmp_path, four(), data=data)
    resumed.run()
    for k, v in whole.analog.state().items():
        assert np.array_equal(v, resumed.analog.state()[k]), k
    assert whole.history[-1]["analog_test_loss"] == resumed.history[-1]["analog_test_loss"]
    assert whole.counters() == resumed.counters()
    with pytest.raises((CheckpointError, ValueError), match="4 chip"):
        Trainer.resume(tmp_path, Chips([TwinDevice("tiny") for _ in range(5)]), data=data)
