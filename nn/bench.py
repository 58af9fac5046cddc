"""Benchmark of the PyTorch front end: its overhead, and the CNN's accuracy against float torch.

- *overhead*: the 64-32-10 digits MLP trained on the twin by ``ohmflow train``'s `Trainer` and by
  the same run through ohmflow.nn (`ohmflow.nn.reproduce.train_as_trainer`: torch modules,
  autograd, DataLoader, AnalogSGD), training time per epoch (best of ``--repeats``), after
  checking that both end with the same device states;
- *CNN accuracy*: examples/cnn_digits.py (conv 3x3 1->8, ReLU, pool, linear 128->10) with
  analog conv and linear layers on the twin, and the same network in float torch (torch.optim.SGD,
  same initial weights, same batches), test accuracy for 3 seeds.

Run from a source checkout: ``python -m ohmflow.nn.bench [--epochs 10] [--no-write]``
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from ohmflow.host import datasets
from ohmflow.host.benchdoc import write_section
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer
from ohmflow.nn.placement import analog_layers
from ohmflow.nn.reproduce import train_as_trainer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cnn_digits.py"


def overhead(data: datasets.Dataset, epochs: int, repeats: int) -> dict:
    """Best training seconds per epoch of Trainer and of the torch loop; same states checked."""
    cfg = TrainConfig(epochs=epochs, seed=0, float_baseline=False)
    best = {"trainer": np.inf, "torch": np.inf}
    for _ in range(repeats):
        t = Trainer(cfg, TwinDevice(), data)
        t.run()
        best["trainer"] = min(best["trainer"], min(h["seconds"] for h in t.history))
        secs: list[float] = []
        model = train_as_trainer(cfg, TwinDevice(), data, seconds=secs)
        best["torch"] = min(best["torch"], min(secs))
        ref = t.analog.state()
        for k, layer in enumerate(analog_layers(model)):
            if not np.array_equal(layer.states().numpy(), ref[f"analog_w{k}"]):
                raise AssertionError(f"layer {k}: the torch run's states differ from Trainer's")
    n = len(data.x_train)
    return {"n": n, **best, "ratio": best["torch"] / best["trainer"]}


def cnn_accuracy(epochs: int, seeds: tuple[int, ...]) -> dict:
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLE)
    cnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cnn)
    out = {"analog": [], "float": [], "analog_s": 0.0}
    for seed in seeds:
        for analog in (True, False):
            t0 = time.perf_counter()
            acc = cnn.train("twin", epochs=epochs, seed=seed, analog=analog, log=lambda s: None)
            if analog:
                out["analog_s"] += (time.perf_counter() - t0) / (epochs * len(seeds))
            out["analog" if analog else "float"].append(acc)
    return out


def stats(v: list[float]) -> str:
    return f"{np.mean(v):.3f} ({min(v):.3f}–{max(v):.3f})"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="CNN training epochs per run")
    ap.add_argument("--overhead-epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # as the host's BLAS (ohmflow.host sets one thread)
    data = datasets.digits()
    ov = overhead(data, a.overhead_epochs, a.repeats)
    seeds = (0, 1, 2)
    acc = cnn_accuracy(a.epochs, seeds)
    body = (
        f"64-32-10 MLP on digits ({ov['n']} training samples, batch 32, lr 0.1, seed 0), twin, "
        "training time per epoch (best of "
        f"{a.repeats} runs of {a.overhead_epochs} epochs; both runs end with the same device "
        "states):\n\n"
        "| run | s / epoch | samples / s |\n|---|---|---|\n"
        f"| `Trainer` (numpy, as `ohmflow train`) | {ov['trainer']:.3f} | "
        f"{ov['n'] / ov['trainer']:,.0f} |\n"
        f"| `ohmflow.nn` (torch modules, autograd, DataLoader, AnalogSGD) | {ov['torch']:.3f} | "
        f"{ov['n'] / ov['torch']:,.0f} |\n\n"
        f"The torch front end takes {ov['ratio']:.2f}x the trainer's time per epoch (the two "
        "runs alternate in each repeat, so they share the machine's load; torch and BLAS on one "
        "thread). The difference is torch's per-batch work: DataLoader collation, autograd, "
        "tensor/array conversion.\n\n"
        f"CNN of examples/cnn_digits.py (conv 3x3 1->8 with padding, ReLU, 2x2 max pool, linear "
        f"128->10; standardized inputs, batch 32, lr 0.1, {a.epochs} epochs), test accuracy over "
        f"seeds {', '.join(map(str, seeds))}, mean (min–max):\n\n"
        "| network | test accuracy |\n|---|---|\n"
        f"| analog conv + linear on the twin (ConstantStep devices), `AnalogSGD` | "
        f"{stats(acc['analog'])} |\n"
        f"| the same network in float torch, `torch.optim.SGD` | {stats(acc['float'])} |\n\n"
        f"Analog CNN training: {acc['analog_s']:.1f} s per epoch on the twin (every 3x3 patch "
        "of a batch is one row of the convolution's reads and update: 2,048 rows per batch).\n"
    )
    print(body)
    if not a.no_write:
        cmd = "python -m ohmflow.nn.bench" + "".join(
            f" --{k} {v}" for k, v in (("epochs", a.epochs),
                                       ("overhead-epochs", a.overhead_epochs),
                                       ("repeats", a.repeats)))
        write_section("torch", "PyTorch front end (ohmflow.nn)", body, cmd)
    return {"overhead": ov, "cnn": acc}


if __name__ == "__main__":
    main()
