"""Offline datasets for training: scikit-learn's digits, a generated MNIST-1D, or a user's file.

Every dataset is a `Dataset` of float inputs and integer labels, split into train and test.
Nothing is downloaded: ``digits`` ships inside scikit-learn, ``mnist1d`` is generated here from a
seed, and a ``.npz`` / ``.csv`` file is read from disk and checked (finite values; labels the
integers 0..K-1 with K >= 2 and every class in the training split). `Standardizer` scales the
features by the training split's mean and standard deviation, as a trainer does by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = ("digits", "mnist1d", "classification500")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test arrays: x (N, features) float64, y (N,) int64 labels in 0..classes-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def features(self) -> int:
        return self.x_train.shape[1]


def _split(x: np.ndarray, y: np.ndarray, test_size: float = 0.2) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, stratify=y, random_state=0)


def digits() -> Dataset:
    """scikit-learn's 8x8 digits, pixels / 16 -> [0, 1], stratified 80/20 split (random_state 0).

    1437 training and 360 test samples, 64 features, 10 classes (the aihwkit anchor's recipe).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = _split(x, y)
    return check(Dataset("digits", xtr, ytr, xte, yte, 10))


# ----- MNIST-1D -----
# Re-implemented from Greydanus & Kobak, "Scaling down deep learning with MNIST-1D" (2020/2024):
# ten 12-point templates, each padded, stretched, scaled, shifted, given correlated background
# noise, white noise and a shear, then resampled to 40 points. The parameters below are the
# paper's defaults; the random stream is numpy PCG64, so samples differ from the reference
# generator's while following the same distribution.
_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])
MNIST1D_DEFAULTS = dict(samples=5000, template_len=12, padding=(36, 60), scale_coeff=0.4,
                        max_translation=48, corr_noise_scale=0.25, iid_noise_scale=2e-2,
                        shear_scale=0.75, final_len=40)


def mnist1d_templates() -> np.ndarray:
    """The ten templates, whitened per row and shifted to start at 0, divided by 6."""
    t = _TEMPLATES - _TEMPLATES.mean(axis=1, keepdims=True)
    t /= t.std(axis=1, keepdims=True)
    t -= t[:, :1]
    return t / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian filter, mirror-reflected edges, kernel truncated at 4 sigma."""
    r = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="symmetric"), k, mode="valid")


def mnist1d_sample(template: np.ndarray, rng: np.random.Generator, p: dict) -> np.ndarray:
    """One transformed sample of a template (the MNIST-1D generative process)."""
    lo, hi = p["padding"]
    pad = lo + int(rng.random() * (hi - lo + 1))
    x = np.concatenate([template + 1e-8, np.zeros(pad)])
    x = _resample(x, p["template_len"] + hi)
    x *= 1 + p["scale_coeff"] * (rng.random() - 0.5)
    k = int(rng.integers(p["max_translation"]))
    x = np.roll(x, k)
    mask = x != 0
    noise = _gaussian_smooth(p["corr_noise_scale"] * rng.standard_normal(x.shape), 2.0)
    x = np.where(mask, x, noise)
    x = x + p["iid_noise_scale"] * rng.standard_normal(x.shape)
    x = x - p["shear_scale"] * (rng.random() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, p["final_len"])


def mnist1d(seed: int = 42, **overrides) -> Dataset:
    """MNIST-1D generated offline: 5000 samples of 40 features, labels cycling 0..9, split 80/20.

    The split is stratified with random_state 0 (4000 train, 1000 test); ``seed`` drives the
    generator, so the same seed gives the same data.
    """
    p = {**MNIST1D_DEFAULTS, **overrides}
    unknown = set(p) - set(MNIST1D_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown mnist1d parameter(s) {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    templates = mnist1d_templates()
    y = np.arange(p["samples"], dtype=np.int64) % 10
    x = np.stack([mnist1d_sample(templates[c], rng, p) for c in y])
    xtr, xte, ytr, yte = _split(x, y)
    return check(Dataset("mnist1d", xtr, ytr, xte, yte, 10))


def classification500(seed: int = 0) -> Dataset:
    """scikit-learn's ``make_classification``: 2500 samples of 500 features (20 informative, 50
    redundant), 10 classes, ``class_sep`` 3, generated offline from ``seed``; split 80/20."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=2500, n_features=500, n_informative=20,
                               n_redundant=50, n_classes=10, class_sep=3.0, random_state=seed)
    xtr, xte, ytr, yte = _split(x.astype(np.float64), y.astype(np.int64))
    return check(Dataset("classification500", xtr, ytr, xte, yte, 10))


# ----- files -----
FILE_FORMATS = """\
A dataset file is .npz or .csv. An .npz holds arrays x_train, y_train, x_test, y_test (or x, y,
split 80/20, stratified, random_state 0): x of shape (samples, features), y integer labels.
A .csv holds one sample a line: the features, then the integer label in the last column,
comma-separated; a first line with text cells (column names) is taken as a header. Labels are the
integers 0..K-1 (K >= 2 classes), every class present in the training split. Features are used
as numbers; the trainer standardizes them (training split's mean and std) unless told not to."""


def from_file(path: str | Path) -> Dataset:
    """A dataset file (formats: `FILE_FORMATS`), read and checked."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset file {path} does not exist; use digits, mnist1d or an "
                         "existing .npz/.csv file")
    try:
        if path.suffix == ".npz":
            arrs, x, y = _read_npz(path)
        elif path.suffix == ".csv":
            arrs = None
            x, y = _read_csv(path)
        else:
            raise ValueError(f"dataset file {path} must be .npz or .csv")
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read dataset {path}: {e}") from None
    if arrs is None:
        x, y = _as_xy(path, x, y)
        _check_labels(path, y, y)
        arrs = _split(x, y)
        arrs = [arrs[0], arrs[2], arrs[1], arrs[3]]
    xtr, ytr, xte, yte = arrs
    xtr, ytr = _as_xy(path, xtr, ytr)
    xte, yte = _as_xy(path, xte, yte)
    classes = _check_labels(path, ytr, yte)
    return check(Dataset(path.name, xtr, ytr, xte, yte, classes))


def _read_npz(path: Path):
    import zipfile

    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"dataset {path} is not a NumPy .npz archive ({e}); save one with "
                         "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") \
            from None
    with z:
        keys = set(z.files)
        try:
            if {"x_train", "y_train", "x_test", "y_test"} <= keys:
                arrs = [np.asarray(z[k]) for k in ("x_train", "y_train", "x_test", "y_test")]
                return arrs, None, None
            if {"x", "y"} <= keys:
                return None, np.asarray(z["x"]), np.asarray(z["y"])
        except ValueError as e:  # object arrays need pickles, which are refused
            raise ValueError(f"dataset {path}: {e}") from None
    raise ValueError(f"dataset {path} needs arrays x_train, y_train, x_test, y_test (or x, y); "
                     f"it has {sorted(keys)}")


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a CSV file; a first line of text is a header."""
    rows = []
    width = None
    with open(path, newline="") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cells = [c.strip() for c in line.split(",")]
            try:
                vals = [float(c) for c in cells]
            except ValueError:
                if not rows and width is None:  # the header line
                    width = len(cells)
                    continue
                bad = next(c for c in cells if not _is_number(c))
                raise ValueError(f"dataset {path}, line {n}: cell {bad!r} is not a number; "
                                 "every line after an optional header holds numbers") from None
            if width is None:
                width = len(vals)
            if len(vals) != width:
                raise ValueError(f"dataset {path}, line {n}: {len(vals)} cells, expected {width}")
            rows.append(vals)
    if not rows:
        raise ValueError(f"dataset {path} holds no samples")
    if width < 2:
        raise ValueError(f"dataset {path}: a line needs at least one feature and a label")
    data = np.array(rows, dtype=np.float64)
    return data[:, :-1], data[:, -1]


def _is_number(c: str) -> bool:
    try:
        float(c)
    except ValueError:
        return False
    return True


def _as_xy(path, x, y) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"dataset {path}: inputs must be numbers") from None
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or not len(x):
        raise ValueError(f"dataset {path}: x must be (N, features) and y (N,) with N >= 1, got "
                         f"{x.shape} and {y.shape}")
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"dataset {path}: labels must be integers 0..K-1") from None
    bad = ~np.isfinite(yf) | (yf != np.rint(yf))
    if bad.any():
        k = int(np.nonzero(bad)[0][0])
        raise ValueError(f"dataset {path}: labels must be integers 0..K-1; sample {k} has "
                         f"{y[k]!r}")
    return x, y.astype(np.int64)


def _check_labels(path, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """K, after checking that the labels are 0..K-1, K >= 2, every class in the training split."""
    both = np.concatenate([y_train, y_test])
    lo, hi = int(both.min()), int(both.max())
    if lo < 0:
        raise ValueError(f"dataset {path}: labels must be integers 0..K-1, found {lo}")
    present = np.unique(both)
    if len(present) < 2:
        raise ValueError(f"dataset {path}: all labels are {lo}; a classifier needs at least two "
                         "classes")
    if lo > 0 and len(present) == hi - lo + 1:
        raise ValueError(f"dataset {path}: labels run {lo}..{hi}, expected 0..{hi - lo}; "
                         f"subtract {lo} from every label")
    missing = sorted(set(range(hi + 1)) - set(np.unique(y_train).tolist()))
    if missing:
        where = "in the data" if not set(missing) & set(present.tolist()) else \
            "in the training split"
        raise ValueError(f"dataset {path}: class(es) {missing[:10]} of 0..{hi} have no sample "
                         f"{where}; labels must be 0..K-1 with every class trained")
    return hi + 1


def check(ds: Dataset) -> Dataset:
    """Refuse NaN/inf inputs, mismatched feature counts and labels out of range."""
    for part, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise ValueError(f"dataset {ds.name}: {int(bad.sum())} NaN/inf value(s) in the {part} "
                             f"inputs (first in sample {int(rows[0])}); remove or impute them")
        if len(x) != len(y) or not len(x):
            raise ValueError(f"dataset {ds.name}: {part} split needs as many labels as samples "
                             f"(>= 1), got {len(x)} and {len(y)}")
        if y.min() < 0 or y.max() >= ds.classes:
            raise ValueError(f"dataset {ds.name}: {part} labels must be in 0..{ds.classes - 1}")
    if ds.x_test.shape[1] != ds.x_train.shape[1]:
        raise ValueError(f"dataset {ds.name}: train has {ds.x_train.shape[1]} features, test "
                         f"{ds.x_test.shape[1]}")
    return ds


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Features scaled to zero mean and unit variance by the training split's statistics.

    A feature with zero spread keeps scale 1 (it is only centred), as scikit-learn's
    ``StandardScaler`` does.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"inputs must be (samples, {len(self.mean)}), got {x.shape}")
        return (x - self.mean) / self.std

    def apply_to(self, ds: Dataset) -> Dataset:
        """The dataset with both splits standardized."""
        return Dataset(ds.name, self(ds.x_train), ds.y_train, self(ds.x_test), ds.y_test,
                       ds.classes)

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics as checkpoint arrays."""
        return {"data_mean": self.mean, "data_std": self.std}

    def same_as(self, arrays: dict[str, np.ndarray]) -> bool:
        """Whether ``arrays`` (from a checkpoint) hold these statistics exactly."""
        return all(np.array_equal(np.asarray(arrays[k]), v) for k, v in self.arrays().items())


def load(name: str) -> Dataset:
    """A dataset by name (`NAMES`) or by the path of a .npz/.csv file."""
    if name == "digits":
        return digits()
    if name == "mnist1d":
        return mnist1d()
    if name == "classification500":
        return classification500()
    if name.endswith((".npz", ".csv")):
        return from_file(name)
    raise ValueError(f"unknown dataset {name!r}: use {', '.join(NAMES)} or the path of a "
                     ".npz/.csv file")
