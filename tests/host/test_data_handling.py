"""User data as users expect it: standardized inputs (stored with the run and applied to every
later use), CSV headers, and every label problem refused in one line naming the file."""

import numpy as np
import pytest
from ohmflow.host import datasets
from ohmflow.host.cli import main
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer


def write_csv(path, x, y, header=None):
    lines = [header] if header else []
    lines += [",".join([*(f"{v:.6g}" for v in row), str(lab)]) for row, lab in zip(x, y,
                                                                                    strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def blobs(n=120, features=6, classes=3, seed=0, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, features)) * 3
    x = (centres[y] + rng.normal(size=(n, features))) * scale + offset
    return x, y


def test_standardizer_uses_the_training_split_only():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)) * [1, 10, 100, 0] + [5, -3, 0, 7]  # last feature constant
    norm = datasets.Standardizer.fit(x)
    z = norm(x)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(z[:, :3].std(axis=0), 1)
    assert np.array_equal(z[:, 3], np.zeros(50))  # centred, not divided by zero
    other = rng.normal(size=(5, 4))
    assert np.allclose(norm(other), (other - x.mean(axis=0)) / np.where(
        x.std(axis=0) > 0, x.std(axis=0), 1))
    with pytest.raises(ValueError, match=r"\(samples, 4\)"):
        norm(np.zeros((3, 5)))


def test_training_standardizes_stores_and_applies_the_statistics(tmp_path):
    """Badly scaled features (offset 1000, scale 50): the run trains on standardized inputs,
    the checkpoint carries mean and std, a resumed run and `logits` of raw inputs use them."""
    x, y = blobs(scale=50.0, offset=1000.0)
    data = datasets.Dataset("blobs", x[:90], y[:90], x[90:], y[90:], 3)
    cfg = TrainConfig(dataset="blobs", hidden=(8,), epochs=2, seed=2, batch=16)
    tr = Trainer(cfg, TwinDevice(), data, out_dir=tmp_path)
    assert np.allclose(tr.data.x_train.mean(axis=0), 0, atol=1e-9)
    tr.run()
    z = (x[90:] - x[:90].mean(axis=0)) / x[:90].std(axis=0)
    tr.device.configure(fwd_sigma=0)  # reads without noise: equal inputs give equal outputs
    assert np.array_equal(tr.logits(x[90:]), tr.analog.logits(z))
    resumed = Trainer.resume(tmp_path, TwinDevice(), data=data)
    assert np.array_equal(resumed.norm.mean, tr.norm.mean)
    assert np.array_equal(resumed.norm.std, tr.norm.std)
    raw = Trainer(cfg.replace(standardize=False), TwinDevice(), data)
    assert raw.norm is None and np.array_equal(raw.data.x_train, x[:90])


def test_runs_stored_before_standardization_resume_unstandardized():
    d = TrainConfig().to_dict()
    del d["standardize"]
    assert TrainConfig.from_dict(d).standardize is False


def test_csv_with_a_header_row_is_read(tmp_path):
    x, y = blobs()
    p = write_csv(tmp_path / "h.csv", x, y, header="a,b,c,d,e,f,label")
    ds = datasets.load(str(p))
    assert ds.features == 6 and ds.classes == 3
    assert len(ds.x_train) + len(ds.x_test) == 120


@pytest.mark.parametrize("case, make, words", [
    ("one-based", lambda x, y: (x, y + 1), ["labels run 1..3", "subtract 1"]),
    ("one class", lambda x, y: (x, y * 0), ["at least two classes"]),
    ("gap", lambda x, y: (x, np.where(y == 1, 2, y) + (y == 2) * 1),
     ["have no sample in the data", "[1]"]),
    ("fraction", lambda x, y: (x, y + 0.5), ["integers 0..K-1", "sample 0"]),
    ("negative", lambda x, y: (x, y - 1), ["0..K-1, found -1"]),
])
def test_label_problems_are_refused_naming_the_file(tmp_path, case, make, words):
    x, y = blobs()
    x, y = make(x, y.astype(float))
    p = tmp_path / "bad.npz"
    np.savez(p, x=x, y=y)
    with pytest.raises(ValueError) as e:
        datasets.load(str(p))
    for w in [str(p), *words]:
        assert w in str(e.value), str(e.value)


def test_a_class_missing_from_the_training_split_is_refused(tmp_path):
    x, y = blobs()
    p = tmp_path / "split.npz"
    np.savez(p, x_train=x[y != 2], y_train=y[y != 2], x_test=x, y_test=y)
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] .* in the training split"):
        datasets.load(str(p))


def test_text_cells_and_fake_npz_name_file_and_line(tmp_path):
    x, y = blobs(n=12)
    p = write_csv(tmp_path / "t.csv", x, y)
    lines = p.read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[2], "n/a", 1)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 5: cell 'n/a' is not a number"):
        datasets.load(str(p))
    fake = tmp_path / "fake.npz"
    fake.write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"fake\.npz is not a NumPy \.npz archive"):
        datasets.load(str(fake))


def test_cli_header_says_whether_inputs_are_standardized(tmp_path, capsys):
    x, y = blobs()
    p = write_csv(tmp_path / "d.csv", x, y)
    for extra, words in (([], "inputs standardized"), (["--no-standardize"], "as given")):
        rc = main(["train", "--dataset", str(p), "--hidden", "8", "--epochs", "1", "--no-float",
                   "--no-progress", "--out", str(tmp_path / f"run{len(extra)}"), *extra])
        assert rc == 0
        assert words in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "header" in capsys.readouterr().out  # the accepted formats are in --help
