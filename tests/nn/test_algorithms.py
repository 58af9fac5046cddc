"""Training algorithms and the cost ledger in ohmflow.nn: placement, state_dict, errors.

The arrays of a model's algorithms are placed as ``ohmflow train`` places them; its state_dict
carries the algorithm's state (as the trainer's checkpoint) so that a saved run continues
identically; `ohmflow.nn.record_costs` records only inside its block. That a run through torch
ends as ``ohmflow train --algorithm`` is tested in test_same_arithmetic.py.
"""

import numpy as np
import pytest
import torch
from ohmflow import nn as onn
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.mlp import network_arrays
from ohmflow.host.trainer import TrainConfig, Trainer
from ohmflow.nn.reproduce import train_as_trainer

from .compare import assert_same, nn_state, small, twins


def test_the_arrays_are_placed_as_ohmflow_train_places_them():
    """Seven tiny chips, 9-11-4 with ttv2: weights first, then each layer's A, on the same tiles
    and chips, under the same block names; a model mixing SGD and ttv2 layers places only the
    ttv2 layers' A."""
    cfg = TrainConfig(config="tiny", hidden=(11,), chips=7, algorithm="ttv2")
    trainer = Trainer(cfg, twins(cfg), Dataset("x", np.zeros((4, 9)), np.zeros(4, np.int64),
                                                np.zeros((2, 9)), np.zeros(2, np.int64), 4))
    model = torch.nn.Sequential(onn.AnalogLinear(9, 11, algorithm="ttv2"), torch.nn.ReLU(),
                                onn.AnalogLinear(11, 4, algorithm=onn.TTv2()))
    netmap = onn.place(model, twins(cfg))
    assert netmap.to_dict() == trainer.map.to_dict()
    mixed = torch.nn.Sequential(onn.AnalogLinear(9, 11), torch.nn.ReLU(),
                                onn.AnalogLinear(11, 4, algorithm="ttv2"))
    names = [lm.name for lm in onn.place(mixed, twins(cfg)).layers]
    assert names == ["layer0", "layer1", "layer1.A"]
    assert network_arrays([9, 11, 4], cfg.algo)[1] == ["layer0", "layer1", "layer0.A",
                                                       "layer1.A"]


@pytest.mark.parametrize("algorithm", ["c-ttv2", "mixed-precision"])
def test_a_saved_state_dict_continues_identically_and_holds_the_checkpoints_arrays(
        digits, tmp_path, algorithm):
    """Epoch 1 through torch, state_dict saved with torch.save, loaded into a new model on new
    chips fabricated alike, epoch 2: the end equals the uninterrupted run (and the trainer's);
    the saved algorithm state is what ``ohmflow train``'s checkpoint holds after epoch 1."""
    cfg = TrainConfig(hidden=(16,), epochs=2, seed=2, float_baseline=False, algorithm=algorithm)
    data = small(digits, 192)
    first = train_as_trainer(cfg.replace(epochs=1), twins(cfg), data)
    torch.save(first.state_dict(), tmp_path / "run.pt")
    sd = torch.load(tmp_path / "run.pt")
    t1 = Trainer(cfg.replace(epochs=1), twins(cfg), data)
    t1.run()
    ckpt = t1.state()[1]
    for k in range(2):
        i = 2 * k  # Sequential index of analog layer k
        assert sd[f"{i}.algorithm"] == {"name": algorithm, "options": cfg.algo.options()}
        saved = {n.split(".", 2)[2]: v for n, v in sd.items()
                 if n.startswith(f"{i}.algorithm.")}
        assert_same({n: v for n, v in ckpt.items() if n.startswith(f"algo{k}_")},
                    {f"algo{k}_{n}": v.numpy() for n, v in saved.items()})
    resumed = train_as_trainer(cfg, twins(cfg), data, resume=(sd, 1))
    whole = train_as_trainer(cfg, twins(cfg), data)
    assert_same(nn_state(whole), nn_state(resumed))
    t2 = Trainer(cfg, twins(cfg), data)
    t2.run()
    assert_same(t2.analog.state(), nn_state(resumed))


def test_a_state_dict_of_another_algorithm_is_refused():
    dev = onn.prepare_chips(TwinDevice(), seed=1)
    ttv2 = onn.AnalogLinear(6, 3, algorithm="ttv2")
    onn.place(ttv2, dev)
    sd = ttv2.state_dict()
    other = onn.AnalogLinear(6, 3, algorithm="ttv2", algorithm_options={"momentum": 0.5})
    onn.place(other, onn.prepare_chips(TwinDevice(), seed=1))
    with pytest.raises(RuntimeError, match="saved with algorithm 'ttv2'.*momentum"):
        other.load_state_dict(sd)
    sgd = onn.AnalogLinear(6, 3)
    onn.place(sgd, onn.prepare_chips(TwinDevice(), seed=1))
    with pytest.raises(RuntimeError, match="the layer trains with 'sgd'"):
        sgd.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*algorithm"):
        ttv2.load_state_dict(sgd.state_dict())


def test_bad_algorithm_names_and_options_are_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="unknown algorithm 'tt3': expected one of sgd, ttv1, "
                                         "ttv2, c-ttv2, agad, mixed-precision"):
        onn.AnalogLinear(4, 3, algorithm="tt3")
    with pytest.raises(ValueError, match="'ttv2' has no option.*momentm; its options: "
                                         "transfer_every"):
        onn.AnalogLinear(4, 3, algorithm="ttv2", algorithm_options={"momentm": 0.1})
    with pytest.raises(ValueError, match="option momentum must be <= 1.0"):
        onn.convert_to_analog(torch.nn.Linear(4, 3), algorithm="ttv2",
                              algorithm_options={"momentum": 2.0})
    with pytest.raises(ValueError, match="algorithm_options need an algorithm name"):
        onn.AnalogLinear(4, 3, algorithm_options={"momentum": 0.1})
    with pytest.raises(ValueError, match="carries its own options"):
        onn.AnalogLinear(4, 3, algorithm=onn.TTv2(), algorithm_options={"momentum": 0.1})
    with pytest.raises(ValueError, match="algorithm must be a name"):
        onn.AnalogLinear(4, 3, algorithm=3)
    with pytest.raises(ValueError, match="no analog layers to record"):
        with onn.record_costs(torch.nn.Linear(2, 2)):
            pass


def test_record_costs_counts_only_inside_the_block_and_restores_the_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(onn.AnalogLinear(8, 6), torch.nn.ReLU(), onn.AnalogLinear(6, 3))
    onn.place(model, TwinDevice())
    opt = onn.AnalogSGD(model.parameters(), lr=0.1, rng=0)
    x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    with onn.record_costs(model) as led:
        opt.zero_grad()
        onn.softmax_cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        model(x)  # evaluation outside: not counted
    assert all(m.ledger is None for m in onn.analog_layers(model))
    assert [(b, p) for b, p in led.entries] == [
        ("layer0", "forward"), ("layer1", "forward"), ("layer1", "backward"),
        ("layer0", "update"), ("layer1", "update")]
    assert led.get("layer0", "forward")["calls"] == 1
    assert led.get("layer1", "update")["update_samples"] == 5


def test_a_network_that_does_not_fit_is_refused_naming_its_arrays():
    """With an algorithm the arrays are not a chain of layers: the error names each array."""
    model = torch.nn.Sequential(onn.AnalogLinear(9, 4, algorithm="ttv2"),
                                onn.AnalogLinear(144, 10, algorithm="ttv2"))
    with pytest.raises(ValueError, match=r"the network's arrays \(layer0 9x4, layer1 144x10, "
                                         r"layer0.A 9x4, layer1.A 144x10\) need 8 tiles of "
                                         r"64x64 \(layer0: 1x1, layer1: 3x1, layer0.A: 1x1, "
                                         r"layer1.A: 3x1 blocks\) but 1 chip\(s\)"):
        onn.place(model, TwinDevice())
    conv = torch.nn.Sequential(onn.AnalogConv2d(1, 4, 3), torch.nn.Flatten(),
                               onn.AnalogLinear(144, 10))  # 9x4 then 144x10: no chain either
    with pytest.raises(ValueError, match=r"arrays \(layer0 9x4, layer1 144x10\) need 60 tiles"):
        onn.place(conv, TwinDevice("tiny"))
