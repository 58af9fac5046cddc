"""A small CNN on the 8x8 digits with an analog convolution and an analog linear layer.

    python examples/cnn_digits.py                      # on the bit-exact twin
    python examples/cnn_digits.py --backend verilator  # on the chip's RTL under Verilator
    python examples/cnn_digits.py --float              # the same network in float torch

conv 3x3 (1 -> 8 channels, padding 1), ReLU, 2x2 max pool, linear 128 -> 10. The network is
written as a float torch model; `convert_to_analog` turns its Conv2d and Linear into analog layers
(the convolution by im2col: every 3x3 patch is a row read through the tile) and places them on
the chips.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from ohmflow import nn as onn
from ohmflow.host import datasets
from ohmflow.host.chips import open_chips
from torch.utils.data import DataLoader, TensorDataset


def network() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10),
    )


def images(x, norm) -> torch.Tensor:
    return torch.tensor(norm(x), dtype=torch.float32).reshape(-1, 1, 8, 8)


def train(backend: str = "twin", epochs: int = 30, lr: float = 0.1, batch: int = 32,
          seed: int = 0, analog: bool = True, config: str = "default", log=print) -> float:
    """Train the CNN (analog on ``backend``, or float torch); returns the test accuracy."""
    torch.manual_seed(seed)
    data = datasets.digits()
    norm = datasets.Standardizer.fit(data.x_train)
    train_set = TensorDataset(images(data.x_train, norm), torch.tensor(data.y_train))
    x_test, y_test = images(data.x_test, norm), torch.tensor(data.y_test)
    model = network()  # the float model; the analog one starts from the same weights

    def epoch_loop(opt, start_epoch) -> float:
        for epoch in range(epochs):
            rng = start_epoch(epoch)
            order = rng.permutation(len(train_set)).tolist()
            for x, y in DataLoader(train_set, batch_size=batch, sampler=order):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
            with torch.no_grad():
                acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
            log(f"epoch {epoch + 1:>3}/{epochs}  loss {loss.item():.4f}  test accuracy {acc:.4f}")
        return acc

    if not analog:
        import numpy as np

        opt = torch.optim.SGD(model.parameters(), lr=lr)
        return epoch_loop(opt, lambda e: np.random.default_rng([seed, e]))
    with open_chips(backend, config) as hw:
        onn.prepare_chips(hw, seed)
        model = onn.convert_to_analog(model, hw)
        opt = onn.AnalogSGD(model.parameters(), lr=lr)
        return epoch_loop(opt, lambda e: onn.start_epoch(hw, seed, e, opt))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="twin",
                   help="twin, verilator, or a board's serial port (default: twin)")
    p.add_argument("--float", dest="analog", action="store_false",
                   help="train the same network in float torch instead")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    train(a.backend, a.epochs, a.lr, seed=a.seed, analog=a.analog)


if __name__ == "__main__":
    main()
