"""The training-algorithm benchmark: test accuracy and pulses per sample of every algorithm on
every device parameter set, over seeds, on the twin.

    python -m ohmflow.host.algorithm_bench [--networks 64-32-10 64-256-128-10] [--seeds 10]
        [--epochs 30] [--devices ...] [--algorithms ...] [--results FILE] [--no-write]

Recipe of the anchors (digits, batch 32, 30 epochs, standardized inputs), one set of
hyper-parameters per algorithm (`HPARAMS`, the same for every device and seed). Finished runs
are appended to ``--results`` (JSON lines) and skipped when the command runs again, so a long
table can be built in parts; the table in docs/algorithms.md is made from every run recorded
there for the chosen networks, devices and algorithms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ohmflow.host import benchdoc, datasets
from ohmflow.host.algorithms import ALGORITHMS
from ohmflow.host.algorithms.devices import DEVICE_PRESETS
from ohmflow.host.chips import Chips
from ohmflow.host.device import TwinDevice
from ohmflow.host.mapping import NetworkMap
from ohmflow.host.mlp import network_arrays
from ohmflow.host.trainer import TrainConfig, Trainer

DOC = Path(__file__).resolve().parent.parent / "docs" / "algorithms.md"

#: algorithm -> (learning rate, options): one set for all devices and seeds
HPARAMS: dict[str, tuple[float, dict]] = {
    "sgd": (0.1, {}),
    "ttv1": (0.3, {"n_reads_per_transfer": 8}),
    "ttv2": (0.3, {"n_reads_per_transfer": 8, "transfer_bl": 4}),
    "c-ttv2": (0.3, {"transfer_every": 4, "transfer_bl": 8}),
    "agad": (0.3, {"transfer_every": 4, "transfer_bl": 16, "in_chop_prob": 0.5}),
    "mixed-precision": (0.3, {}),
}

#: aihwkit 1.2.0 on the same recipe (lr 0.1, 3 seeds; docs: /anchors): (device, algorithm) -> text
AIHWKIT = {
    ("softbounds", "sgd"): "0.792 (0.756–0.836); best lr 0.821",
    ("reram-sb-like", "sgd"): "0.301 (0.181–0.481), `ReRamSBPreset`; best lr 0.501",
    ("reram-sb-like", "ttv1"): "0.772 (0.736–0.808), `TikiTakaReRamSBPreset`; best lr 0.888",
}

NETWORKS = {"64-32-10": (32,), "64-256-128-10": (256, 128)}


def run_one(net: str, device: str, algo: str, seed: int, epochs: int, data,
            inputs: str = "raw") -> dict:
    lr, opts = HPARAMS[algo]
    cfg = TrainConfig(hidden=NETWORKS[net], epochs=epochs, lr=lr, seed=seed, algorithm=algo,
                      algorithm_options=opts, float_baseline=False,
                      device_model=dataclasses.asdict(DEVICE_PRESETS[device]),
                      standardize=inputs == "standardized")
    sizes = [data.features, *cfg.hidden, data.classes]
    shapes, names = network_arrays(sizes, cfg.algo)
    chips = NetworkMap(TwinDevice().config, shapes, None, cfg.mapping, names).chips
    cfg = cfg.replace(chips=chips)
    t0 = time.perf_counter()
    t = Trainer(cfg, Chips([TwinDevice() for _ in range(chips)]), data)
    hist = t.run()
    samples = epochs * len(data.x_train)
    pulses = sum(c["pulses"] for c in t.counters())
    rec = {"net": net, "device": device, "algorithm": algo, "seed": seed, "epochs": epochs,
           "inputs": inputs,
           "lr": lr, "options": opts, "test_acc": hist[-1]["analog_test_acc"],
           "pulses_per_sample": pulses / samples,
           "transfer_reads_per_sample": t.analog.algorithm_counters()["transfer_reads"] / samples,
           "seconds": round(time.perf_counter() - t0, 1)}
    return rec


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(r: dict) -> tuple:
    return (r["net"], r["device"], r["algorithm"], r["seed"], r["epochs"], r["lr"],
            json.dumps(r["options"], sort_keys=True), r.get("inputs", "standardized"))


def table(runs: list[dict], nets, devices, algos, epochs: int, inputs: str = "raw") -> str:
    lines = []
    runs = [r for r in runs if r.get("inputs", "standardized") == inputs]
    for net in nets:
        lines += [f"### digits {net}, {epochs} epochs, {inputs} inputs", "",
                  "| device | algorithm | seeds | test accuracy, mean (min–max) | pulses / sample "
                  "| transfer reads / sample | aihwkit 1.2.0, same recipe |",
                  "|---|---|---|---|---|---|---|"]
        for dev in devices:
            for algo in algos:
                lr, opts = HPARAMS[algo]
                rs = [r for r in runs if (r["net"], r["device"], r["algorithm"], r["epochs"],
                                          r["lr"]) == (net, dev, algo, epochs, lr)
                      and r["options"] == opts]
                if not rs:
                    continue
                acc = [r["test_acc"] for r in rs]
                p = sum(r["pulses_per_sample"] for r in rs) / len(rs)
                tr = sum(r["transfer_reads_per_sample"] for r in rs) / len(rs)
                ref = AIHWKIT.get((dev, algo), "") if (net, inputs) == ("64-32-10", "raw") else ""
                lines.append(f"| {dev} | {algo} | {len(rs)} | {sum(acc) / len(acc):.3f} "
                             f"({min(acc):.3f}–{max(acc):.3f}) | {p:,.0f} | {tr:.2f} | {ref} |")
        lines.append("")
    hp = ", ".join(f"{a}: lr {HPARAMS[a][0]} {HPARAMS[a][1] or ''}".rstrip() for a in algos)
    lines.append(f"Hyper-parameters (one set per algorithm, every device and seed): {hp}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.host.algorithm_bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", default=["64-32-10"], choices=list(NETWORKS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--devices", nargs="+", default=list(DEVICE_PRESETS),
                   choices=list(DEVICE_PRESETS))
    p.add_argument("--algorithms", nargs="+", default=list(HPARAMS), choices=list(ALGORITHMS))
    p.add_argument("--results", default="algorithm_bench.jsonl",
                   help="JSON lines of finished runs (appended; runs found there are skipped)")
    p.add_argument("--inputs", choices=("raw", "standardized"), default="raw",
                   help="raw: the anchors' recipe (features / 16, as aihwkit's runs); "
                   "standardized: ohmflow train's default")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: tabulate the runs recorded in --results")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1:
        p.error("--seeds and --epochs must be >= 1")
    path = Path(args.results)
    done = {_key(r) for r in load(path)}
    data = datasets.digits()
    for net in [] if args.table_only else args.networks:
        for seed in range(args.seeds):
            for dev in args.devices:
                for algo in args.algorithms:
                    lr, opts = HPARAMS[algo]
                    key = (net, dev, algo, seed, args.epochs, lr,
                           json.dumps(opts, sort_keys=True), args.inputs)
                    if key in done:
                        continue
                    rec = run_one(net, dev, algo, seed, args.epochs, data, args.inputs)
                    with path.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                    print(json.dumps(rec), flush=True)
    body = table(load(path), args.networks, args.devices, args.algorithms, args.epochs,
                 args.inputs)
    print(body)
    if not args.no_write:
        cmd = "python -m ohmflow.host.algorithm_bench " + " ".join(argv if argv is not None
                                                                   else sys.argv[1:])
        key = f"algorithms-{'-'.join(args.networks)}-{args.epochs}-{args.inputs}"
        title = (f"Algorithms × devices on the twin: {', '.join(args.networks)}, "
                 f"{args.epochs} epochs, {args.inputs} inputs")
        benchdoc.write_section(key, title, body, cmd, DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
