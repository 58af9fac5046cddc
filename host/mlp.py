"""Multi-layer perceptrons (ReLU hidden layers, softmax cross-entropy): analog and float.

`AnalogMLP` runs forward, backward and update of every layer on one or more chips (each layer a
grid of tile blocks, `ohmflow.host.mapping`; one device call per batch, block and cycle);
`FloatMLP` is the same network in numpy float64, the baseline. Both start from the same
`init_params` and take the same SGD steps.
"""

from __future__ import annotations

import numpy as np
from ohmflow.host import periphery
from ohmflow.host.algorithms import Algorithm
from ohmflow.host.chips import Chips, as_chips
from ohmflow.host.device import Device
from ohmflow.host.layers import AnalogLinear, IOParams, UpdateParams, configure_windows
from ohmflow.host.mapping import MappingParameter, NetworkMap


def network_arrays(sizes: list[int], algorithm: Algorithm | None = None
                   ) -> tuple[list[tuple[int, int]], list[str] | None]:
    """The arrays a network needs: shapes ``(n_in, n_out)`` and names (None: weights only).

    The weights of all layers come first (``layer{k}``, placed as without an algorithm), then
    each layer's extra arrays of the algorithm (``layer{k}.A``, ...).
    """
    shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
    extra = algorithm.extra_arrays if algorithm is not None else ()
    if not extra:
        return shapes, None
    names = [f"layer{k}" for k in range(len(shapes))]
    names += [f"layer{k}.{a}" for k in range(len(shapes)) for a in extra]
    return shapes + [s for s in shapes for _ in extra], names


def init_params(sizes: list[int], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """torch.nn.Linear's default init: W and b uniform in +-1/sqrt(fan_in); W is (n_out, n_in)."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, size=(n_out, n_in))
        b = rng.uniform(-bound, bound, size=n_out)
        params.append((w, b))
    return params


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean cross-entropy, its gradient with respect to the logits, and the correct count."""
    if (type(logits) is np.ndarray and logits.dtype == np.float64 and logits.ndim == 2
            and logits.shape[1] and type(y) is np.ndarray and y.dtype.kind == "i"
            and y.shape == logits.shape[:1] and len(y)):
        # float64 logits (the MLPs'): the same operations with fewer numpy calls; exp, the
        # row sums and the mean stay numpy's (their rounding is numpy's own)
        z, arg = periphery.minus_row_max(logits)
        e = np.exp(z)
        pick, grad, correct = periphery.xent_grad(e, e.sum(axis=1), y, arg)
        # the mean as np.mean takes it: numpy's (pairwise) sum, then / n
        return float(np.add.reduce(-np.log(pick)) / len(y)), grad, int(correct)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean())
    grad = p
    grad[np.arange(n), y] -= 1.0
    grad /= n
    return loss, grad, int((logits.argmax(axis=1) == y).sum())


class FloatMLP:
    """The float baseline: plain SGD on W and b (float64)."""

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]]):
        self.params = [(w.copy(), b.copy()) for w, b in params]

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x
        for k, (w, b) in enumerate(self.params):
            h = h @ w.T + b
            if k < len(self.params) - 1:
                h = np.maximum(h, 0.0)
        return h

    def train_batch(self, x: np.ndarray, y: np.ndarray, lr: float,
                    rng: np.random.Generator | None = None) -> tuple[float, int]:
        """One SGD step; returns the batch's mean loss and correct count (before the step)."""
        acts = [x]
        for k, (w, b) in enumerate(self.params):
            h = acts[-1] @ w.T + b
            acts.append(np.maximum(h, 0.0) if k < len(self.params) - 1 else h)
        loss, g, correct = softmax_xent(acts[-1], y)
        grads = []
        for k in range(len(self.params) - 1, -1, -1):
            w, _ = self.params[k]
            grads.append((g.T @ acts[k], g.sum(axis=0)))
            if k:
                g = (g @ w) * (acts[k] > 0)
        for (w, b), (gw, gb) in zip(self.params, reversed(grads), strict=True):
            w -= lr * gw
            b -= lr * gb
        return loss, correct

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for k, (w, b) in enumerate(self.params):
            out[f"float_w{k}"], out[f"float_b{k}"] = w, b
        return out

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        self.params = [(np.array(st[f"float_w{k}"], dtype=np.float64),
                        np.array(st[f"float_b{k}"], dtype=np.float64))
                       for k in range(len(self.params))]


class AnalogMLP:
    """An MLP whose layers are mapped onto the tiles of ``chips`` (a `Device` or `Chips`).

    ``mapping`` bounds the block size (`MappingParameter`); the `NetworkMap` is ``self.map``.
    Biases are digital. ``algorithm`` (`ohmflow.host.algorithms`; default analog SGD) gives each
    layer its update rule (``self.rules``) and the extra arrays the rule owns, mapped after the
    weights.
    """

    def __init__(self, chips: Device | Chips, sizes: list[int], io: IOParams | None = None,
                 update: UpdateParams | None = None, mapping: MappingParameter | None = None,
                 algorithm: Algorithm | None = None):
        self.chips = as_chips(chips)
        self.sizes = list(sizes)
        if len(self.sizes) < 2:
            raise ValueError("a network needs at least an input and an output size")
        self.algorithm = algorithm or Algorithm()
        shapes, names = network_arrays(self.sizes, self.algorithm)
        self.map = NetworkMap(self.chips.config, shapes, chips=len(self.chips), mapping=mapping,
                              names=names)
        configure_windows(self.chips, self.map)
        states = [{} for _ in self.chips]
        arrays = [AnalogLinear(self.chips, lm.n_in, lm.n_out, layer_map=lm, io=io,
                               update=update, link_states=states) for lm in self.map.layers]
        n = len(self.sizes) - 1
        self.layers = arrays[:n]
        extra = self.algorithm.extra_arrays
        self.rules = [self.algorithm.rule(layer, {a: arrays[n + k * len(extra) + m]
                                                  for m, a in enumerate(extra)})
                      for k, layer in enumerate(self.layers)]

    @property
    def device(self) -> Device:
        """Chip 0 (the only one of a one-chip network)."""
        return self.chips[0]

    def refresh(self) -> None:
        """Re-read settings and device maps (after they were changed behind the layers)."""
        for layer in self.layers:
            layer.refresh()
        for rule in self.rules:
            for a in rule.extra.values():
                a.refresh()

    def set_params(self, params: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Program the weights and biases; the algorithms' extra arrays start at zero."""
        for layer, (w, b) in zip(self.layers, params, strict=True):
            layer.set_weights(w, b)
        for rule in self.rules:
            rule.init_extra()

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x
        for k, layer in enumerate(self.layers):
            h = layer.forward(h)
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def train_batch(self, x: np.ndarray, y: np.ndarray, lr: float,
                    rng: np.random.Generator, ledger=None) -> tuple[float, int]:
        """One batch: forward and backward reads, then every layer's update rule (analog SGD:
        its pulse update) and its digital bias update.

        The first layer's input gradient is not needed and not read. Returns the mean loss and
        correct count of the forward pass. With a `CostLedger`, each block's device counters
        are attributed to its forward, backward and update phases.
        """
        acts = [x]
        for k, layer in enumerate(self.layers):
            h = layer.forward(acts[-1], ledger)
            acts.append(np.maximum(h, 0.0) if k < len(self.layers) - 1 else h)
        loss, g, correct = softmax_xent(acts[-1], y)
        deltas = [g]
        for k in range(len(self.layers) - 1, 0, -1):
            g = self.layers[k].backward(g, ledger) * (acts[k] > 0)
            deltas.append(g)
        with self.chips.overlapped():  # a chip goes on to the next layer's update at once
            for layer, rule, a, d in zip(self.layers, self.rules, acts[:-1], reversed(deltas),
                                         strict=True):
                rule.update(a, d, lr, rng, ledger)
                layer.update_bias(d, lr)
        return loss, correct

    def state(self) -> dict[str, np.ndarray]:
        """Each layer's whole state matrix and bias (independent of how it is mapped)."""
        out = {}
        for k, layer in enumerate(self.layers):
            out[f"analog_w{k}"], out[f"analog_b{k}"] = layer.states(), layer.bias.copy()
        if self.algorithm.name != "sgd":
            for k, rule in enumerate(self.rules):
                out.update({f"algo{k}_{n}": v for n, v in rule.state().items()})
        return out

    def algorithm_counters(self) -> dict[str, int]:
        """The rules' transfer counters summed over the layers."""
        out: dict[str, int] = {}
        for rule in self.rules:
            for k, v in rule.count.items():
                out[k] = out.get(k, 0) + v
        return out

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        """Re-program the exact device states and biases saved by `state`."""
        for k, layer in enumerate(self.layers):
            w = np.asarray(st[f"analog_w{k}"], dtype=np.int64)
            if w.shape != (layer.n_out, layer.n_in):
                raise ValueError(f"layer {k}: saved states are {w.shape}, the layer is "
                                 f"{(layer.n_out, layer.n_in)}")
            layer.program(w)
            layer.bias = np.array(st[f"analog_b{k}"], dtype=np.float64)
        if self.algorithm.name != "sgd":
            for k, rule in enumerate(self.rules):
                p = f"algo{k}_"
                rule.load_state({n[len(p):]: v for n, v in st.items() if n.startswith(p)})
        for k, layer in enumerate(self.layers):
            if not np.array_equal(layer.states(), st[f"analog_w{k}"]):
                raise ValueError(f"layer {k}: the device did not take the saved states exactly "
                                 "(states outside this device's bounds: a different device map?)")


def evaluate(model, x: np.ndarray, y: np.ndarray, batch: int = 256) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on (x, y), in chunks of ``batch``."""
    loss = 0.0
    correct = 0
    for s in range(0, len(x), batch):
        lg = model.logits(x[s : s + batch])
        l_, _, c = softmax_xent(lg, y[s : s + batch])
        loss += l_ * len(lg)
        correct += c
    return loss / len(x), correct / len(x)
