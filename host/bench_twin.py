"""Benchmark: training samples per second of the twin on a 64-32-10 MLP-sized pair of tiles.

One training step of a batch does, per tile, what analog SGD does on the chip: forward of the
batch on both tiles, backward on both, and the stochastic pulse update with BL 31 on both, with
update-managed probability codes of the size training produces. Run:

    python -m ohmflow.host.bench_twin [--repeats 5] [--batches 60] [--no-write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ohmflow.emulator import reference
from ohmflow.emulator.config import ChipConfig, DeviceModel
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.twin import Twin
from ohmflow.host.benchdoc import write_section

LAYERS = ((64, 32), (32, 10))  # (n_in, n_out) of the digits MLP


def make_workload(cfg: ChipConfig, batches: int, batch: int, seed: int = 0):
    """Codes for `batches` training steps: DAC codes and update probability codes per layer."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(batches):
        step = []
        for n_in, n_out in LAYERS:
            x = np.maximum(rng.normal(0.3, 0.4, (batch, n_in)), 0.0)  # ReLU-like activations
            d = rng.normal(0.0, 0.05, (batch, n_out))  # output gradients
            xs = np.abs(x).max(axis=1, keepdims=True) + 1e-12
            ds = np.abs(d).max(axis=1, keepdims=True)
            xc = np.rint(x / xs * cfg.in_max).astype(np.int64)
            dc = np.rint(d / ds * cfg.in_max).astype(np.int64)
            px, pd = reference.update_codes(cfg, 31, x, d, lr=0.1, dw=0.001)
            step.append((xc, dc, px, pd))
        steps.append(step)
    return steps


def run_once(twin: Twin, steps) -> float:
    """Seconds to run every step of the workload."""
    t0 = time.perf_counter()
    for step in steps:
        for t, (xc, _, _, _) in enumerate(step):
            twin.forward(t, xc)
        for t, (_, dc, _, _) in reversed(list(enumerate(step))):
            twin.backward(t, dc)
        for t, (_, _, px, pd) in enumerate(step):
            twin.update(t, px, pd)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    cfg = ChipConfig()
    twin = Twin(cfg, device_map=fabricate(cfg, DeviceModel(), seed=0))
    twin.set(shapes=[*LAYERS, *[(cfg.rows, cfg.cols)] * (cfg.tiles - len(LAYERS))])
    rng = np.random.default_rng(1)
    for t, (n_in, n_out) in enumerate(LAYERS):
        twin.program(t, rng.integers(-3000, 3000, (n_out, n_in)))
    steps = make_workload(cfg, args.batches, args.batch)
    run_once(twin, steps[:5])  # warm-up
    times = [run_once(twin, steps) for _ in range(args.repeats)]
    samples = args.batches * args.batch
    rates = sorted(samples / t for t in times)
    pulses = sum(c["pulses"] for c in twin.counters) / (twin.counters[0]["update_samples"] or 1)
    result = {"median": float(np.median(rates)), "min": rates[0], "max": rates[-1],
              "pulses_per_sample": pulses}
    print(f"twin: {result['median']:,.0f} samples/s median (min {rates[0]:,.0f}, max "
          f"{rates[-1]:,.0f}) over {args.repeats} runs of {samples} samples; "
          f"{pulses:.0f} pulses per sample")
    if not args.no_write:
        body = (
            "Training steps of the twin on a 64-32-10 MLP-sized pair of tiles (forward, backward "
            "and stochastic pulse update with BL 31 on both tiles, batch "
            f"{args.batch}, update-managed codes at lr 0.1), {args.repeats} runs of {samples} "
            "samples each, single process.\n\n"
            "| figure | value |\n|---|---|\n"
            f"| samples/s, median | {result['median']:,.0f} |\n"
            f"| samples/s, min – max | {rates[0]:,.0f} – {rates[-1]:,.0f} |\n"
            f"| coincidences (pulses) per sample, both tiles | {pulses:.0f} |\n"
            "| aihwkit 1.2.0 C++ CPU simulator, same work (anchors) | ≈ 29,000 |\n"
        )
        write_section("twin", "Twin training speed", body,
                      "python -m ohmflow.host.bench_twin")
    return result


if __name__ == "__main__":
    main()
