"""Benchmarks of mapped networks: accuracy of layers larger than a tile, and emulator speed on
one chip against several.

    python -m ohmflow.host.mapping_bench accuracy [--epochs 30] [--seeds 0 1 2] [--no-write]
    python -m ohmflow.host.mapping_bench speed [--samples 320] [--rounds 3] [--no-write]

``accuracy``: digits 64-256-128-10 and the 500-feature ``classification500`` set on 500-256-10,
ConstantStep devices (aihwkit defaults), on twin chips of the default config (as many as the
network needs), beside the float baseline trained on the same batches. ``speed``: analog training
samples/s of 64-256-128-10 on the Verilator emulator, one ``tiles16`` chip against two of them
and against four ``default`` chips (one emulator server a chip), in alternating rounds, with
each server's busy and idle time and the host's CPU time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ohmflow.host import benchdoc, datasets
from ohmflow.host.chips import Chips, open_chips
from ohmflow.host.device import TwinDevice
from ohmflow.host.mapping import NetworkMap
from ohmflow.host.trainer import TrainConfig, Trainer

#: name -> (dataset, hidden widths, analog target: at most this many points below float)
NETWORKS = {
    "digits 64-256-128-10": ("digits", (256, 128), 1.5),
    "classification500 500-256-10": ("classification500", (256,), 2.0),
}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _span(xs: list[float]) -> str:
    return f"{_mean(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def accuracy(args) -> str:
    rows = []
    for name, (ds, hidden, points) in NETWORKS.items():
        data = datasets.load(ds)
        sizes = [data.features, *hidden, data.classes]
        nm = NetworkMap(TwinDevice().config, list(zip(sizes[:-1], sizes[1:], strict=True)),
                        chips=None)
        an, fl, sps = [], [], []
        for seed in args.seeds:
            cfg = TrainConfig(dataset=ds, hidden=hidden, chips=nm.chips, epochs=args.epochs,
                              seed=seed)
            tr = Trainer(cfg, Chips([TwinDevice() for _ in range(nm.chips)]), data)
            hist = tr.run()
            an.append(hist[-1]["analog_test_acc"])
            fl.append(hist[-1]["float_test_acc"])
            sps.append(_mean([h["analog_samples_per_s"] for h in hist]))
            print(f"  {name} seed {seed}: analog {an[-1]:.4f} float {fl[-1]:.4f} "
                  f"({sps[-1]:,.0f} samples/s)", flush=True)
        gap = 100 * (_mean(fl) - _mean(an))
        verdict = "met" if gap <= points else "**missed**"
        rows.append(f"| {name} | {nm.describe()} | {_span(fl)} | {_span(an)} | {gap:.1f} "
                    f"(≤ {points}: {verdict}) | {_mean(sps):,.0f} |")
    return (
        f"ConstantStep devices (aihwkit defaults), batch 32, lr 0.1, {args.epochs} epochs, "
        f"seeds {', '.join(map(str, args.seeds))}, inputs standardized (the default), twin "
        "chips of the default config (four 64x64 tiles each), as many as the network needs. "
        "classification500: scikit-learn `make_classification`, 2,500 samples, 500 features "
        "(20 informative, 50 redundant), 10 classes, class_sep 3, random_state 0, split 80/20 "
        "stratified. Test accuracy after the last epoch; the float baseline trains on the same "
        "batches from the same initial weights.\n\n"
        "| network | mapping | float | analog | gap (points) | analog samples/s |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows))


#: the speed runs: (config, chips), the first is the reference of the speed-up
SPEED_RUNS = (("tiles16", 1), ("tiles16", 2), ("default", 4))


def _server_busy(dev: Chips) -> list[float]:
    """Each chip's emulator server's seconds spent simulating so far (not waiting for input)."""
    from ohmflow.sim import verilator_server

    return [verilator_server.stats(d.process)["busy_s"] for d in dev]


def _speed_run(config: str, chips: int, data) -> dict:
    """One epoch on ``chips`` emulator servers: samples/s, wall time, each server's busy time,
    the host process's CPU time and the load average when it started."""
    cfg = TrainConfig(config=config, hidden=(256, 128), chips=chips, epochs=1, seed=0,
                      float_baseline=False)
    with open_chips("verilator", config, chips) as dev:
        tr = Trainer(cfg, dev, data)
        load = os.getloadavg()[0]
        busy0 = _server_busy(dev)
        t0, c0 = time.perf_counter(), time.process_time()
        rec = tr.run_epoch()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        busy = [b - a for a, b in zip(busy0, _server_busy(dev), strict=True)]
    return {"sps": rec["analog_samples_per_s"], "wall": wall, "busy": busy, "cpu": cpu,
            "load": load, "mapping": tr.map.describe()}


def speed(args) -> str:
    data = datasets.digits()
    data = datasets.Dataset("digits", data.x_train[:args.samples], data.y_train[:args.samples],
                            data.x_test[:32], data.y_test[:32], data.classes)
    runs: dict[tuple[str, int], list[dict]] = {r: [] for r in SPEED_RUNS}
    for r in range(args.rounds):  # alternating, so every setting sees the machine's moods
        for config, chips in SPEED_RUNS:
            m = _speed_run(config, chips, data)
            runs[config, chips].append(m)
            print(f"round {r + 1}: {chips} x {config}: {m['sps']:.1f} samples/s, wall "
                  f"{m['wall']:.2f} s, servers busy {', '.join(f'{b:.2f}' for b in m['busy'])} "
                  f"s, host CPU {m['cpu']:.2f} s, load {m['load']:.2f}", flush=True)
    rows, base = [], None
    for (config, chips), ms in runs.items():
        best = max(ms, key=lambda m: m["sps"])
        base = base or best["sps"]
        idle = sum(best["wall"] - b for b in best["busy"]) / len(best["busy"])
        by_round = " / ".join(f"{m['sps']:.0f}" for m in ms)
        rows.append(f"| {chips} × `{config}` | {best['mapping']} | {best['sps']:,.0f} | "
                    f"{best['sps'] / base:.2f}× | {best['wall']:.1f} s | "
                    f"{sum(best['busy']) / len(best['busy']):.2f} s | {idle:.2f} s | "
                    f"{best['cpu']:.2f} s | {best['load']:.2f} | "
                    f"{by_round} |")
    return (
        f"64-256-128-10 MLP on digits, one epoch of {args.samples} training samples, batch 32, "
        "ConstantStep, on the Verilator emulator: one `tiles16` chip (the 14 blocks on one "
        "chip, one server) against two `tiles16` chips and four `default` chips (two and four "
        "servers, the blocks of each layer spread over them, commands to different chips "
        "overlapping; the machine has 2 cores). samples/s counts the "
        "training steps (forward, backward, update) as the trainer reports them. The settings "
        f"run in turn, {args.rounds} rounds; each row is the round with the most samples/s "
        "(all rounds in the last column). A server is busy while it simulates and idle while it "
        "waits for the host (idle: epoch wall time minus busy time, mean over the chips); host "
        "CPU is the training process's CPU time in the epoch; load is the 1-minute load "
        "average when the epoch started (other work on the machine slows the runs with more "
        "servers most).\n\n"
        "| chips | mapping | samples/s | speed-up | epoch wall time | server busy | server idle "
        "| host CPU | load | samples/s by round |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.host.mapping_bench",
                                description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s = sub.add_parser("speed")
    s.add_argument("--samples", type=int, default=320)
    s.add_argument("--rounds", type=int, default=3, help="alternating rounds of the settings")
    for q in (a, s):
        q.add_argument("--no-write", action="store_true", help="print only; leave docs as they are")
    args = p.parse_args(argv)
    body = accuracy(args) if args.what == "accuracy" else speed(args)
    print("\n" + body)
    if not args.no_write:
        cmd = "python -m ohmflow.host.mapping_bench " + " ".join(argv or sys.argv[1:])
        title = ("Mapped networks: accuracy" if args.what == "accuracy"
                 else "Mapped networks: emulator speed on one chip and on four")
        benchdoc.write_section(f"mapping-{args.what}", title, body, cmd.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
