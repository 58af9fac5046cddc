"""Training: the float baseline's gradients, learning on the twin, seeds, exact resume."""

import numpy as np
import pytest
from ohmflow.host import checkpoint
from ohmflow.host.checkpoint import CheckpointError
from ohmflow.host.device import TwinDevice
from ohmflow.host.mlp import FloatMLP, init_params, softmax_xent
from ohmflow.host.trainer import TrainConfig, Trainer


def test_float_mlp_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    sizes = [5, 4, 3]
    params = init_params(sizes, rng)
    x = rng.normal(size=(6, 5))
    y = rng.integers(0, 3, 6)

    def loss(ps):
        return softmax_xent(FloatMLP(ps).logits(x), y)[0]

    lr = 1e-3
    net = FloatMLP(params)
    net.train_batch(x, y, lr)
    eps = 1e-6
    for k in range(2):
        for which in (0, 1):
            p = params[k][which]
            num = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                plus = [(w.copy(), b.copy()) for w, b in params]
                minus = [(w.copy(), b.copy()) for w, b in params]
                plus[k][which][idx] += eps
                minus[k][which][idx] -= eps
                num[idx] = (loss(plus) - loss(minus)) / (2 * eps)
            step = (params[k][which] - net.params[k][which]) / lr
            np.testing.assert_allclose(step, num, rtol=1e-5, atol=1e-8)


def test_init_is_torch_default():
    params = init_params([64, 32, 10], np.random.default_rng(0))
    for (w, b), fan_in in zip(params, (64, 32), strict=True):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > 0.9 * bound
        assert abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound


def short(seed=0, **kw):
    return TrainConfig(lr=0.3, epochs=3, seed=seed, **kw)


def test_short_analog_run_learns_digits(digits):
    """3 epochs at lr 0.3 on the twin: far above chance (0.1); measured 0.89-0.93 (seeds 0-2)."""
    t = Trainer(short(float_baseline=True), TwinDevice(), digits)
    hist = t.run()
    assert hist[-1]["analog_test_acc"] >= 0.85
    assert hist[-1]["float_test_acc"] >= 0.85
    c = t.counters()
    assert c[0]["update_samples"] > 0 and c[1]["bwd_vectors"] > 0
    assert c[0]["bwd_vectors"] == 0  # the first layer's input gradient is never read


def final_state(t):
    st = t.analog.state()
    st.update(t.float.state())
    return st


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_same_seed_same_run_and_other_seed_differs(digits):
    runs = [Trainer(TrainConfig(epochs=1, seed=s), TwinDevice(), digits) for s in (7, 7, 8)]
    for r in runs:
        r.run()
    assert_same_state(final_state(runs[0]), final_state(runs[1]))
    assert runs[0].history[-1]["analog_test_loss"] == runs[1].history[-1]["analog_test_loss"]
    assert not np.array_equal(runs[0].analog.state()["analog_w0"],
                              runs[2].analog.state()["analog_w0"])


def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, tmp_path):
    cfg = TrainConfig(epochs=3, seed=3, lr=0.2)
    whole = Trainer(cfg, TwinDevice(), digits)
    whole.run()
    first = Trainer(cfg, TwinDevice(), digits, out_dir=tmp_path)
    first.run(stop_after=2)
    first.device.forward(0, np.ones((5, 64), dtype=np.int64))  # disturb the old device's nonce
    resumed = Trainer.resume(tmp_path, TwinDevice())
    assert resumed.epoch == 2
    resumed.run()
    assert_same_state(final_state(whole), final_state(resumed))
    keys = ("analog_test_loss", "analog_train_loss", "float_test_loss")
    assert [[h[k] for k in keys] for h in whole.history] == \
        [[h[k] for k in keys] for h in resumed.history]
    wc, rc = whole.counters(), resumed.counters()
    assert [c["pulses"] for c in wc] == [c["pulses"] for c in rc]


def make_checkpoint(digits, tmp_path, **kw):
    t = Trainer(TrainConfig(epochs=2, seed=1, **kw), TwinDevice(), digits, out_dir=tmp_path)
    t.run(stop_after=1)
    return tmp_path / checkpoint.FILENAME


def fresh_states(digits, **kw):
    return Trainer(TrainConfig(epochs=2, seed=1, **kw), TwinDevice(), digits).analog.state()


@pytest.mark.parametrize("damage", ["flip", "truncate", "version", "garbage", "empty"])
def test_damaged_checkpoint_is_refused(digits, tmp_path, damage):
    path = make_checkpoint(digits, tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "version":
        data = data.replace(b"OHMFLOW-CKPT 1 ", b"OHMFLOW-CKPT 9 ", 1)
    elif damage == "garbage":
        data = bytearray(b"PK\x03\x04" + bytes(200))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    msg = {"flip": "checksum", "truncate": "truncated", "version": "version 9",
           "garbage": "not an ohmflow checkpoint", "empty": "not an ohmflow checkpoint"}[damage]
    with pytest.raises(CheckpointError, match=msg):
        Trainer.resume(tmp_path, TwinDevice())


def test_checkpoint_of_another_run_or_chip_is_refused_without_half_loading(digits, tmp_path):
    path = make_checkpoint(digits, tmp_path)
    meta, arrays = checkpoint.load(path)
    dev = TwinDevice()
    t = Trainer(TrainConfig(epochs=2, seed=2), dev, digits)
    before = t.analog.state()
    with pytest.raises(CheckpointError, match="different run configuration"):
        t.restore(meta, arrays)
    assert_same_state(t.analog.state(), before)

    t = Trainer(TrainConfig(epochs=2, seed=1), TwinDevice(), digits)
    bad = dict(meta, fingerprint=meta["fingerprint"] ^ 1)
    with pytest.raises(CheckpointError, match="chip config"):
        t.restore(bad, arrays)
    broken = dict(arrays, analog_w1=arrays["analog_w1"][:, :5])
    with pytest.raises(CheckpointError, match="does not fit"):
        t.restore(meta, broken)
    assert_same_state(t.analog.state(), fresh_states(digits))
    assert t.epoch == 0


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "c.ohmckpt"
    checkpoint.save(path, {"a": 1}, {"x": np.arange(3)})
    meta, arrays = checkpoint.load(path)
    assert meta == {"a": 1} and np.array_equal(arrays["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ohmckpt"]  # no temp file left
