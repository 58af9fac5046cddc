"""Benchmark: training samples per second of the twin beside aihwkit, for every device model.

The work is the anchors' recipe: the 64-32-10 digits MLP (two tiles), batch 32, lr 0.1, BL <= 31,
aihwkit's default ConstantStep, LinearStep and SoftBounds devices. Figures per device model:

- *training step*: the whole analog SGD step including the host's floating-point periphery
  (scaling, bias, activations, loss, update management), as ``ohmflow train`` runs it;
- *chip operations*: the device calls of one training epoch (forward, backward and stochastic
  pulse update on both tiles), recorded once and replayed on a fresh twin, so only the twin's own
  work is timed;
- *aihwkit*: the same network and devices in aihwkit's CPU simulator, one torch thread, its
  epochs alternating with the twin's in the same process. When aihwkit is not importable the
  benchmark says how to install it and prints the last recorded aihwkit figure with its date.

The larger 64-256-128-10 network (each layer split into 64 x 64 blocks, on as many chips as
``ohmflow train --hidden 256 128`` takes on the twin) is measured the same way, its training
step beside aihwkit's mapped layers with the same 64 x 64 tile size. aihwkit's figure for that
network was never recorded: without aihwkit the benchmark says so and how to install it.

Run: ``python -m ohmflow.host.bench_twin [--repeats 5] [--no-write]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np
from ohmflow.emulator.config import SLOPE_MODELS, DeviceModel, get_config
from ohmflow.host import aihwkit_peer, datasets
from ohmflow.host.benchdoc import write_section
from ohmflow.host.chips import Chips
from ohmflow.host.device import TwinDevice
from ohmflow.host.mapping import NetworkMap
from ohmflow.host.mlp import network_arrays
from ohmflow.host.trainer import TrainConfig, Trainer

RECORDED = ("configure", "forward", "backward", "update")
#: the hidden layers of the benchmark's two networks: 64-32-10 and 64-256-128-10
SMALL, LARGE = (32,), (256, 128)

#: aihwkit's last recorded figures on this recipe (samples/s, low and high over alternating
#: runs, date), by (device model, hidden layers): aihwkit 1.2.0 built from source against torch
#: 2.13.0 (CPU) and OpenBLAS as `AIHWKIT_INSTALL` says, one thread, on the 2-core machine of
#: docs/benchmarks.md. ConstantStep's and SoftBounds' 64-32-10 figures are the highest seen
#: (2026-12-06); the others were measured beside the twin with the load average near 3.
AIHWKIT_RECORDED = {
    ("ConstantStep", SMALL): (31_000.0, 44_000.0, "2026-12-06"),
    ("SoftBounds", SMALL): (40_000.0, 40_000.0, "2026-12-06"),
    ("LinearStep", SMALL): (15_267.0, 31_049.0, "2026-12-07"),
    ("ConstantStep", LARGE): (1_892.0, 3_463.0, "2026-12-07"),
    ("LinearStep", LARGE): (2_596.0, 3_174.0, "2026-12-07"),
    ("SoftBounds", LARGE): (2_261.0, 3_299.0, "2026-12-07"),
}
AIHWKIT_INSTALL = aihwkit_peer.INSTALL


class RecordingTwin(TwinDevice):
    """A twin that keeps the calls of the training step, for replay."""

    fused = False  # every read and update a recorded forward / backward / update call

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


class TimedTwin(TwinDevice):
    """A twin that adds the wall-clock time of its calls to ``wall_s`` while ``active`` is set
    (perf_counter: reading the process's CPU clock is a system call, as slow as a small call)."""

    active = False
    wall_s = 0.0


def _timed(name: str):
    base = getattr(TwinDevice, name)

    def method(self, *a, **kw):
        if not self.active:
            return base(self, *a, **kw)
        t0 = time.perf_counter()
        try:
            return base(self, *a, **kw)
        finally:
            self.wall_s += time.perf_counter() - t0

    method.__name__ = name
    return method


for _name in ("forward", "backward", "managed_read", "update", "managed_update", "coded_update",
              "configure", "settings", "tile_counters"):
    setattr(TimedTwin, _name, _timed(_name))


def train_config(model: str, epochs: int, hidden: tuple[int, ...] = SMALL) -> TrainConfig:
    """The benchmark's run: digits 64-<hidden>-10, batch 32, lr 0.1, BL <= 31, ``model`` devices,
    on as few twin chips as hold the network (one for 64-32-10)."""
    dm = dataclasses.asdict(DeviceModel(model=model))
    cfg = TrainConfig(epochs=epochs, seed=0, float_baseline=False, device_model=dm,
                      hidden=hidden)
    shapes, names = network_arrays([64, *hidden, 10], cfg.algo)
    chips = NetworkMap(get_config(cfg.config), shapes, None, cfg.mapping, names).chips
    return cfg.replace(chips=chips)


def network_name(hidden: tuple[int, ...]) -> str:
    return "-".join(str(n) for n in (64, *hidden, 10))


class TwinRun:
    """The twin training on one device model, an epoch at a time (the first one warms up)."""

    def __init__(self, model: str, data: datasets.Dataset, epochs: int,
                 hidden: tuple[int, ...] = SMALL):
        self.data = data
        self.cfg = train_config(model, epochs + 2, hidden)  # + warm-up + `split`
        self.device = TimedTwin()
        chips = [self.device] + [TwinDevice() for _ in range(self.cfg.chips - 1)]
        self.trainer = Trainer(self.cfg, Chips(chips) if len(chips) > 1 else self.device, data)
        self.trainer.run_epoch()
        self.state = self.trainer.state()
        self.cpu_s = 0.0
        step = self.trainer.analog.train_batch

        def timed(*a, **kw):  # the CPU time of the same steps the trainer times on the wall
            t0 = time.process_time()
            try:
                return step(*a, **kw)
            finally:
                self.cpu_s += time.process_time() - t0

        self.trainer.analog.train_batch = timed

    def step_epoch(self) -> tuple[float, float]:
        """Samples/s of one epoch's training steps (host periphery included): per wall-clock
        second and per CPU second of this process."""
        self.cpu_s = 0.0
        wall = self.trainer.run_epoch()["analog_samples_per_s"]
        return wall, len(self.data.x_train) / self.cpu_s

    def split(self) -> tuple[float, float]:
        """Microseconds per sample of one epoch's training steps: in the twin's device calls
        (including the settings and counter reads of the host's BL management and cost ledger)
        and in the host's periphery (the rest)."""
        self.device.active, self.device.wall_s = True, 0.0
        try:
            rate, _ = self.step_epoch()
        finally:
            self.device.active = False
        n = len(self.data.x_train)
        return self.device.wall_s / n * 1e6, (1 / rate - self.device.wall_s / n) * 1e6

    def chip_rates(self, repeats: int) -> tuple[list[float], float]:
        """Samples/s of the twin's own work, replaying one epoch's device calls ``repeats``
        times, and the pulses applied per training sample."""
        dev = RecordingTwin()
        recorder = Trainer(self.cfg, dev, self.data)
        recorder.restore(*self.state)
        dev.calls = []
        recorder.run_epoch()
        batch = self.cfg.batch
        calls = [c for c in dev.calls if not (c[0] == "forward" and len(c[1][1]) > batch)]
        dev.calls = None
        n = len(self.data.x_train)
        rates, pulses = [], 0
        for _ in range(repeats):
            fresh = TwinDevice()
            Trainer(self.cfg, fresh, self.data).restore(*self.state)
            fresh.configure(seed=dev.settings().seed)
            rates.append(n / replay(fresh, calls))
            pulses = sum(c["pulses"] for c in fresh.counters())
            if not np.array_equal(fresh.twin.weights, dev.twin.weights):
                raise RuntimeError("the replayed epoch did not reproduce the training's states")
        return rates, pulses / n


def aihwkit_available() -> bool:
    return aihwkit_peer.available()


class AihwkitRun:
    """The same network in aihwkit (`aihwkit_peer.AihwkitMLP`): a ``SingleRPUConfig`` of
    aihwkit's default device of the model, layers split into the twin's 64 x 64 tiles."""

    def __init__(self, model: str, data: datasets.Dataset, seed: int = 0,
                 hidden: tuple[int, ...] = SMALL):
        chip = get_config("default")
        self.mlp = aihwkit_peer.AihwkitMLP(aihwkit_peer.device_config(model), data, hidden,
                                           seed, tile=(chip.rows, chip.cols))
        self.mlp.epoch()  # warm-up

    def step_epoch(self) -> tuple[float, float]:
        """Samples/s of one epoch of aihwkit training steps (forward, backward, update), per
        wall-clock and per CPU second."""
        return self.mlp.epoch()


@dataclasses.dataclass
class ModelFigures:
    """Samples/s of one device model: lists of per-repeat figures."""

    model: str
    step: list[float]
    step_cpu: list[float]  #: per CPU second of the process (less sensitive to other load)
    chip: list[float]
    pulses_per_sample: float
    aihwkit: list[float]  #: measured here; empty when aihwkit is not installed
    aihwkit_cpu: list[float]
    #: us per sample of a training step in the twin's device calls and in the host
    split_us: tuple[float, float] = (0.0, 0.0)
    hidden: tuple[int, ...] = SMALL  #: the network's hidden layers

    def reference(self) -> tuple[float, float, str] | None:
        """aihwkit's figure (low, high) and where it comes from; None if it was never
        recorded for this network."""
        if self.aihwkit:
            return min(self.aihwkit), max(self.aihwkit), "measured in this run"
        recorded = AIHWKIT_RECORDED.get((self.model, self.hidden))
        if recorded is None:
            return None
        lo, hi, date = recorded
        return lo, hi, f"recorded {date}"


def measure(models=SLOPE_MODELS, repeats: int = 5, with_aihwkit: bool | None = None,
            chip: bool = True, hidden: tuple[int, ...] = SMALL) -> list[ModelFigures]:
    """Figures of every model on the 64-<hidden>-10 network; twin and aihwkit epochs alternate
    within each model. ``chip`` adds the replayed chip operations and the twin/host split (one
    chip only: the 64-32-10 network)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if chip and hidden != SMALL:
        raise ValueError("the chip replay and split are measured on the one-chip 64-32-10 "
                         "network only: pass chip=False for other networks")
    data = datasets.digits()
    use_aihwkit = aihwkit_available() if with_aihwkit is None else with_aihwkit
    out = []
    for model in models:
        run = TwinRun(model, data, repeats, hidden)
        ref = AihwkitRun(model, data, hidden=hidden) if use_aihwkit else None
        step, ai = [], []
        for _ in range(repeats):
            step.append(run.step_epoch())
            if ref is not None:
                ai.append(ref.step_epoch())
        chip_rates, pulses = run.chip_rates(repeats) if chip else ([], 0.0)
        split = run.split() if chip else (0.0, 0.0)
        out.append(ModelFigures(model, [w for w, _ in step], [c for _, c in step], chip_rates,
                                pulses, [w for w, _ in ai], [c for _, c in ai], split, hidden))
    return out


def ratio_lines(figs: list[ModelFigures]) -> list[str]:
    """One line per model and network: the twin's training step against aihwkit's figure."""
    lines = [] if any(f.aihwkit for f in figs) else [AIHWKIT_INSTALL]
    for f in figs:
        med = statistics.median(f.step)
        what = f"twin vs aihwkit, {f.model}" + ("" if f.hidden == SMALL else
                                                 f", {network_name(f.hidden)}")
        ref = f.reference()
        if ref is None:
            lines.append(f"{what}: training step {med:,.0f} samples/s; aihwkit's figure for "
                         "this network is not recorded (install aihwkit to measure it here)")
            continue
        lo, hi, src = ref
        rng = f"{lo:,.0f}" if lo == hi else f"{lo:,.0f}-{hi:,.0f}"
        ratio = f"{med / hi:.2f}x" if lo == hi else f"{med / hi:.2f}-{med / lo:.2f}x"
        lines.append(f"{what}: training step {med:,.0f} samples/s against aihwkit {rng} "
                     f"({src}): {ratio}")
    return lines


def _fmt(values: list[float]) -> str:
    """Median (min – max)."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f} – {max(values):,.0f})"


def environment() -> str:
    """Versions and thread settings the figures depend on."""
    import numba

    blas = ", ".join(f"{k}={os.environ.get(k, 'unset')}"
                     for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    peer = f", {aihwkit_peer.versions()}" if aihwkit_available() else ""
    return (f"numpy {np.__version__}, numba {numba.__version__}{peer}; {blas}; load average "
            f"{load:.2f} when the run started (the machine is shared)")


def main(argv: list[str] | None = None) -> list[ModelFigures]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    env = environment()
    figs = measure(repeats=args.repeats)
    large = measure(repeats=args.repeats, chip=False, hidden=LARGE)
    n = len(datasets.digits().x_train)
    for f in figs:
        print(f"{f.model}: training step {_fmt(f.step)} samples/s, median (min – max), "
              f"{_fmt(f.step_cpu)} per CPU second; chip operations {_fmt(f.chip)}; "
              f"{f.pulses_per_sample:.0f} pulses per sample; per sample: twin calls "
              f"{f.split_us[0]:.1f} us, host periphery {f.split_us[1]:.1f} us"
              + (f"; aihwkit {_fmt(f.aihwkit)}, {_fmt(f.aihwkit_cpu)} per CPU second"
                 if f.aihwkit else ""))
    for f in large:
        print(f"{network_name(LARGE)}, {f.model}: training step {_fmt(f.step)} samples/s, "
              f"{_fmt(f.step_cpu)} per CPU second"
              + (f"; aihwkit {_fmt(f.aihwkit)}, {_fmt(f.aihwkit_cpu)} per CPU second"
                 if f.aihwkit else ""))
    for line in ratio_lines(figs + large):
        print(line)
    if not args.no_write:
        rows = []
        for f in figs:
            lo, hi, src = f.reference()
            med = statistics.median(f.step)
            ai = _fmt(f.aihwkit) if f.aihwkit else (f"{lo:,.0f} – {hi:,.0f} ({src})" if lo != hi
                                                     else f"{lo:,.0f} ({src})")
            ratio = f"{med / hi:.2f}×" if lo == hi else f"{med / hi:.2f}× – {med / lo:.2f}×"
            if f.aihwkit:
                ai += f"; per CPU second {_fmt(f.aihwkit_cpu)}"
            rows.append(f"| {f.model} | {_fmt(f.step)} | {_fmt(f.step_cpu)} | {_fmt(f.chip)} | "
                        f"{ai} | {ratio} | {f.split_us[0]:.1f} / {f.split_us[1]:.1f} | "
                        f"{f.pulses_per_sample:.0f} |")
        large_rows = []
        for f in large:
            ref = f.reference()
            if f.aihwkit:
                ai = f"{_fmt(f.aihwkit)}; per CPU second {_fmt(f.aihwkit_cpu)}"
                ratio = f"{statistics.median(f.step) / statistics.median(f.aihwkit):.2f}×"
            elif ref is not None:
                med = statistics.median(f.step)
                ai = f"{ref[0]:,.0f} – {ref[1]:,.0f} ({ref[2]})"
                ratio = f"{med / ref[1]:.2f}× – {med / ref[0]:.2f}×"
            else:
                ai, ratio = "not recorded (aihwkit not installed)", "–"
            large_rows.append(f"| {f.model} | {_fmt(f.step)} | {_fmt(f.step_cpu)} | {ai} | "
                              f"{ratio} |")
        chips = train_config(SLOPE_MODELS[0], 1, LARGE).chips
        body = (
            "The 64-32-10 digits MLP on two tiles, batch 32, lr 0.1, BL ≤ 31, aihwkit's default "
            f"devices of each model, {args.repeats} repeats of one epoch ({n} samples) after a "
            f"warm-up epoch, one process; {env}. *Training step*: `ohmflow train --backend "
            "twin`'s analog step with the host periphery; *chip operations*: one epoch's device "
            "calls replayed on a fresh twin through its plain forward, backward and update "
            "(whose pulse update is `kernels.update`, not the training step's "
            "`coincidence.update`); *per CPU second*: the same steps over the process's "
            "CPU time, which other work on the machine changes less than the wall clock. Ratio: "
            "the training step's wall-clock median over aihwkit's figure (its high and low "
            "end). *µs per sample*: one more epoch's training steps split into the twin's "
            "device calls (with the settings and counter reads of the host's BL management and "
            "cost ledger; a read's DAC codes and output scaling, and an update's probability "
            "codes (update management) and choice of live samples, run in the same compiled "
            "call as the device op, so count as the twin's) and the host's floating-point "
            "periphery "
            "(`host/layers.py`, `host/mlp.py`, `host/ledger.py`).\n\n"
            "Samples/s as median (min – max).\n\n"
            "| device model | twin, training step | twin, training step per CPU second "
            "| twin, chip operations | aihwkit CPU simulator | twin step / aihwkit "
            "| µs per sample: twin calls / host | pulses per sample |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
            f"\nThe {network_name(LARGE)} network (`ohmflow train --hidden 256 128`: 14 blocks "
            f"of at most 64 × 64 on {chips} twin chips), the same recipe and repeats; aihwkit "
            "with the same tile size (`rpu_config.mapping` max_input_size and max_output_size "
            "64). Ratio: the twin's median over aihwkit's median when both ran here, else "
            "over aihwkit's recorded high and low end.\n\n"
            "| device model | twin, training step | twin, training step per CPU second "
            "| aihwkit CPU simulator | twin step / aihwkit |\n"
            "|---|---|---|---|---|\n" + "\n".join(large_rows) + "\n"
        )
        if not any(f.aihwkit for f in figs):
            body += f"\n{AIHWKIT_INSTALL}\n"
        write_section("twin", "Twin training speed beside aihwkit", body,
                      f"python -m ohmflow.host.bench_twin --repeats {args.repeats}")
    return figs


if __name__ == "__main__":
    main()
