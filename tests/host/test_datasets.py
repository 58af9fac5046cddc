"""Offline datasets: the digits recipe, the MNIST-1D generator, user files."""

import numpy as np
import pytest
from ohmflow.host import datasets


def test_digits_recipe(digits):
    from sklearn.datasets import load_digits

    assert (len(digits.x_train), len(digits.x_test), digits.features) == (1437, 360, 64)
    assert digits.x_train.min() == 0 and digits.x_train.max() == 1
    raw = load_digits()
    counts = np.bincount(raw.target) / len(raw.target)
    np.testing.assert_allclose(np.bincount(digits.y_test) / 360, counts, atol=0.01)  # stratified
    both = np.vstack([digits.x_train, digits.x_test]) * 16
    assert sorted(map(tuple, both)) == sorted(map(tuple, raw.data))  # a split, nothing lost


def test_mnist1d_is_seeded_balanced_and_learnable():
    a = datasets.mnist1d(samples=1000)
    b = datasets.mnist1d(samples=1000)
    c = datasets.mnist1d(seed=1, samples=1000)
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape == (800, 40) and a.x_test.shape == (200, 40)
    assert np.array_equal(np.bincount(a.y_test), np.full(10, 20))
    from sklearn.linear_model import LogisticRegression

    acc = LogisticRegression(max_iter=2000).fit(a.x_train, a.y_train).score(a.x_test, a.y_test)
    assert 0.2 < acc < 0.9  # above chance, far from solved: the paper's point (linear ~ 0.3)


def test_mnist1d_without_transformations_is_the_template():
    t = datasets.mnist1d_templates()
    np.testing.assert_allclose(t[:, 0], 0)
    p = dict(datasets.MNIST1D_DEFAULTS, padding=(0, 0), scale_coeff=0.0, max_translation=1,
             corr_noise_scale=0.0, iid_noise_scale=0.0, shear_scale=0.0, final_len=12)
    x = datasets.mnist1d_sample(t[3], np.random.default_rng(0), p)
    np.testing.assert_allclose(x, t[3], atol=1e-7)


def test_dataset_files(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 4)), np.arange(50) % 5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = datasets.load(str(tmp_path / "d.npz"))
    assert (len(ds.x_train), len(ds.x_test), ds.classes) == (40, 10, 5)
    np.savetxt(tmp_path / "d.csv", np.column_stack([x, y]), delimiter=",")
    assert datasets.load(str(tmp_path / "d.csv")).features == 4
    x[3, 1] = np.inf
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(ValueError, match="NaN/inf"):
        datasets.load(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "lab.npz", x=rng.random((50, 4)), y=y - 0.5)
    with pytest.raises(ValueError, match="labels must be integers"):
        datasets.load(str(tmp_path / "lab.npz"))
    with pytest.raises(ValueError, match="does not exist"):
        datasets.load(str(tmp_path / "missing.npz"))
