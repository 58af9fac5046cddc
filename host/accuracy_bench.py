"""Accuracy benchmark against the aihwkit anchors: MLP 64-32-10 on digits, batch 32, lr 0.1,
30 epochs, 3 seeds, on the twin. Writes the ``accuracy`` section of docs/benchmarks.md.

    python -m ohmflow.host.accuracy_bench [--epochs 30] [--seeds 0 1 2] [--no-write]

The float row is the baseline trained beside the ConstantStep runs (same init, same batches).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from ohmflow.emulator.config import DeviceModel
from ohmflow.host import benchdoc, datasets
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

#: setting -> (device model or None for float, aihwkit's figure, our target)
SETTINGS = {
    "float (numpy SGD)": (None, "0.957 (0.956–0.961)", 0.955),
    "ConstantStep, aihwkit defaults": (DeviceModel(), "0.959 (0.956–0.967)", 0.94),
    "SoftBounds, aihwkit defaults": (DeviceModel.soft_bounds(), "0.792 (0.756–0.836)", 0.79),
}


def run_setting(model: DeviceModel, seeds: list[int], epochs: int, data, log) -> list[dict]:
    """Final-epoch results of one device model over ``seeds``."""
    out = []
    for seed in seeds:
        cfg = TrainConfig(device_model=dataclasses.asdict(model), epochs=epochs, seed=seed,
                          float_baseline=model.model == "ConstantStep", standardize=False)
        t0 = time.perf_counter()
        tr = Trainer(cfg, TwinDevice(), data)
        hist = tr.run()
        wall = time.perf_counter() - t0
        last = hist[-1]
        sps = sum(h["analog_samples_per_s"] for h in hist) / len(hist)
        out.append({"seed": seed, "analog": last["analog_test_acc"],
                    "float": last.get("float_test_acc"), "s_per_epoch": wall / epochs,
                    "samples_per_s": sps})
        log(f"  {model.model} seed {seed}: analog {last['analog_test_acc']:.4f}"
            + (f", float {last['float_test_acc']:.4f}" if cfg.float_baseline else "")
            + f" ({wall / epochs:.2f} s/epoch, {sps:,.0f} analog samples/s)")
    return out


def summarize(accs: list[float]) -> str:
    return f"{sum(accs) / len(accs):.3f} ({min(accs):.3f}–{max(accs):.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.host.accuracy_bench",
                                description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--no-write", action="store_true", help="print only; leave docs untouched")
    args = p.parse_args(argv)
    data = datasets.digits()
    rows = []
    results: dict[str, list[dict]] = {}
    for name, (model, _, _) in SETTINGS.items():
        if model is None:
            continue
        print(f"{name}:", flush=True)
        results[name] = run_setting(model, args.seeds, args.epochs, data,
                                    lambda s: print(s, flush=True))
    const = results["ConstantStep, aihwkit defaults"]
    for name, (model, anchor, target) in SETTINGS.items():
        if model is None:
            accs = [r["float"] for r in const]
            speed = "—"
        else:
            accs = [r["analog"] for r in results[name]]
            rs = results[name]
            speed = (f"{sum(r['s_per_epoch'] for r in rs) / len(rs):.2f} s/epoch, "
                     f"{sum(r['samples_per_s'] for r in rs) / len(rs):,.0f} samples/s")
        mean = sum(accs) / len(accs)
        verdict = "met" if mean >= target else "**missed**"
        rows.append(f"| {name} | {summarize(accs)} | {anchor} | ≥ {target} ({verdict}) | "
                    f"{speed} |")
    body = (
        f"MLP 64-32-10 (ReLU) on scikit-learn digits (1437 train / 360 test), batch 32, "
        f"lr 0.1, {args.epochs} epochs, seeds {', '.join(map(str, args.seeds))} (fabrication "
        "seed = run seed), inputs as in aihwkit's recipe (pixels / 16, `--no-standardize`; "
        "ohmflow standardizes by default), twin backend, default chip config (7-bit DAC, "
        "9-bit ADC, out_bound 12, out_noise 0.06, BL ≤ 31). Test accuracy after the last epoch.\n\n"
        "| setting | test accuracy, mean (min–max) | aihwkit 1.2.0 | target | analog "
        "training speed |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "s/epoch is the wall time of one epoch including the test-set evaluation and the float "
        "baseline where it runs; samples/s counts analog training steps only (forward, backward "
        "and pulse update on the twin, and the host's management).\n\n"
        "Where the recipe differs from aihwkit's CPU simulator: BL is one device setting, so "
        "update BL management picks the largest BL any sample of the batch needs (aihwkit: per "
        "sample); probabilities are 8-bit codes, stochastically rounded so their mean is exact; "
        "device steps are integers (dw_min 0.001 is 16 LSBs of 2^-14, so the mean step is "
        "measured from the device map); bound management also guards the backward read "
        "(aihwkit turns it off there). aihwkit's analog runs are not seeded (see the anchors); "
        "ours are: the same command gives the same table.")
    print("\n" + body)
    if not args.no_write:
        cmd = "python -m ohmflow.host.accuracy_bench" + (
            f" --epochs {args.epochs}" if args.epochs != 30 else "") + (
            f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1, 2] else "")
        benchdoc.write_section("accuracy", "Training accuracy on the twin (aihwkit anchors)",
                               body, cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
