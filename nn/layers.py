"""Analog torch layers: `AnalogLinear` and `AnalogConv2d`, their weights device states on chips.

Each layer wraps a host `ohmflow.host.layers.AnalogLinear` (a grid of tile blocks, placed by
`ohmflow.nn.place` together with the model's other analog layers). Forward and backward are
device reads through a `torch.autograd.Function`; the host side computes in float64 numpy, as
`ohmflow train` does. The backward pass also records the layer's input and output gradient, the
two vectors of the pulse update that `ohmflow.nn.AnalogSGD.step` sends to the chip. Under
`torch.no_grad()` nothing is recorded.

The bias is digital: an ordinary `torch.nn.Parameter`, added on the host in float64.
A layer's ``algorithm`` (`ohmflow.host.algorithms`, as aihwkit's rpu_config chooses a
``TransferCompound`` or ``MixedPrecisionCompound``; default analog SGD) is its update rule: the
optimizer hands the recorded vectors to it, and its extra arrays (Tiki-Taka's A) are placed on
tiles beside the weights.

`state_dict` holds each analog layer's device states (``<name>.analog_states``, integers) beside
its bias, and for an algorithm other than SGD its name and options (``<name>.algorithm``) and
its state (``<name>.algorithm.<key>``: extra arrays, digital buffers, counters, as in the
checkpoints of ``ohmflow train``); loading programs them back and checks the devices took them
exactly.
"""

from __future__ import annotations

import copy
import math
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from ohmflow.host.algorithms import ALGORITHMS, Algorithm, UpdateRule, make_algorithm
from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.layers import AnalogLinear as HostLinear

__all__ = ["AnalogConv2d", "AnalogLayer", "AnalogLinear", "analog_layer_of", "as_algorithm"]

STATES = "analog_states"
ALGO = "algorithm"


def as_algorithm(algorithm: Algorithm | str | None = None,
                 options: dict | None = None) -> Algorithm:
    """The `Algorithm` an analog layer trains with: an instance, or a name and its options.

    Names and options are those of ``ohmflow train --algorithm`` / ``--algorithm-option``
    (aihwkit's option names); None is analog SGD. Unknown names or options are refused.
    """
    if isinstance(algorithm, Algorithm):
        if options:
            raise ValueError("algorithm_options go with an algorithm name; an Algorithm "
                             f"instance ({algorithm.name!r}) carries its own options")
        return algorithm
    if algorithm is None:
        if options:
            raise ValueError("algorithm_options need an algorithm name: one of "
                             f"{', '.join(ALGORITHMS)}")
        return Algorithm()
    if not isinstance(algorithm, str):
        raise ValueError(f"algorithm must be a name (one of {', '.join(ALGORITHMS)}) or an "
                         f"ohmflow.host.algorithms.Algorithm, got {algorithm!r}")
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"algorithm_options must be a dict of option values, got {options!r}")
    return make_algorithm(algorithm, options)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=False)


class _AnalogMatmul(torch.autograd.Function):
    """y = W x + b on the chips (rows of x are samples); backward reads W^T d on the chips."""

    @staticmethod
    def forward(ctx, x, bias, analog_ctx, module):
        host = module.host
        xn = _numpy(x)
        host.bias = (np.zeros(module.out_features) if bias is None else _numpy(bias).copy())
        y = host.forward(xn, module.ledger)
        ctx.module, ctx.x, ctx.dtypes = module, xn, (x.dtype, None if bias is None else
                                                     bias.dtype)
        return torch.from_numpy(y).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        module = ctx.module
        d = _numpy(grad_out)
        module.pending.append((ctx.x, d))
        gx = gb = None
        if ctx.needs_input_grad[0]:  # the first layer's input gradient is not read
            gx = torch.from_numpy(module.host.backward(d, module.ledger)).to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            gb = torch.from_numpy(d.sum(axis=0)).to(ctx.dtypes[1])
        return gx, gb, None, None


class AnalogLayer(torch.nn.Module):
    """The part common to analog layers: a weight matrix (out_features, in_features) on chips.

    Until `ohmflow.nn.place` puts the model on chips the layer holds its initial float weights
    (torch's default init, from torch's generator); placing programs them as device states.
    ``io`` and ``update`` are the layer's read and update management (aihwkit's names);
    ``algorithm`` its update rule (`as_algorithm`: an `Algorithm`, or a name with
    ``algorithm_options``). While a `CostLedger` is set as ``ledger`` (`ohmflow.nn.record_costs`)
    the layer's reads and updates are recorded in it.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool,
                 io: IOParams | None, update: UpdateParams | None,
                 algorithm: Algorithm | str | None = None, algorithm_options: dict | None = None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = in_features, out_features
        self.io, self.update_params = io, update
        self.algorithm = as_algorithm(algorithm, algorithm_options)
        self._rule: UpdateRule | None = None
        #: a `CostLedger` recording this layer's device calls, or None
        self.ledger = None
        #: marks the layer among the optimizer's parameters (empty; see `analog_layer_of`)
        self.analog_ctx = torch.nn.Parameter(torch.empty(0))
        self.analog_ctx.analog_layer = weakref.ref(self)
        bound = 1.0 / math.sqrt(in_features)  # torch.nn.Linear's default init
        w = torch.empty(out_features, in_features, dtype=torch.float64).uniform_(-bound, bound)
        self.bias = torch.nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) \
            if bias else None
        self._initial = w.numpy()
        self._host: HostLinear | None = None
        #: (x, d) pairs recorded by backward passes since the last step
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []

    # ----- placement -----
    @property
    def host(self) -> HostLinear:
        """The host layer on the chips (raises if the model was not placed)."""
        if self._host is None:
            self._not_placed()
        return self._host

    def _not_placed(self):
        raise RuntimeError(f"{self.extra_repr()}: the layer is not on a chip; call "
                           "ohmflow.nn.place(model, chips) first")

    @property
    def placed(self) -> bool:
        return self._host is not None

    @property
    def rule(self) -> UpdateRule:
        """The layer's update rule on the chips (its algorithm's extra arrays and buffers)."""
        if self._rule is None:
            self._not_placed()
        return self._rule

    @property
    def extra_arrays(self) -> tuple[str, ...]:
        """Names of the arrays the algorithm needs besides the weights (e.g. ``("A",)``)."""
        return self.algorithm.extra_arrays

    def attach(self, host: HostLinear, extra: dict[str, HostLinear] | None = None) -> None:
        """Use ``host`` and the algorithm's ``extra`` arrays (from `ohmflow.nn.place`).

        Programs the current weights onto ``host``; the extra arrays start at zero, or, if the
        layer was placed before, carry over with the algorithm's buffers.
        """
        if (host.n_in, host.n_out) != (self.in_features, self.out_features):
            raise ValueError(f"a {host.n_in} -> {host.n_out} host layer cannot hold "
                             f"{self.extra_repr()}")
        extra = dict(extra or {})
        if sorted(extra) != sorted(self.extra_arrays):
            raise ValueError(f"algorithm {self.algorithm.name!r} needs the arrays "
                             f"{list(self.extra_arrays)}, got {sorted(extra)}")
        w = self._host.weights() if self._host is not None else self._initial
        old = self._rule.state() if self._rule is not None else None
        self._host = host
        host.set_weights(w)
        self._rule = self.algorithm.rule(host, extra)
        if old is None:
            self._rule.init_extra()
        else:
            self._rule.load_state(old)
        self.pending.clear()

    def __deepcopy__(self, memo):
        if self.placed:
            raise TypeError(f"{self.extra_repr()}: a layer on chips cannot be copied; copy the "
                            "model before ohmflow.nn.place, or save its state_dict")
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = copy.deepcopy(v, memo)
        new.analog_ctx.analog_layer = weakref.ref(new)
        return new

    # ----- weights -----
    def get_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weights the devices hold (float64, (out_features, in_features)) and the bias."""
        w = torch.from_numpy(self.host.weights())
        return w, None if self.bias is None else self.bias.detach().clone()

    def set_weights(self, weight, bias=None) -> None:
        """Program float weights (out_features, in_features) as device states; set the bias."""
        w = weight.detach().cpu().double().numpy() if torch.is_tensor(weight) else \
            np.asarray(weight, dtype=np.float64)
        self.host.set_weights(w.reshape(self.out_features, -1))
        if bias is not None:
            if self.bias is None:
                raise ValueError(f"{self.extra_repr()} has no bias")
            b = torch.as_tensor(np.asarray(bias, dtype=np.float64) if not torch.is_tensor(bias)
                                else bias.detach())
            if b.shape != self.bias.shape:
                raise ValueError(f"bias must have shape {tuple(self.bias.shape)}, got "
                                 f"{tuple(b.shape)}")
            with torch.no_grad():
                self.bias.copy_(b)

    def states(self) -> torch.Tensor:
        """The device states (out_features, in_features), integers."""
        return torch.from_numpy(self.host.states())

    def take_pending(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The inputs and output gradients recorded since the last step (rows stacked), cleared."""
        rec, self.pending = self.pending, []
        if not rec:
            return None
        if len(rec) == 1:
            return rec[0]
        return np.concatenate([x for x, _ in rec]), np.concatenate([d for _, d in rec])

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects {self.in_features} input "
                             f"features, got {x.shape[-1]}")
        return _AnalogMatmul.apply(x, self.bias, self.analog_ctx, self)

    # ----- state_dict -----
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.placed:
            destination[prefix + STATES] = self.states()
            if self.algorithm.name != "sgd":
                destination[prefix + ALGO] = {"name": self.algorithm.name,
                                              "options": self.algorithm.options()}
                for k, v in self.rule.state().items():
                    destination[f"{prefix}{ALGO}.{k}"] = torch.tensor(v)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        states = state_dict.pop(prefix + STATES, None)
        algo = state_dict.pop(prefix + ALGO, None)
        head = f"{prefix}{ALGO}."
        algo_state = {k[len(head):]: state_dict.pop(k) for k in list(state_dict)
                      if k.startswith(head)}
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if states is None:
            if strict and self.placed:
                missing_keys.append(prefix + STATES)
            return
        if not self.placed:
            error_msgs.append(f"{prefix}{STATES}: the layer is not on a chip; call "
                              "ohmflow.nn.place(model, chips) before loading device states")
            return
        s = torch.as_tensor(states).cpu().numpy()
        shape = (self.out_features, self.in_features)
        if s.shape != shape or s.dtype.kind not in "iu":
            error_msgs.append(f"{prefix}{STATES}: expected integer states of shape {shape}, "
                              f"got {s.dtype} {s.shape}")
            return
        if not self._check_algorithm(prefix, algo, algo_state, strict, missing_keys,
                                     error_msgs):
            return
        self.host.program(s.astype(np.int64))
        if not np.array_equal(self.host.states(), s):
            error_msgs.append(f"{prefix}{STATES}: the devices did not take the saved states "
                              "exactly (states outside these devices' bounds: another device "
                              "map?)")
        if algo is not None:
            try:
                self.rule.load_state({k: torch.as_tensor(v).cpu().numpy()
                                      for k, v in algo_state.items()})
            except (KeyError, ValueError) as e:
                error_msgs.append(f"{prefix}{ALGO}: {e}")
        self.pending.clear()

    def _check_algorithm(self, prefix, algo, algo_state, strict, missing_keys,
                         error_msgs) -> bool:
        """Whether a saved algorithm (None: SGD) and its state fit this layer's algorithm."""
        mine = self.algorithm
        if algo is None:
            if algo_state:
                error_msgs.append(f"{prefix}{ALGO}: algorithm state without the algorithm's "
                                  "name and options")
                return False
            if mine.name != "sgd" and strict:
                missing_keys.append(prefix + ALGO)
            return True
        if not isinstance(algo, dict) or set(algo) != {"name", "options"}:
            error_msgs.append(f"{prefix}{ALGO}: expected {{'name': ..., 'options': ...}}, got "
                              f"{algo!r}")
            return False
        if algo["name"] != mine.name or algo["options"] != mine.options():
            error_msgs.append(f"{prefix}{ALGO}: saved with algorithm {algo['name']!r} "
                              f"{algo['options']}, the layer trains with {mine.name!r} "
                              f"{mine.options()}")
            return False
        want = set(self.rule.state())
        if set(algo_state) != want:
            error_msgs.append(f"{prefix}{ALGO}: the saved state has {sorted(algo_state)}, "
                              f"{mine.name!r} needs {sorted(want)}")
            return False
        return True


def analog_layer_of(p: torch.nn.Parameter) -> AnalogLayer | None:
    """The analog layer whose ``analog_ctx`` is ``p``, or None for a digital parameter."""
    ref = getattr(p, "analog_layer", None)
    return ref() if ref is not None else None


class AnalogLinear(AnalogLayer):
    """A fully connected layer y = x W^T + b, W on the chips, b digital (as `torch.nn.Linear`).

    Accepts inputs (..., in_features) of any float dtype; the result has the input's dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 io: IOParams | None = None, update: UpdateParams | None = None,
                 algorithm: Algorithm | str | None = None, algorithm_options: dict | None = None):
        super().__init__(in_features, out_features, bias, io, update, algorithm,
                         algorithm_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self._matmul(x.reshape(-1, x.shape[-1]))
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_digital(cls, m: torch.nn.Linear, io: IOParams | None = None,
                     update: UpdateParams | None = None,
                     algorithm: Algorithm | str | None = None) -> AnalogLinear:
        """An analog copy of ``m`` (its weights become the initial weights, its bias the bias)."""
        a = cls(m.in_features, m.out_features, m.bias is not None, io=io, update=update,
                algorithm=algorithm)
        a._initial = m.weight.detach().cpu().double().numpy().copy()
        if m.bias is not None:
            a.bias = torch.nn.Parameter(m.bias.detach().clone())
        return a


def _pair(v, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) and not isinstance(v, bool) else tuple(v)
    if len(t) != 2 or any(isinstance(a, bool) or not isinstance(a, int) for a in t):
        raise ValueError(f"{name} must be an integer or a pair of integers, got {v!r}")
    return t


class AnalogConv2d(AnalogLayer):
    """2-D convolution as `torch.nn.Conv2d` (groups 1, zero padding), by im2col on the chips.

    Every output position's input patch (in_channels x kernel, torch's unfold order) is one row
    of a matrix product with the (out_channels, in_channels * kh * kw) weights on the chips; the
    update sums over the positions and samples of the batch (as aihwkit's analog convolutions);
    an algorithm that counts samples (``units_in_mbatch=False``) counts each patch as one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, bias: bool = True, *, io: IOParams | None = None,
                 update: UpdateParams | None = None, algorithm: Algorithm | str | None = None,
                 algorithm_options: dict | None = None):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        if min(self.kernel_size + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError("kernel_size, stride and dilation must be >= 1, padding >= 0")
        self.in_channels, self.out_channels = in_channels, out_channels
        kh, kw = self.kernel_size
        super().__init__(in_channels * kh * kw, out_channels, bias, io, update, algorithm,
                         algorithm_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"AnalogConv2d expects (batch, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (self.kernel_size, self.stride, self.padding,
                                                  self.dilation)
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"input {h}x{w} is smaller than the kernel's reach")
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        rows = cols.transpose(1, 2).reshape(n * ho * wo, self.in_features)
        y = self._matmul(rows)
        return y.reshape(n, ho * wo, self.out_channels).transpose(1, 2).reshape(
            n, self.out_channels, ho, wo)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_digital(cls, m: torch.nn.Conv2d, io: IOParams | None = None,
                     update: UpdateParams | None = None,
                     algorithm: Algorithm | str | None = None) -> AnalogConv2d:
        """An analog copy of ``m`` (groups 1, zero padding given as numbers)."""
        if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ValueError(f"AnalogConv2d supports groups=1, padding_mode='zeros' and numeric "
                             f"padding; {m} has groups={m.groups}, padding_mode="
                             f"{m.padding_mode!r}, padding={m.padding!r}")
        a = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                m.bias is not None, io=io, update=update, algorithm=algorithm)
        a._initial = m.weight.detach().cpu().double().reshape(m.out_channels, -1).numpy().copy()
        if m.bias is not None:
            a.bias = torch.nn.Parameter(m.bias.detach().clone())
        return a
