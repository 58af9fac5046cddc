"""Soak test: a long training run through the Verilator emulator, in lockstep with the twin.

A `Trainer` on the ``tiny`` chip (a synthetic 5-feature, 4-class dataset, one hidden layer of 5)
runs epoch after epoch over the byte link to the emulator server until at least ``commands``
frames have been exchanged; the same run on an in-process `TwinDevice` advances alongside. After
every epoch the two must agree exactly: losses and accuracies, device states, biases, and the
device counters (all but ``cycles``, which only the gateware has). The link must need no retry
and see no stale reply. Host and server resident memory are read from /proc after the first epoch
(warm) and at the end.

Command line: ``python -m ohmflow.host.soak --commands 100000 [--seed S]``; exit status 1 on any
disagreement or error.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from ohmflow.emulator.config import get_config
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.emulator_device import EmulatorDevice
from ohmflow.host.trainer import TrainConfig, Trainer
from ohmflow.sim.fuzz import rss_kb

__all__ = ["Report", "blobs", "run", "train_config"]

_KEYS = ("analog_train_loss", "analog_train_acc", "analog_test_loss", "analog_test_acc")


def blobs(seed: int = 0, n_train: int = 192, n_test: int = 48, features: int = 5,
          classes: int = 4) -> Dataset:
    """Gaussian blobs in [0, 1]^features: a dataset small enough for the ``tiny`` chip."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, (classes, features))

    def draw(n):
        y = rng.integers(0, classes, n)
        return np.clip(centres[y] + rng.normal(0, 0.12, (n, features)), 0, 1), y

    (xa, ya), (xb, yb) = draw(n_train), draw(n_test)
    return Dataset("blobs", xa, ya, xb, yb, classes)


def train_config(seed: int = 0, epochs: int = 10**6) -> TrainConfig:
    """The soak's run: tiny chip, one hidden layer of 5, batches of 16."""
    return TrainConfig(dataset="blobs", config="tiny", hidden=(5,), epochs=epochs, seed=seed,
                       batch=16, lr=0.2, float_baseline=False)


@dataclass
class Report:
    commands: int = 0
    epochs: int = 0
    wall_s: float = 0.0
    retries: int = 0
    stale: int = 0
    host_rss_kb: list[int] = field(default_factory=list)  #: after epoch 1, then at the end
    server_rss_kb: list[int] = field(default_factory=list)
    final_test_acc: float = 0.0
    mismatch: str | None = None

    def summary(self) -> str:
        return (f"{self.commands} commands in {self.epochs} epochs, {self.wall_s:.1f} s "
                f"({self.commands / max(self.wall_s, 1e-9):.0f} commands/s); retries "
                f"{self.retries}, stale replies {self.stale}; RSS host {self.host_rss_kb[0]} -> "
                f"{self.host_rss_kb[-1]} KiB, server {self.server_rss_kb[0]} -> "
                f"{self.server_rss_kb[-1]} KiB; test accuracy {self.final_test_acc:.3f}; "
                + ("no disagreement" if self.mismatch is None else f"MISMATCH: {self.mismatch}"))


def _compare(link: Trainer, twin: Trainer) -> str | None:
    a, b = link.history[-1], twin.history[-1]
    if [a[k] for k in _KEYS] != [b[k] for k in _KEYS]:
        return f"epoch {a['epoch']}: history {[a[k] for k in _KEYS]} != {[b[k] for k in _KEYS]}"
    sa, sb = link.analog.state(), twin.analog.state()
    for k in sb:
        if not np.array_equal(sa[k], sb[k]):
            return f"epoch {a['epoch']}: {k} differs"
    for t, (ca, cb) in enumerate(zip(link.device.counters(), twin.device.counters(), strict=True)):
        if {k: v for k, v in ca.items() if k != "cycles"} != cb:
            return f"epoch {a['epoch']}: counters of tile {t}: {ca} != {cb}"
    return None


def run(commands: int = 2000, seed: int = 0, log=None) -> Report:
    """Train until ``commands`` frames went over the link; compare with the twin every epoch."""
    cfg, data = train_config(seed), blobs(seed)
    rep = Report()
    t0 = time.monotonic()
    with EmulatorDevice(get_config(cfg.config), server="verilator", timeout=10.0) as dev:
        link = Trainer(cfg, dev, data)
        twin = Trainer(cfg, TwinDevice(cfg.config), data)
        while dev.stats["frames"] < commands and rep.mismatch is None:
            link.run_epoch()
            twin.run_epoch()
            rep.mismatch = _compare(link, twin)
            rep.epochs += 1
            if rep.epochs == 1:
                rep.host_rss_kb.append(rss_kb())
                rep.server_rss_kb.append(rss_kb(dev.process.pid))
            if log and rep.epochs % 50 == 0:
                log(f"epoch {rep.epochs}: {dev.stats['frames']} commands, "
                    f"{time.monotonic() - t0:.0f} s, host RSS {rss_kb()} KiB, server RSS "
                    f"{rss_kb(dev.process.pid)} KiB")
        rep.host_rss_kb.append(rss_kb())
        rep.server_rss_kb.append(rss_kb(dev.process.pid))
        rep.commands, rep.retries, rep.stale = (dev.stats[k] for k in ("frames", "retries",
                                                                        "stale"))
        rep.final_test_acc = link.history[-1]["analog_test_acc"]
    rep.wall_s = time.monotonic() - t0
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.host.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rep = run(args.commands, args.seed, log=lambda m: print(m, file=sys.stderr))
    print(f"soak tiny seed {args.seed}: {rep.summary()}")
    ok = rep.mismatch is None and rep.retries == 0 and rep.stale == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
