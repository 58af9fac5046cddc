"""ohmflow.nn's layers and optimizer against the host layers (bit for bit) and float torch."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ohmflow import nn as onn
from ohmflow.emulator.config import DeviceModel
from ohmflow.emulator.fabrication import nominal
from ohmflow.host.device import TwinDevice
from ohmflow.host.layers import AnalogLinear as HostLinear

IN_MAX, OUT_BOUND, OUT_MAX = 63, 12.0, 255  # Settings.default: 7-bit DAC, 9-bit ADC, bound 12
f64 = torch.float64


def quiet_twin(config="default"):
    """A twin with nominal devices and no read noise: reads are deterministic."""
    dev = TwinDevice(config)
    dev.load_device_map(nominal(dev.config, DeviceModel()))
    dev.configure(fwd_sigma=0, bwd_sigma=0)
    return dev


def read_tolerance(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Worst-case |error| of managed reads of rows (N, n_in) through w (n_out, n_in): DAC and
    ADC rounding at each row's abs-max scale (as tests/host/test_layers.py)."""
    s = np.abs(rows).max(axis=1, keepdims=True)
    dac = 0.5 / IN_MAX * np.abs(w).sum(axis=1)[None, :]
    return s * (dac + 0.5 * OUT_BOUND / OUT_MAX * 1.001) + 1e-3 * np.abs(rows @ w.T)


def test_linear_forward_and_backward_are_the_host_layers_reads():
    torch.manual_seed(0)
    layer = onn.AnalogLinear(40, 24).double()
    onn.place(layer, TwinDevice())
    ref = HostLinear(TwinDevice(), 40, 24)  # the same chip, so the same read noise
    w, b = layer.get_weights()
    ref.set_weights(w.numpy(), b.numpy())
    x = torch.randn(50, 40, dtype=f64, requires_grad=True)
    y = layer(x)
    assert np.array_equal(y.detach().numpy(), ref.forward(x.detach().numpy()))
    g = torch.randn(50, 24, dtype=f64)
    y.backward(g)
    assert np.array_equal(x.grad.numpy(), ref.backward(g.numpy()))
    assert np.array_equal(layer.bias.grad.numpy(), g.numpy().sum(axis=0))
    assert len(layer.pending) == 1 and np.array_equal(layer.pending[0][1], g.numpy())


def test_linear_on_a_quiet_chip_matches_float_linear_within_quantization():
    torch.manual_seed(1)
    layer = onn.AnalogLinear(70, 9)  # float32 model; 70 inputs: two row blocks on 64x64 tiles
    onn.place(layer, quiet_twin())
    assert len(layer.host.blocks) == 2
    w, b = layer.get_weights()
    x = torch.randn(3, 5, 70)  # leading dimensions are kept
    y = layer(x)
    assert y.shape == (3, 5, 9) and y.dtype == torch.float32
    ref = F.linear(x.double(), w, b.double()).numpy().reshape(15, 9)
    err = np.abs(y.detach().double().numpy().reshape(15, 9) - ref)
    assert (err <= read_tolerance(w.numpy(), x.double().numpy().reshape(15, 70)) + 1e-5).all()
    assert err.max() > 0


def conv_pair(**kw):
    torch.manual_seed(2)
    conv = onn.AnalogConv2d(2, 5, 3, **kw).double()
    onn.place(conv, quiet_twin())
    w, b = conv.get_weights()
    return conv, w.reshape(5, 2, 3, 3), b


@pytest.mark.parametrize("kw", [{"padding": 1}, {"stride": 2, "padding": (1, 0)},
                                {"dilation": 2}])
def test_conv2d_matches_float_convolution_within_quantization(kw):
    conv, w, b = conv_pair(**kw)
    x = torch.randn(4, 2, 9, 7, dtype=f64, requires_grad=True)
    y = conv(x)
    xr = x.detach().clone().requires_grad_()
    yr = F.conv2d(xr, w, b, **kw)
    assert y.shape == yr.shape
    rows = F.unfold(x.detach(), 3, **{k: v for k, v in kw.items()})
    rows = rows.transpose(1, 2).reshape(-1, 18).numpy()
    tol = read_tolerance(w.reshape(5, 18).numpy(), rows)
    got = y.detach().permute(0, 2, 3, 1).reshape(-1, 5).numpy()
    want = yr.detach().permute(0, 2, 3, 1).reshape(-1, 5).numpy()
    assert (np.abs(got - want) <= tol).all()
    # backward: per patch the transposed read, then torch's fold sums the overlapping patches
    g = torch.randn_like(y)
    y.backward(g)
    yr.backward(g)
    d = g.permute(0, 2, 3, 1).reshape(-1, 5).numpy()
    tol_rows = torch.from_numpy(read_tolerance(w.reshape(5, 18).numpy().T, d))
    n, ho, wo = y.shape[0], y.shape[2], y.shape[3]
    tol_x = F.fold(tol_rows.reshape(n, ho * wo, 18).transpose(1, 2), (9, 7), 3,
                   **{k: v for k, v in kw.items()})
    assert (torch.abs(x.grad - xr.grad) <= tol_x + 1e-12).all()


def test_conv2d_update_is_the_host_update_of_its_patches():
    """One AnalogSGD step of a conv layer = the host layer's update with every output position's
    patch as a row (chips seeded alike before the update, the same host generator)."""
    torch.manual_seed(3)
    conv = onn.AnalogConv2d(1, 4, 3, padding=1).double()
    ref_model = copy.deepcopy(conv)
    onn.place(conv, TwinDevice())
    onn.place(ref_model, TwinDevice())
    before = conv.states()
    x = torch.randn(3, 1, 6, 6, dtype=f64)
    g = torch.randn(3, 4, 6, 6, dtype=f64)
    opt = onn.AnalogSGD(conv.parameters(), lr=0.05, rng=7)
    conv(x).backward(g)
    conv.host.chips[0].configure(seed=11)
    opt.step()
    rows = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(-1, 9).numpy()
    d = g.permute(0, 2, 3, 1).reshape(-1, 4).numpy()
    ref = ref_model.host
    ref.chips[0].configure(seed=11)
    ref.update(rows, d, 0.05, np.random.default_rng(7))
    assert np.array_equal(conv.states().numpy(), ref.states())
    assert not torch.equal(conv.states(), before)
    b0 = ref_model.bias.detach().numpy()
    assert np.array_equal(conv.bias.detach().numpy(), b0 - 0.05 * d.sum(axis=0))


def small_mlp(seed=4):
    torch.manual_seed(seed)
    return torch.nn.Sequential(onn.AnalogLinear(8, 6), torch.nn.ReLU(),
                               onn.AnalogLinear(6, 3)).double()


def step(model, opt, x, y):
    opt.zero_grad()
    loss = onn.softmax_cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.detach())


def test_no_grad_evaluation_records_nothing_and_a_step_then_changes_nothing():
    model = small_mlp()
    dev = TwinDevice()
    onn.place(model, dev)
    opt = onn.AnalogSGD(model.parameters(), lr=0.5, rng=1)
    before = [m.states() for m in onn.analog_layers(model)]
    x = torch.randn(16, 8, dtype=f64)
    with torch.no_grad():
        model(x)
    model(x)  # a forward in grad mode without backward records nothing either
    assert all(m.pending == [] for m in onn.analog_layers(model))
    rng_state = opt.rng.bit_generator.state
    updates = dev.tile_counters(0)["update_samples"]
    opt.step()
    for a, m in zip(before, onn.analog_layers(model), strict=True):
        assert torch.equal(a, m.states())
    assert opt.rng.bit_generator.state == rng_state
    assert dev.tile_counters(0)["update_samples"] == updates


def test_two_backward_passes_before_a_step_are_one_update_of_both_batches():
    model, ref = small_mlp(), small_mlp()
    onn.place(model, TwinDevice())
    onn.place(ref, TwinDevice())
    x1, x2 = torch.randn(5, 8, dtype=f64), torch.randn(7, 8, dtype=f64)
    y1, y2 = torch.randint(0, 3, (5,)), torch.randint(0, 3, (7,))
    opt = onn.AnalogSGD(model.parameters(), lr=0.2, rng=2)
    opt.zero_grad()
    onn.softmax_cross_entropy(model(x1), y1).backward()
    onn.softmax_cross_entropy(model(x2), y2).backward()
    recs = [[(x.copy(), d.copy()) for x, d in m.pending] for m in onn.analog_layers(model)]
    assert [len(r) for r in recs] == [2, 2]
    onn.analog_layers(model)[0].host.chips[0].configure(seed=5)
    opt.step()
    rng = np.random.default_rng(2)
    ref_layers = onn.analog_layers(ref)
    ref_layers[0].host.chips[0].configure(seed=5)
    for m, (r1, r2) in zip(ref_layers, recs, strict=True):
        m.host.update(np.concatenate([r1[0], r2[0]]), np.concatenate([r1[1], r2[1]]), 0.2, rng)
    for m, r in zip(onn.analog_layers(model), ref_layers, strict=True):
        assert torch.equal(m.states(), r.states())
        assert m.pending == []


def trained(model, dev, steps=3, seed=0):
    opt = onn.AnalogSGD(model.parameters(), lr=0.3, rng=seed)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        step(model, opt, torch.randn(16, 8, dtype=f64, generator=gen),
             torch.randint(0, 3, (16,), generator=gen))
    return model


def test_state_dict_saves_and_loads_device_states_and_biases(tmp_path):
    model = small_mlp()
    dev = TwinDevice()
    onn.prepare_chips(dev, seed=1)
    onn.place(model, dev)
    trained(model, dev)
    sd = model.state_dict()
    assert {"0.analog_states", "0.bias", "2.analog_states", "2.bias"} <= set(sd)
    assert sd["0.analog_states"].dtype == torch.int64 and sd["0.analog_states"].shape == (6, 8)
    torch.save(sd, tmp_path / "model.pt")
    saved = {k: v.clone() for k, v in sd.items()}
    trained(model, dev, seed=1)
    assert not torch.equal(model.state_dict()["0.analog_states"], saved["0.analog_states"])
    model.load_state_dict(torch.load(tmp_path / "model.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    # a new model on a chip fabricated alike computes what the saved one computes
    other = small_mlp(seed=9)
    dev2 = TwinDevice()
    onn.prepare_chips(dev2, seed=1)
    onn.place(other, dev2)
    other.load_state_dict(torch.load(tmp_path / "model.pt"))
    x = torch.randn(10, 8, dtype=f64)
    outs = []
    for m, d in ((model, dev), (other, dev2)):
        d.configure(seed=3)
        with torch.no_grad():
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1])


def test_state_dict_loading_refuses_what_the_devices_cannot_hold():
    model = small_mlp()
    dev = onn.prepare_chips(TwinDevice(), seed=1)
    onn.place(model, dev)
    sd = model.state_dict()
    bad = dict(sd, **{"0.analog_states": torch.zeros(8, 6, dtype=torch.int64)})
    with pytest.raises(RuntimeError, match="0.analog_states: expected integer states"):
        model.load_state_dict(bad)
    cfg = dev.config
    full = dict(sd, **{"0.analog_states": torch.full((6, 8), cfg.w_max_code)})
    with pytest.raises(RuntimeError, match="did not take the saved states exactly"):
        model.load_state_dict(full)
    missing = {k: v for k, v in sd.items() if k != "2.analog_states"}
    with pytest.raises(RuntimeError, match="Missing key.*2.analog_states"):
        model.load_state_dict(missing)
    with pytest.raises(RuntimeError, match="not on a chip"):
        small_mlp().load_state_dict(sd)


def test_a_mixed_model_steps_its_digital_layers_by_sgd_and_feeds_analog_gradients():
    """Digital Linear -> ReLU -> AnalogLinear -> ReLU -> digital Linear, on a quiet chip."""
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), onn.AnalogLinear(8, 6),
                                torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    onn.place(model, quiet_twin())
    analog = model[2]
    seen = {}

    def keep_output_grad(module, inputs, out):
        out.register_hook(lambda g: seen.__setitem__("d", g.clone()))

    model[2].register_forward_hook(keep_output_grad)
    x, y = torch.randn(12, 4, dtype=f64), torch.randint(0, 3, (12,))
    opt = onn.AnalogSGD(model.parameters(), lr=0.1, rng=0)
    opt.zero_grad()
    onn.softmax_cross_entropy(model(x), y).backward()
    digital = {n: (p.detach().clone(), p.grad.clone()) for n, p in model.named_parameters()
               if p.grad is not None}
    assert set(digital) == {"0.weight", "0.bias", "2.bias", "4.weight", "4.bias"}
    # the analog layer recorded the gradient torch gives its output, and passed on its read
    assert np.array_equal(analog.pending[0][1], seen["d"].numpy())
    h = torch.relu(model[0](x)).detach()
    dx = analog.host.backward(seen["d"].numpy())  # quiet chip: the same read again
    gw0 = ((torch.from_numpy(dx) * (h > 0)).T @ x)
    assert torch.allclose(digital["0.weight"][1], gw0, rtol=1e-12, atol=1e-14)
    states = analog.states()
    opt.step()
    for n, p in model.named_parameters():
        if n in digital:
            w, g = digital[n]
            assert torch.equal(p.detach(), w - 0.1 * g), n
    assert not torch.equal(analog.states(), states)


def test_convert_to_analog_replaces_linear_and_conv_and_copies_weights():
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10))
    dev = quiet_twin()
    analog = onn.convert_to_analog(net, dev)
    assert isinstance(net[0], torch.nn.Conv2d)  # the original is untouched
    assert [type(m).__name__ for m in analog] == ["AnalogConv2d", "ReLU", "MaxPool2d",
                                                  "Flatten", "AnalogLinear"]
    unit = 2.0 ** dev.config.w_frac
    for a, d in ((analog[0], net[0]), (analog[4], net[4])):
        w, b = a.get_weights()
        want = torch.round(d.weight.detach().double().reshape(w.shape) * unit) / unit
        assert torch.equal(w, want)
        assert torch.equal(b, d.bias.detach())
    with torch.no_grad():
        assert analog(torch.randn(5, 1, 8, 8)).shape == (5, 10)  # layer reads: tests above
    kept = onn.convert_to_analog(net, conv=False)
    assert isinstance(kept[0], torch.nn.Conv2d) and not kept[4].placed


def test_bad_use_gets_one_clear_error():
    with pytest.raises(RuntimeError, match="not on a chip; call ohmflow.nn.place"):
        onn.AnalogLinear(4, 3)(torch.randn(2, 4))
    layer = onn.AnalogLinear(4, 3)
    onn.place(layer, TwinDevice())
    with pytest.raises(ValueError, match="expects 4 input features, got 5"):
        layer(torch.randn(2, 5))
    with pytest.raises(ValueError, match="no analog layers"):
        onn.place(torch.nn.Linear(3, 2), TwinDevice())
    with pytest.raises(ValueError, match="tiles"):
        onn.place(onn.AnalogLinear(40, 40), TwinDevice("tiny"))
    with pytest.raises(ValueError, match="lr must be a positive number"):
        onn.AnalogSGD(layer.parameters(), lr=0)
    with pytest.raises(ValueError, match="groups=1"):
        onn.convert_to_analog(torch.nn.Conv2d(2, 2, 3, groups=2))
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        onn.AnalogLinear(0, 3)
    with pytest.raises(TypeError, match="cannot be copied"):
        copy.deepcopy(layer)
