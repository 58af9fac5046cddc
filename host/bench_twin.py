"""Benchmark: training samples per second of the twin on the 64-32-10 digits MLP (two tiles).

Two figures, both from real training (digits, batch 32, lr 0.1, aihwkit's ConstantStep devices):

- *chip operations*: the device calls of one training epoch (forward, backward and stochastic
  pulse update with BL <= 31 on both tiles), recorded once and replayed on a fresh twin, so only
  the twin's own work is timed;
- *training step*: the whole analog SGD step including the host's floating-point periphery
  (scaling, bias, activations, loss, update management), as `ohmflow train` runs it.

Run: ``python -m ohmflow.host.bench_twin [--repeats 5] [--no-write]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from ohmflow.host import datasets
from ohmflow.host.benchdoc import write_section
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

RECORDED = ("configure", "forward", "backward", "update")


class RecordingTwin(TwinDevice):
    """A twin that keeps the calls of the training step, for replay."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[tuple[str, tuple, dict]] | None = None

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in RECORDED:
            calls = super().__getattribute__("calls")
            if calls is not None:
                def recorded(*a, **kw):
                    calls.append((name, a, kw))
                    return attr(*a, **kw)
                return recorded
        return attr


def replay(dev: TwinDevice, calls) -> float:
    """Seconds to run the recorded calls on ``dev``."""
    t0 = time.perf_counter()
    for name, a, kw in calls:
        getattr(dev, name)(*a, **kw)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    data = datasets.digits()
    n = len(data.x_train)
    cfg = TrainConfig(epochs=args.repeats + 1, seed=0, float_baseline=False)

    # training step, full host periphery: epochs 2.. (epoch 1 warms up); a plain twin, since
    # the recording one's attribute hook would slow every call the trainer makes
    trainer = Trainer(cfg, TwinDevice(), data)
    trainer.run_epoch()
    state = trainer.state()
    step_rates = [trainer.run_epoch()["analog_samples_per_s"] for _ in range(args.repeats)]

    # chip operations only: record the device calls of one epoch's training steps, replay them
    dev = RecordingTwin()
    recorder = Trainer(cfg, dev, data)
    recorder.restore(*state)
    dev.calls = []
    recorder.run_epoch()
    calls = [c for c in dev.calls if not (c[0] == "forward" and len(c[1][1]) > cfg.batch)]
    dev.calls = None
    chip_rates = []
    for _ in range(args.repeats):
        fresh = TwinDevice()
        trainer2 = Trainer(cfg, fresh, data)
        trainer2.restore(*state)
        fresh.configure(seed=dev.settings().seed)
        chip_rates.append(n / replay(fresh, calls))
        total_pulses = sum(c["pulses"] for c in fresh.counters())
    res = {"chip_median": float(np.median(chip_rates)), "chip_min": min(chip_rates),
           "chip_max": max(chip_rates), "step_median": float(np.median(step_rates)),
           "step_min": min(step_rates), "step_max": max(step_rates),
           "pulses_per_sample": total_pulses / n}
    print(f"twin chip operations: {res['chip_median']:,.0f} samples/s median "
          f"(min {res['chip_min']:,.0f}, max {res['chip_max']:,.0f}); full training step: "
          f"{res['step_median']:,.0f} samples/s (min {res['step_min']:,.0f}, max "
          f"{res['step_max']:,.0f}); {res['pulses_per_sample']:.0f} pulses per sample")
    if not args.no_write:
        body = (
            "The 64-32-10 digits MLP on two tiles, batch 32, lr 0.1, ConstantStep devices "
            f"(aihwkit defaults), {args.repeats} repeats of one epoch ({n} samples), one "
            "process.\n\n"
            "| figure | samples/s, median | min – max |\n|---|---|---|\n"
            f"| twin, chip operations (forward, backward, pulse update BL ≤ 31, both tiles) "
            f"| {res['chip_median']:,.0f} | {res['chip_min']:,.0f} – {res['chip_max']:,.0f} |\n"
            f"| training step with host periphery (`ohmflow train --backend twin`) "
            f"| {res['step_median']:,.0f} | {res['step_min']:,.0f} – {res['step_max']:,.0f} |\n"
            "| aihwkit 1.2.0 C++ CPU simulator, same network (anchors) | ≈ 29,000 | |\n\n"
            f"Coincidences (pulses applied) per training sample, both tiles: "
            f"{res['pulses_per_sample']:.0f}.\n"
        )
        env = "".join(f"{k}={os.environ[k]} " for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                      if os.environ.get(k, "1") != "1")  # 1: ohmflow.host's default
        write_section("twin", "Twin training speed", body,
                      f"{env}python -m ohmflow.host.bench_twin --repeats {args.repeats}")
    return res


if __name__ == "__main__":
    main()
