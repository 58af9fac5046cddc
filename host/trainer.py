"""Analog SGD training of an MLP on a `Device`, beside the float baseline, with exact resume.

The network's layers are mapped onto the tiles of ``TrainConfig.chips`` chips
(`ohmflow.host.mapping`). Inputs are standardized by default with the training split's mean and
standard deviation (stored in the checkpoint and applied to every later use of the network).

Reproducibility: everything random comes from the run seed. At the start of epoch e chip c is
re-seeded with `chip_seed` (which restarts its PRNG nonce at 0), and the host's generator
(shuffle, stochastic rounding of update codes) is ``epoch_rng(seed, e)``. So an epoch boundary is
a restart point: a checkpoint holds the device states, biases, settings, device maps and float
baseline at the end of an epoch, and resuming from it continues bit-identically to the run that
never stopped, on any backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from ohmflow.emulator.config import (
    T_REF,
    DeviceModel,
    Settings,
    check_temperature,
    get_config,
)
from ohmflow.emulator.fabrication import FIELDS, DeviceMap, fabricate
from ohmflow.emulator.physics import decay_rate_code, drift_nu_code, dtod_code
from ohmflow.emulator.step_shape import step_shape
from ohmflow.host import checkpoint, datasets
from ohmflow.host.algorithms import Algorithm, make_algorithm
from ohmflow.host.checkpoint import CheckpointError
from ohmflow.host.chips import Chips, as_chips
from ohmflow.host.device import Device
from ohmflow.host.layers import IOParams, UpdateParams
from ohmflow.host.ledger import CostLedger
from ohmflow.host.mapping import MappingParameter, NetworkMap
from ohmflow.host.mlp import AnalogMLP, FloatMLP, evaluate, init_params, network_arrays

#: derived-seed streams
DEVICE, HOST, INIT, FAB = 0, 1, 2, 3


def derive_seed(seed: int, epoch: int, stream: int, *more: int) -> int:
    """A 32-bit seed for (run seed, epoch, stream, ...), via numpy's SeedSequence."""
    ss = np.random.SeedSequence(seed, spawn_key=(epoch, stream, *more))
    return int(ss.generate_state(1, np.uint32)[0])


def chip_seed(seed: int, epoch: int, chip: int) -> int:
    """The device seed of ``chip`` in ``epoch`` (chip 0: the one-chip run's seed)."""
    return derive_seed(seed, epoch, DEVICE, *((chip,) if chip else ()))


def chip_fab_seed(fab: int, chip: int) -> int:
    """The fabrication seed of ``chip`` (chip 0: ``fab`` itself, as on a one-chip run)."""
    return fab if chip == 0 else derive_seed(fab, chip, FAB)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch, HOST)))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints)."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (32,)
    config: str = "default"
    device_model: dict = field(default_factory=lambda: dataclasses.asdict(DeviceModel()))
    out_bound: float = 12.0
    out_noise: float = 0.06
    desired_bl: int = 31
    epochs: int = 30
    lr: float = 0.1
    batch: int = 32
    seed: int = 0
    fab_seed: int | None = None  #: None: the run seed
    float_baseline: bool = True
    noise_management: bool = True
    bound_management: bool = True
    max_bm_rounds: int = 4
    update_management: bool = True
    update_bl_management: bool = True
    chips: int = 1  #: chips the network is mapped onto
    max_input_size: int = 0  #: largest block's inputs (0: the chip's tile rows)
    max_output_size: int = 0  #: largest block's outputs (0: the chip's tile cols)
    standardize: bool = True  #: inputs scaled by the training split's mean and std
    algorithm: str = "sgd"  #: update rule (`ohmflow.host.algorithms.ALGORITHMS`)
    algorithm_options: dict = field(default_factory=dict)  #: its options (aihwkit's names)
    #: time and temperature (docs/numerics.md §11; aihwkit's names): chip temperature in kelvin,
    #: drift exponent and its device-to-device spread, decay lifetime in seconds (0: none) and
    #: its relative spread, and the simulated time one batch takes (ADVANCE after each batch
    #: when drift or decay is on)
    temperature: int = T_REF
    drift_nu_mean: float = 0.0
    drift_nu_dtod: float = 0.0
    lifetime: float = 0.0
    lifetime_dtod: float = 0.0
    batch_time: float = 0.001

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        # raises on an unknown model or a bad parameter; every field, in its own types, so that
        # a stored run (JSON lists, older runs without the newer fields) compares equal
        object.__setattr__(self, "device_model",
                           dataclasses.asdict(DeviceModel(**self.device_model)))
        MappingParameter(self.max_input_size, self.max_output_size)  # raises on bad sizes
        object.__setattr__(self, "algorithm_options", dict(self.algorithm_options))
        make_algorithm(self.algorithm, self.algorithm_options)  # raises on a bad name or option
        for name, lo in (("epochs", 1), ("batch", 1), ("desired_bl", 1), ("max_bm_rounds", 0),
                         ("chips", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {list(self.hidden)}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("seed", "fab_seed"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        self.physics_settings()  # raises on a bad temperature, exponent or lifetime
        if not (np.isfinite(self.batch_time) and 0 < self.batch_time <= 3600):
            raise ValueError(f"batch_time must be a number of seconds in (0, 3600], got "
                             f"{self.batch_time!r}")

    def physics_settings(self) -> dict:
        """The chip settings of the time and temperature fields (codes, numerics §11)."""
        check_temperature(self.temperature)
        return {"temperature": self.temperature,
                "drift_nu": drift_nu_code(self.drift_nu_mean),
                "drift_nu_dtod": dtod_code("drift_nu_dtod", self.drift_nu_dtod),
                "decay_rate": decay_rate_code(self.lifetime),
                "decay_dtod": dtod_code("lifetime_dtod", self.lifetime_dtod)}

    @property
    def time_effects(self) -> bool:
        """True if the chip drifts or decays, so that each batch advances its time."""
        return self.drift_nu_mean > 0 or self.drift_nu_dtod > 0 or self.lifetime > 0

    @property
    def model(self) -> DeviceModel:
        return DeviceModel(**self.device_model)

    @property
    def algo(self) -> Algorithm:
        return make_algorithm(self.algorithm, self.algorithm_options)

    @property
    def mapping(self) -> MappingParameter:
        return MappingParameter(self.max_input_size, self.max_output_size)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d.setdefault("standardize", False)  # runs stored before standardization used raw inputs
        return cls(**d)

    def replace(self, **kw) -> TrainConfig:
        return dataclasses.replace(self, **kw)


def dataset_digest(ds: datasets.Dataset) -> str:
    h = hashlib.sha256()
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Trainer:
    """One run: chips, an analog MLP mapped onto them, the float baseline, history, checkpoints.

    ``device`` is a `Device` (one chip) or `Chips` (``cfg.chips`` of them). ``out_dir``
    (optional) receives ``checkpoint.ohmckpt`` after every epoch. ``progress`` shows a tqdm bar
    per epoch; ``log`` receives one line per finished epoch.
    """

    def __init__(self, cfg: TrainConfig, device: Device | Chips,
                 data: datasets.Dataset | None = None, out_dir: str | Path | None = None,
                 progress: bool = False, log=None):
        self.cfg = cfg
        self.chips = as_chips(device)
        self.raw = data if data is not None else datasets.load(cfg.dataset)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.log = log or (lambda line: None)
        chip = get_config(cfg.config)
        if self.chips.config.fingerprint() != chip.fingerprint():
            raise ValueError(f"the device's config {self.chips.config.name!r} is not the run's "
                             f"config {cfg.config!r}")
        if len(self.chips) != cfg.chips:
            raise ValueError(f"the run is mapped onto {cfg.chips} chip(s), {len(self.chips)} "
                             "given")
        self.norm = datasets.Standardizer.fit(self.raw.x_train) if cfg.standardize else None
        self.data = self.norm.apply_to(self.raw) if self.norm is not None else self.raw
        self.sizes = [self.data.features, *cfg.hidden, self.data.classes]
        shapes, names = network_arrays(self.sizes, cfg.algo)
        self.map = NetworkMap(chip, shapes, chips=cfg.chips, mapping=cfg.mapping, names=names)
        self.history: list[dict] = []
        self.epoch = 0
        self.counter_base: list[dict[str, int]] = []
        #: hardware cost of the training steps per (block, phase); evaluation is not counted
        self.ledger = CostLedger(clock_hz=chip.clock_hz)
        self.counters_at_restore: list[dict[str, int]] = []
        self._fresh()

    @property
    def device(self) -> Device:
        """Chip 0 (the only one of a one-chip run)."""
        return self.chips[0]

    # ----- setup -----
    def _fresh(self) -> None:
        cfg, chips = self.cfg, self.chips
        fab = cfg.seed if cfg.fab_seed is None else cfg.fab_seed
        s = Settings.default(chips.config, out_bound=cfg.out_bound, out_noise=cfg.out_noise,
                             bl=cfg.desired_bl, dw_min_std=cfg.model.dw_min_std)
        s = s.replace(chips.config, **cfg.physics_settings())

        def setup(k: int) -> None:
            dev = chips[k]
            dev.reset()
            dev.load_device_map(fabricate(dev.config, cfg.model, chip_fab_seed(fab, k)))
            if cfg.time_effects:  # the chip's drift and decay spread, keyed like its map
                dev.load_device_key(chip_fab_seed(fab, k) & 0xFFFFFFFF)
            dev.load_step_shape(step_shape(cfg.model))
            dev.configure(**_settings_dict(s))

        chips.run([(k, (lambda k=k: setup(k))) for k in range(len(chips))])
        io = IOParams(cfg.noise_management, cfg.bound_management, cfg.max_bm_rounds)
        up = UpdateParams(cfg.desired_bl, cfg.update_management, cfg.update_bl_management)
        self.analog = AnalogMLP(chips, self.sizes, io, up, cfg.mapping, cfg.algo)
        params = init_params(self.sizes, np.random.default_rng(derive_seed(cfg.seed, 0, INIT)))
        self.analog.set_params(params)
        self.float = FloatMLP(params) if cfg.float_baseline else None

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The checkpoint of the current epoch boundary: (meta, arrays).

        Device maps of all chips are stacked along the tile axis (chip 0's tiles first); each
        layer's states are its whole matrix, whatever its blocks.
        """
        chips = self.chips
        meta = {
            "train": self.cfg.to_dict(), "epoch": self.epoch, "history": self.history,
            "chip": chips.config.to_dict(), "fingerprint": chips.config.fingerprint(),
            "settings": [_settings_dict(d.settings()) for d in chips],
            "dataset": dataset_digest(self.raw), "counters": self.counters(),
            "ledger": self.ledger.to_dict(), "mapping": self.map.to_dict(),
        }
        arrays = dict(self.analog.state())
        if self.float is not None:
            arrays.update(self.float.state())
        maps = chips.each(lambda d: d.read_device_map())
        arrays.update({f"map_{f}": np.concatenate([getattr(m, f) for m in maps]) for f in FIELDS})
        if self.norm is not None:
            arrays.update(self.norm.arrays())
        return meta, arrays

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint of this run; refuses one from another run or device."""
        where = "checkpoint"
        if TrainConfig.from_dict(meta.get("train", {})) != self.cfg:
            raise CheckpointError(f"{where} belongs to a different run configuration")
        if meta.get("fingerprint") != self.chips.config.fingerprint():
            raise CheckpointError(f"{where} was made on chip config {meta.get('chip')}, not on "
                                  f"this device's {self.chips.config.to_dict()}")
        if meta.get("dataset") != dataset_digest(self.raw):
            raise CheckpointError(f"{where} was trained on different {self.cfg.dataset!r} data")
        need = [f"map_{f}" for f in FIELDS] + [f"analog_{p}{k}" for k in
                                                range(len(self.sizes) - 1) for p in "wb"]
        if self.float is not None:
            need += [f"float_{p}{k}" for k in range(len(self.sizes) - 1) for p in "wb"]
        if self.norm is not None:
            need += list(self.norm.arrays())
        missing = [k for k in need if k not in arrays]
        if missing:
            raise CheckpointError(f"{where} lacks {missing}")
        if self.cfg.time_effects:
            raise CheckpointError(f"{where} is of a run with drift or decay, which cannot be "
                                  f"resumed: a checkpoint does not hold the chip time and the "
                                  f"tiles' drift ages")
        epoch = meta.get("epoch")
        if not isinstance(epoch, int) or not 0 <= epoch <= self.cfg.epochs:
            raise CheckpointError(f"{where} has an invalid epoch {epoch!r}")
        if self.norm is not None and not self.norm.same_as(arrays):
            raise CheckpointError(f"{where} standardized its inputs with other statistics")
        try:
            settings = meta["settings"]
            settings = settings if isinstance(settings, list) else [settings]
            if len(settings) != len(self.chips):
                raise ValueError(f"it holds settings of {len(settings)} chip(s), the run has "
                                 f"{len(self.chips)}")
            t = self.chips.config.tiles
            for k, dev in enumerate(self.chips):
                dmap = DeviceMap(**{f: np.asarray(arrays[f"map_{f}"][k * t:(k + 1) * t],
                                                  dtype=np.int64) for f in FIELDS})
                dev.load_device_map(dmap.validate(dev.config))
                dev.load_step_shape(step_shape(self.cfg.model))
                st = dict(settings[k])
                st["shapes"] = tuple(tuple(v) for v in st["shapes"])
                dev.configure(**st)
            self.analog.refresh()
            self.analog.load_state(arrays)
            if self.float is not None:
                self.float.load_state(arrays)
        except (ValueError, KeyError, TypeError) as e:
            self._fresh()
            raise CheckpointError(f"{where} does not fit this device: {e}") from None
        self.epoch = epoch
        self.history = list(meta.get("history", []))
        self.counter_base = list(meta.get("counters", []))
        try:
            self.ledger = CostLedger.from_dict(meta["ledger"]) if "ledger" in meta else \
                CostLedger(clock_hz=self.chips.config.clock_hz)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{where} has an unusable cost ledger: {e}") from None
        self.counters_at_restore = self.device_counters()

    @classmethod
    def resume(cls, run_dir: str | Path, device: Device | Chips, epochs: int | None = None,
               **kw) -> Trainer:
        """A trainer continuing the run whose checkpoint is in ``run_dir``."""
        meta, arrays = checkpoint.load(Path(run_dir) / checkpoint.FILENAME)
        try:
            cfg = TrainConfig.from_dict(meta["train"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint in {run_dir} has an unusable run config: {e}") \
                from None
        t = cls(cfg, device, out_dir=run_dir, **kw)
        t.restore(meta, arrays)
        if epochs is not None and epochs != cfg.epochs:
            if epochs < t.epoch:
                raise ValueError(f"--epochs {epochs} is below the {t.epoch} epochs already done")
            t.cfg = cfg.replace(epochs=epochs)
        return t

    # ----- training -----
    def device_counters(self) -> list[dict[str, int]]:
        """The chips' counters now: chip 0's tiles, then chip 1's, ..."""
        return [c for per_chip in self.chips.each(lambda d: d.counters()) for c in per_chip]

    def counters(self) -> list[dict[str, int]]:
        """Per-tile device counters of the whole run (across resumes), chip by chip."""
        now = self.device_counters()
        base = self.counter_base or [{} for _ in now]
        at = self.counters_at_restore or [{} for _ in now]
        return [{k: int(b.get(k, 0)) + int(v) - int(a.get(k, 0)) for k, v in c.items()}
                for c, b, a in zip(now, base, at, strict=True)]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The analog network's outputs for raw inputs x (standardized as in training)."""
        x = np.asarray(x, dtype=np.float64)
        return self.analog.logits(self.norm(x) if self.norm is not None else x)

    def run_epoch(self) -> dict:
        """Train one epoch (analog and float on the same batches), evaluate, checkpoint."""
        cfg, d = self.cfg, self.data
        e = self.epoch
        self.chips.run([(k, (lambda d=d, k=k: d.configure(seed=chip_seed(cfg.seed, e, k))))
                        for k, d in enumerate(self.chips)])
        rng = epoch_rng(cfg.seed, e)
        perm = rng.permutation(len(d.x_train))
        stats = {"analog": [0.0, 0], "float": [0.0, 0]}
        batches = range(0, len(perm), cfg.batch)
        if self.progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {e + 1}/{cfg.epochs}", leave=False,
                           unit="batch", dynamic_ncols=True)
        t0 = time.perf_counter()
        t_analog = 0.0
        for s in batches:
            idx = perm[s : s + cfg.batch]
            x, y = d.x_train[idx], d.y_train[idx]
            ta = time.perf_counter()
            loss, c = self.analog.train_batch(x, y, cfg.lr, rng, self.ledger)
            if cfg.time_effects:  # the batch took batch_time of the chip's time
                self.chips.run([(k, partial(dev.advance, cfg.batch_time))
                                for k, dev in enumerate(self.chips)])
            t_analog += time.perf_counter() - ta
            stats["analog"][0] += loss * len(idx)
            stats["analog"][1] += c
            if self.float is not None:
                loss, c = self.float.train_batch(x, y, cfg.lr)
                stats["float"][0] += loss * len(idx)
                stats["float"][1] += c
        rec = {"epoch": e + 1, "seconds": time.perf_counter() - t0,
               "analog_samples_per_s": len(perm) / t_analog if t_analog else 0.0}
        if cfg.algorithm != "sgd":
            rec.update(self.analog.algorithm_counters())
        models = [("analog", self.analog)] + ([("float", self.float)] if self.float else [])
        n = len(perm)
        for name, m in models:
            rec[f"{name}_train_loss"] = stats[name][0] / n
            rec[f"{name}_train_acc"] = stats[name][1] / n
            rec[f"{name}_test_loss"], rec[f"{name}_test_acc"] = evaluate(m, d.x_test, d.y_test)
        self.history.append(rec)
        self.epoch = e + 1
        if self.out_dir is not None:
            self.save()
        self.log(epoch_line(rec, cfg.epochs))
        return rec

    def save(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.state()
        checkpoint.save(self.out_dir / checkpoint.FILENAME, meta, arrays)

    def run(self, stop_after: int | None = None) -> list[dict]:
        """Train until ``cfg.epochs`` (or until epoch ``stop_after``); returns the history."""
        end = self.cfg.epochs if stop_after is None else min(stop_after, self.cfg.epochs)
        while self.epoch < end:
            self.run_epoch()
        return self.history


def _settings_dict(s: Settings) -> dict:
    d = dataclasses.asdict(s)
    d["shapes"] = [list(x) for x in s.shapes]
    return d


def epoch_line(rec: dict, epochs: int) -> str:
    """One line per epoch: analog and float loss/accuracy side by side."""
    line = (f"epoch {rec['epoch']:>3}/{epochs}  analog loss {rec['analog_train_loss']:.4f} "
            f"train {rec['analog_train_acc']:.4f} test {rec['analog_test_acc']:.4f}")
    if "float_test_acc" in rec:
        line += (f" | float loss {rec['float_train_loss']:.4f} train {rec['float_train_acc']:.4f}"
                 f" test {rec['float_test_acc']:.4f}")
    return line + f"  ({rec['analog_samples_per_s']:.0f} samples/s)"

