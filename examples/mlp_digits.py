"""The 64-32-10 digits MLP trained on analog hardware from ordinary PyTorch code.

    python examples/mlp_digits.py                      # on the bit-exact twin (seconds)
    python examples/mlp_digits.py --backend verilator  # on the chip's RTL under Verilator
    python examples/mlp_digits.py --algorithm ttv2 --ledger cost.json  # Tiki-Taka v2, costs

The weights of both layers are device states on the chip's tiles; forward and backward are
device reads; `AnalogSGD.step()` is the chip's stochastic pulse update, or with ``--algorithm``
(and ``--algorithm-option KEY=VALUE``, as ``ohmflow train``) that training algorithm's update
and transfers, its extra arrays on tiles of their own. The loss, the ReLU, the data loading and
the evaluation are ordinary torch. Same seed, same run, on every backend. ``--ledger`` saves the
training steps' hardware cost, which ``ohmflow project --ledger FILE`` projects.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from ohmflow import nn as onn
from ohmflow.host import datasets
from ohmflow.host.algorithms import parse_options
from ohmflow.host.chips import open_chips
from torch.utils.data import DataLoader, TensorDataset


def train(backend: str = "twin", epochs: int = 30, lr: float = 0.1, batch: int = 32,
          seed: int = 0, chips: int = 1, config: str = "default", algorithm: str = "sgd",
          algorithm_options: dict | None = None, ledger: str | None = None, log=print) -> float:
    """Train on ``backend`` (twin, verilator, or a board's port); returns the test accuracy.

    ``algorithm`` and ``algorithm_options`` choose the layers' update rule; ``ledger`` (a path)
    receives the cost ledger of the training steps (JSON).
    """
    torch.manual_seed(seed)
    data = datasets.digits()
    norm = datasets.Standardizer.fit(data.x_train)  # the training split's mean and std
    train_set = TensorDataset(torch.tensor(norm(data.x_train), dtype=torch.float32),
                              torch.tensor(data.y_train))
    x_test = torch.tensor(norm(data.x_test), dtype=torch.float32)
    y_test = torch.tensor(data.y_test)

    algo = onn.as_algorithm(algorithm, algorithm_options)  # refuses bad names and options
    model = torch.nn.Sequential(onn.AnalogLinear(64, 32, algorithm=algo), torch.nn.ReLU(),
                                onn.AnalogLinear(32, 10, algorithm=algo))
    costs = onn.CostLedger()
    with open_chips(backend, config, chips) as hw:
        onn.prepare_chips(hw, seed)  # fabricate the chips' devices from the seed
        onn.place(model, hw)  # map the analog layers onto tiles, program their weights
        opt = onn.AnalogSGD(model.parameters(), lr=lr)
        for epoch in range(epochs):
            rng = onn.start_epoch(hw, seed, epoch, opt)  # seeds chips and the update's rounding
            order = rng.permutation(len(train_set)).tolist()
            with onn.record_costs(model, costs):  # the training steps' device calls
                for x, y in DataLoader(train_set, batch_size=batch, sampler=order):
                    opt.zero_grad()
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()  # backward reads on the chip
                    opt.step()  # pulse updates on the chip, SGD on the digital biases
            with torch.no_grad():
                acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
            log(f"epoch {epoch + 1:>3}/{epochs}  loss {loss.item():.4f}  test accuracy {acc:.4f}")
    if ledger is not None:
        costs.save(ledger)
    return acc


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="twin",
                   help="twin, verilator, or a board's serial port (default: twin)")
    p.add_argument("--chips", type=int, default=1, help="chips to map the network onto")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--algorithm", default="sgd",
                   help="training algorithm, as ohmflow train's: sgd, ttv1, ttv2, c-ttv2, agad, "
                        "mixed-precision (default: sgd)")
    p.add_argument("--algorithm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the algorithm (aihwkit's names), repeatable")
    p.add_argument("--ledger", metavar="FILE", help="save the training steps' cost ledger (JSON)")
    a = p.parse_args(argv)
    try:
        options = parse_options(a.algorithm, a.algorithm_option)
    except ValueError as e:
        p.error(str(e))
    train(a.backend, a.epochs, a.lr, seed=a.seed, chips=a.chips, algorithm=a.algorithm,
          algorithm_options=options, ledger=a.ledger)


if __name__ == "__main__":
    main()
