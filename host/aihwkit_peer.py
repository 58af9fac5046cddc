"""aihwkit, the peer simulator, on ohmflow's benchmark recipes (imported only where installed).

`AihwkitMLP` trains an MLP with one aihwkit RPU config for every layer (`device_config`: a
device of ``aihwkit.simulator.configs`` in a ``SingleRPUConfig``; `preset_config`: a preset of
``aihwkit.simulator.presets`` with its periphery), ``AnalogSGD``, one torch thread, layers
split into tiles of the chip's size as ohmflow maps them. `ohmflow.host.bench_twin` times it
beside the twin; `ohmflow.host.preset_bench` compares accuracies.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

#: how to get aihwkit where it is missing (printed by the benchmarks)
INSTALL = (
    "aihwkit is not installed: `pip install aihwkit` where PyPI has an aihwkit wheel for your "
    "Python and torch (its compiled simulator links against the torch it was built with). "
    "Otherwise build it from source into this environment: `apt-get install libopenblas-dev`, "
    "`pip install pybind11 scikit-build cmake ninja mypy`, then `pip install --no-deps "
    "--no-build-isolation aihwkit==1.2.0` with the environment's `bin` on PATH (the build runs "
    "mypy's `stubgen`); it builds in about 15 minutes on one core and links against the torch "
    "already installed."
)


def available() -> bool:
    """Whether aihwkit can be imported here."""
    return importlib.util.find_spec("aihwkit") is not None


def versions() -> str:
    """``aihwkit X with torch Y``."""
    from importlib.metadata import version

    return f"aihwkit {version('aihwkit')} with torch {version('torch')}"


def device_config(model: str):
    """A ``SingleRPUConfig`` of aihwkit's default ``<model>Device`` (e.g. ``ConstantStep``)."""
    from aihwkit.simulator import configs

    return configs.SingleRPUConfig(device=getattr(configs, f"{model}Device")())


def preset_config(name: str):
    """aihwkit's RPU config preset ``name`` (e.g. ``ReRamSBPreset``), device and periphery."""
    from aihwkit.simulator import presets

    return getattr(presets, name)()


class AihwkitMLP:
    """The MLP ``data.features``-``hidden``-``data.classes`` (ReLU) in aihwkit, trained by
    ``AnalogSGD`` on batches of ``batch`` in a shuffled order; ``tile`` is the largest block
    (rows, cols) a layer is split into (``rpu_config.mapping``). torch is seeded with ``seed``
    (initial weights, order); aihwkit's own noise generators are not seedable from Python."""

    def __init__(self, rpu_config, data, hidden: tuple[int, ...], seed: int = 0,
                 tile: tuple[int, int] = (64, 64), lr: float = 0.1, batch: int = 32):
        import torch
        from aihwkit.nn import AnalogLinear, AnalogSequential
        from aihwkit.optim import AnalogSGD

        torch.set_num_threads(1)
        torch.manual_seed(seed)
        rpu_config.mapping.max_input_size, rpu_config.mapping.max_output_size = tile
        sizes = [data.features, *hidden, data.classes]
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers += [torch.nn.ReLU()] if k else []
            layers.append(AnalogLinear(n_in, n_out, bias=True, rpu_config=rpu_config))
        self.torch = torch
        self.net = AnalogSequential(*layers)
        self.opt = AnalogSGD(self.net.parameters(), lr=lr)
        self.opt.regroup_param_groups(self.net)
        self.batch = batch
        self.x = torch.tensor(data.x_train, dtype=torch.float32)
        self.y = torch.tensor(data.y_train, dtype=torch.long)
        self.x_test = torch.tensor(data.x_test, dtype=torch.float32)
        self.y_test = torch.tensor(data.y_test, dtype=torch.long)
        self.rng = np.random.default_rng(seed)

    def epoch(self) -> tuple[float, float]:
        """One epoch of training steps (forward, backward, update); samples/s per wall-clock
        and per CPU second."""
        torch = self.torch
        self.net.train()
        perm = torch.from_numpy(self.rng.permutation(len(self.x)))
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, len(perm), self.batch):
            idx = perm[s : s + self.batch]
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.net(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt.step()
        return (len(perm) / (time.perf_counter() - t0), len(perm) / (time.process_time() - c0))

    def test_accuracy(self) -> float:
        """The fraction of the test split classified right (analog reads, with their noise)."""
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            pred = self.net(self.x_test).argmax(dim=1)
        return float((pred == self.y_test).float().mean())
