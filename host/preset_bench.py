"""Training accuracy with each device preset: MLP 64-32-10 on digits, on the twin, 10 seeds.

    python -m ohmflow.host.preset_bench [--epochs 30] [--seeds 0 1 ... 9] [--presets NAME ...]
                                        [--results FILE] [--no-write]

aihwkit's recipe (docs/benchmarks.md, accuracy): inputs / 16 (no standardization), batch 32,
lr 0.1, each preset with its periphery (out_bound 20, out_noise 0.1, BL <= 31). Every finished
(preset, seed) run is appended to ``--results`` (JSON lines), so an interrupted benchmark
continues where it stopped;
the ``presets`` section of docs/devices.md (``presets-<N>ep`` for N != 30 epochs) is rewritten
from all results after each preset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ohmflow.emulator.presets import PRESETS
from ohmflow.host import benchdoc, datasets
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

DOC = benchdoc.DOC.with_name("devices.md")
#: aihwkit 1.2.0 on the CPU, the same recipe (30 epochs, lr 0.1, 3 unseeded runs)
AIHWKIT = {"ReRamSBPreset": "0.301 (0.181–0.481)"}


def train_one(name: str, seed: int, epochs: int, data) -> dict:
    """One run of preset ``name``: final test accuracy, pulses per training sample, wall time."""
    p = PRESETS[name]
    cfg = TrainConfig(device_model=dataclasses.asdict(p.device), out_bound=p.out_bound,
                      out_noise=p.out_noise, desired_bl=p.desired_bl, epochs=epochs, seed=seed,
                      float_baseline=False, standardize=False)
    t0 = time.perf_counter()
    tr = Trainer(cfg, TwinDevice(), data)
    hist = tr.run()
    wall = time.perf_counter() - t0
    pulses = sum(c["pulses"] for c in tr.counters())
    return {"preset": name, "seed": seed, "epochs": epochs,
            "test_acc": hist[-1]["analog_test_acc"],
            "pulses_per_sample": pulses / (epochs * len(data.x_train)), "wall_s": wall}


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(results: list[dict], epochs: int, seeds: list[int]) -> str:
    """The markdown table of the runs with ``epochs`` and ``seeds``, one row per preset."""
    rows = []
    for name, p in PRESETS.items():
        if p.refused:
            rows.append(f"| {name} | refused | — | — | — |")
            continue
        rs = [r for r in results if r["preset"] == name and r["epochs"] == epochs
              and r["seed"] in seeds]
        if not rs:
            rows.append(f"| {name} | not run | — | — | {AIHWKIT.get(name, '—')} |")
            continue
        acc = [r["test_acc"] for r in rs]
        pps = sum(r["pulses_per_sample"] for r in rs) / len(rs)
        rows.append(f"| {name} | {sum(acc) / len(acc):.3f} ({min(acc):.3f}–{max(acc):.3f}) | "
                    f"{len(rs)} | {pps:,.0f} | {AIHWKIT.get(name, '—')} |")
    return ("| preset | test accuracy, mean (min–max) | seeds | pulses per training sample | "
            "aihwkit 1.2.0, 30 epochs, 3 seeds |\n|---|---|---|---|---|\n" + "\n".join(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.host.preset_bench",
                                description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--presets", nargs="+", default=[n for n, q in PRESETS.items()
                                                   if not q.refused])
    p.add_argument("--results", type=Path, default=Path("runs/preset_bench.jsonl"))
    p.add_argument("--no-write", action="store_true", help="print only; leave docs untouched")
    args = p.parse_args(argv)
    for name in args.presets:
        if name not in PRESETS or PRESETS[name].refused:
            raise SystemExit(f"unknown or refused preset {name!r}")
    data = datasets.digits()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(args.results)
    for name in args.presets:
        for seed in args.seeds:
            if any(r["preset"] == name and r["seed"] == seed and r["epochs"] == args.epochs
                   for r in results):
                continue
            r = train_one(name, seed, args.epochs, data)
            results.append(r)
            with open(args.results, "a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"{name} seed {seed}: test {r['test_acc']:.4f}, "
                  f"{r['pulses_per_sample']:,.0f} pulses/sample, {r['wall_s']:.0f} s", flush=True)
        if not args.no_write:
            write_doc(results, args)
    print(table(results, args.epochs, args.seeds))
    return 0


def write_doc(results: list[dict], args) -> None:
    body = (
        f"MLP 64-32-10 (ReLU) on scikit-learn digits (1437 train / 360 test), aihwkit's recipe "
        f"(inputs / 16, no standardization), batch 32, lr 0.1, **{args.epochs} epochs**, seeds "
        f"{', '.join(map(str, args.seeds))} (fabrication seed = run seed), twin backend, default "
        "chip config, each preset with aihwkit's preset periphery (out_bound 20, out_noise 0.1, "
        "BL ≤ 31). Test accuracy after the last epoch; pulses per training sample count every "
        "device pulse of both layers (the chips' `pulses` counters) over the run's training "
        "samples.\n\n" + table(results, args.epochs, args.seeds) + "\n\n"
        "aihwkit's figure: aihwkit 1.2.0 built from source, on the CPU, `ReRamSBPreset` with "
        "the same recipe, 30 epochs, 3 runs (its analog runs are not seeded); aihwkit was not run "
        "for the other presets. The chip's ReRamSBPreset leaves out aihwkit's write noise "
        "(`write_noise_std` 56: a Gaussian of σ 0.112 on every written weight's reads) and has "
        "multiplicative instead of additive cycle-to-cycle noise (see the presets table); how "
        "much of the gap to aihwkit's figure that explains has not been measured.")
    cmd = "python -m ohmflow.host.preset_bench" + (
        f" --epochs {args.epochs}" if args.epochs != 30 else "") + (
        f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != list(range(10)) else "")
    key, title = "presets", "Training with each preset"
    if args.epochs != 30:  # a shorter run gets its own section beside the 30-epoch one
        key, title = f"presets-{args.epochs}ep", f"{title}, {args.epochs} epochs"
    benchdoc.write_section(key, title, body, cmd, doc=DOC)


if __name__ == "__main__":
    sys.exit(main())
