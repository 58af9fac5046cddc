"""Training accuracy with each device preset: MLP 64-32-10 on digits, on the twin, 10 seeds.

    python -m ohmflow.host.preset_bench [--epochs 30] [--seeds 0 1 ... 9] [--presets NAME ...]
                                        [--aihwkit] [--results FILE] [--no-write]

aihwkit's recipe (docs/benchmarks.md, accuracy): inputs / 16 (no standardization), batch 32,
lr 0.1, each preset with its periphery (out_bound 20, out_noise 0.1, BL <= 31). With
``--aihwkit`` each preset also trains in aihwkit (its preset of the same name, device and
periphery, `ohmflow.host.aihwkit_peer`) with the same recipe and seeds. Every finished
(preset, seed, engine) run is appended to ``--results`` (JSON lines), so an interrupted
benchmark continues where it stopped;
the ``presets`` section of docs/devices.md (``presets-<N>ep`` for N != 30 epochs) is rewritten
from all results after each preset.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

from ohmflow.emulator.presets import PRESETS
from ohmflow.host import aihwkit_peer, benchdoc, datasets
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

DOC = benchdoc.DOC.with_name("devices.md")
#: aihwkit 1.2.0 on the CPU, the same recipe (30 epochs, lr 0.1, 3 runs), recorded before the
#: benchmark ran aihwkit itself; shown where the results hold no aihwkit run of a preset
AIHWKIT = {"ReRamSBPreset": "0.301 (0.181–0.481), 3 runs"}
#: the engine name of aihwkit's runs with the preset's write noise taken out
NO_WRITE_NOISE = "aihwkit-no-write-noise"


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


def aihwkit_one(name: str, seed: int, epochs: int, data, write_noise: bool = True) -> dict:
    """One run of aihwkit's preset ``name`` with the same recipe: final test accuracy. Without
    ``write_noise`` the preset's device has ``write_noise_std`` 0 (the chip has no write noise);
    the run is then recorded under the engine ``aihwkit-no-write-noise``."""
    t0 = time.perf_counter()
    rpu = aihwkit_peer.preset_config(name)
    if not write_noise:
        rpu.device.write_noise_std = 0.0
    mlp = aihwkit_peer.AihwkitMLP(rpu, data, (32,), seed)
    for _ in range(epochs):
        mlp.epoch()
    return {"preset": name, "seed": seed, "epochs": epochs,
            "engine": "aihwkit" if write_noise else NO_WRITE_NOISE,
            "versions": aihwkit_peer.versions(), "test_acc": mlp.test_accuracy(),
            "wall_s": time.perf_counter() - t0}


def has_write_noise(name: str) -> bool:
    """Whether aihwkit's preset ``name`` has write noise (``write_noise_std`` > 0)."""
    return getattr(aihwkit_peer.preset_config(name).device, "write_noise_std", 0.0) > 0


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _runs(results: list[dict], name: str, epochs: int, seeds: list[int], engine: str):
    return [r for r in results if r["preset"] == name and r["epochs"] == epochs
            and r["seed"] in seeds and r.get("engine", "twin") == engine]


def _acc(rs: list[dict]) -> str:
    acc = [r["test_acc"] for r in rs]
    return f"{sum(acc) / len(acc):.3f} ({min(acc):.3f}–{max(acc):.3f})"


def table(results: list[dict], epochs: int, seeds: list[int]) -> str:
    """The markdown table of the runs with ``epochs`` and ``seeds``, one row per preset: the
    twin's, and aihwkit's beside them (its runs in ``results``, else `AIHWKIT` at 30 epochs)."""
    rows = []
    for name, p in PRESETS.items():
        ai = _runs(results, name, epochs, seeds, "aihwkit")
        ref = (f"{_acc(ai)}, {len(ai)} runs" if ai else
               AIHWKIT.get(name, "—") if epochs == 30 else "—")
        quiet = _runs(results, name, epochs, seeds, NO_WRITE_NOISE)
        ref += f" | {_acc(quiet)}, {len(quiet)} runs" if quiet else " | —"
        if p.refused:
            rows.append(f"| {name} | refused | — | — | {ref} |")
            continue
        rs = _runs(results, name, epochs, seeds, "twin")
        if not rs:
            rows.append(f"| {name} | not run | — | — | {ref} |")
            continue
        pps = sum(r["pulses_per_sample"] for r in rs) / len(rs)
        rows.append(f"| {name} | {_acc(rs)} | {len(rs)} | {pps:,.0f} | {ref} |")
    return ("| preset | test accuracy, mean (min–max) | seeds | pulses per training sample | "
            "aihwkit, same recipe, mean (min–max) | aihwkit without its write noise |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.host.preset_bench",
                                description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--presets", nargs="+", default=[n for n, q in PRESETS.items()
                                                   if not q.refused])
    p.add_argument("--aihwkit", action="store_true",
                   help="also train aihwkit's preset of each name, same recipe and seeds")
    p.add_argument("--results", type=Path, default=Path("runs/preset_bench.jsonl"))
    p.add_argument("--no-write", action="store_true", help="print only; leave docs untouched")
    args = p.parse_args(argv)
    for name in args.presets:
        if name not in PRESETS or PRESETS[name].refused:
            raise SystemExit(f"unknown or refused preset {name!r}")
    if args.aihwkit and not aihwkit_peer.available():
        raise SystemExit(f"--aihwkit: {aihwkit_peer.INSTALL}")
    data = datasets.digits()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(args.results)
    for name in args.presets:
        engines = [("twin", train_one)]
        if args.aihwkit:
            engines.append(("aihwkit", aihwkit_one))
            if has_write_noise(name):
                engines.append((NO_WRITE_NOISE, functools.partial(aihwkit_one,
                                                                  write_noise=False)))
        for seed in args.seeds:
            for engine, run in engines:
                if _runs(results, name, args.epochs, [seed], engine):
                    continue
                r = run(name, seed, args.epochs, data)
                results.append(r)
                with open(args.results, "a") as f:
                    f.write(json.dumps(r) + "\n")
                pps = (f", {r['pulses_per_sample']:,.0f} pulses/sample"
                       if "pulses_per_sample" in r else "")
                print(f"{name} seed {seed} ({engine}): test {r['test_acc']:.4f}{pps}, "
                      f"{r['wall_s']:.0f} s", flush=True)
        if not args.no_write:
            write_doc(results, args)
    print(table(results, args.epochs, args.seeds))
    return 0


def write_doc(results: list[dict], args) -> None:
    peer = next((r["versions"] for r in results if r.get("engine") == "aihwkit"), None)
    body = (
        f"MLP 64-32-10 (ReLU) on scikit-learn digits (1437 train / 360 test), aihwkit's recipe "
        f"(inputs / 16, no standardization), batch 32, lr 0.1, **{args.epochs} epochs**, seeds "
        f"{', '.join(map(str, args.seeds))} (fabrication seed = run seed), twin backend, default "
        "chip config, each preset with aihwkit's preset periphery (out_bound 20, out_noise 0.1, "
        "BL ≤ 31). Test accuracy after the last epoch; pulses per training sample count every "
        "device pulse of both layers (the chips' `pulses` counters) over the run's training "
        "samples.\n\n" + table(results, args.epochs, args.seeds) + "\n\n"
        "aihwkit's figures: " + (
            f"{peer} (built from source, CPU), its presets of the same names "
            "(`aihwkit.simulator.presets`: device and periphery), the same network (64-32-10, "
            "ReLU, biases), data, batch, lr, epochs and seeds (torch seeded; aihwkit's own noise "
            "is not seedable), test accuracy with analog reads; `--aihwkit` runs them."
            if peer else
            "aihwkit 1.2.0 built from source, on the CPU, `ReRamSBPreset` with the same recipe, "
            "30 epochs, 3 runs; `--aihwkit` runs every preset where aihwkit is installed.") +
        " The chip has no write noise: aihwkit's ReRamESPreset and ReRamSBPreset have it "
        "(`write_noise_std` 75 and 56 in dw_min units: a Gaussian redrawn at every write and "
        "added to the weight's reads) and the chip's versions leave it out (docs/devices.md, "
        "presets table). The last column is aihwkit with the preset's `write_noise_std` set "
        "to 0 (`--aihwkit` runs it for the presets that have write noise): it shows how much "
        "of the gap the write noise makes.")
    cmd = "python -m ohmflow.host.preset_bench" + (
        f" --epochs {args.epochs}" if args.epochs != 30 else "") + (
        f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != list(range(10)) else "") + (
        " --aihwkit" if args.aihwkit else "")
    key, title = "presets", "Training with each preset"
    if args.epochs != 30:  # a shorter run gets its own section beside the 30-epoch one
        key, title = f"presets-{args.epochs}ep", f"{title}, {args.epochs} epochs"
    benchdoc.write_section(key, title, body, cmd, doc=DOC)


if __name__ == "__main__":
    sys.exit(main())
