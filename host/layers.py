"""`AnalogLinear`: a fully connected layer of any size, mapped onto tiles of one or more chips.

The layer's weight matrix is a grid of blocks (`ohmflow.host.mapping`), each an `AnalogTile` with
its own DAC and ADC periphery (noise, bound and update management per block, as aihwkit's mapped
layers do per tile):

- forward: each block reads its slice of x; the outputs of the blocks of one output slice (the
  row blocks) are summed digitally, in block order, then the digital bias is added;
- backward: each block reads its slice of d through the transposed array; the blocks of one input
  slice (the column blocks) are summed digitally;
- update: each block gets its slices of x and d and chooses its own BL and probability scaling
  from them (BL is a per-chip setting, written before a block whose BL differs from the last).

Device calls of blocks on different chips run at the same time (`ohmflow.host.chips`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from functools import partial

import numpy as np
from ohmflow.host import periphery
from ohmflow.host.analog_tile import AnalogTile, IOParams, UpdateParams, stochastic_round
from ohmflow.host.chips import Chips, as_chips
from ohmflow.host.device import Device
from ohmflow.host.mapping import LayerMap, MappingParameter, NetworkMap

__all__ = ["AnalogLinear", "IOParams", "UpdateParams", "configure_windows", "stochastic_round"]


def configure_windows(chips: Chips, netmap: NetworkMap) -> None:
    """Set every chip's tile windows to the blocks the map places on it."""
    for k, dev in enumerate(chips):
        shapes = netmap.chip_shapes(k)
        if tuple(dev.settings().shapes) != shapes:
            dev.configure(shapes=shapes)


def _matrix(name: str, a, shape: tuple[int, int]) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != shape[1]:
        raise ValueError(f"{name} must be (batch, {shape[1]}), got shape {a.shape}")
    if not periphery.all_finite(a):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _shaped(name: str, a, n: int) -> np.ndarray:
    """`_matrix` but for the finiteness, which the caller's compiled call checks."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name} must be (batch, {n}), got shape {a.shape}")
    return a


class AnalogLinear:
    """y = W x + b with W (n_out, n_in) on tiles of ``chips`` (a `Device` or `Chips`), b digital.

    ``layer_map`` places the blocks (a layer of a `NetworkMap`); without one, the layer alone is
    mapped from tile 0 of chip 0 on (``mapping`` limits the block size) and the chips' windows
    are set. ``link_states`` holds one dict per chip, shared by all layers on the chips.
    """

    def __init__(self, chips: Device | Chips, n_in: int, n_out: int, *,
                 layer_map: LayerMap | None = None, io: IOParams | None = None,
                 update: UpdateParams | None = None, mapping: MappingParameter | None = None,
                 link_states: list[dict] | None = None):
        self.chips = as_chips(chips)
        if layer_map is None:
            netmap = NetworkMap(self.chips.config, [(n_in, n_out)], chips=len(self.chips),
                                mapping=mapping)
            configure_windows(self.chips, netmap)
            layer_map = netmap.layers[0]
        if (layer_map.n_in, layer_map.n_out) != (n_in, n_out):
            raise ValueError(f"the layer map is for {layer_map.n_in} -> {layer_map.n_out}, the "
                             f"layer is {n_in} -> {n_out}")
        self.map = layer_map
        self.n_in, self.n_out = n_in, n_out
        states = link_states if link_states is not None else [{} for _ in self.chips]
        self.tiles = [AnalogTile(self.chips[b.chip], b.tile, b.n_in, b.n_out, io, update,
                                 states[b.chip]) for b in layer_map.blocks]
        self.unit = self.tiles[0].unit
        #: every block on a fused twin computing in this thread: an update's codes and pulses
        #: run in one call per block (`AnalogTile.coded_update`), the cost ledger takes each
        #: call by `CostLedger.record`
        self._fused = self.chips.inline and all(t._fused for t in self.tiles)
        #: a fused layer of one block: its calls made directly, the input checked in them
        self._one = self._fused and len(self.tiles) == 1
        self.bias = np.zeros(n_out)

    @property
    def blocks(self):
        return self.map.blocks

    def refresh(self) -> None:
        """Re-read settings and device maps (after they were changed behind the layer)."""
        self.chips.run([(b.chip, t.refresh) for b, t in zip(self.blocks, self.tiles, strict=True)])

    # ----- weights -----
    def set_weights(self, w: np.ndarray, b: np.ndarray | None = None) -> None:
        """Program float weights (n_out, n_in) as device states (each clipped to its bounds)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.n_out, self.n_in) or not np.isfinite(w).all():
            raise ValueError(f"weights must be finite, shape {(self.n_out, self.n_in)}, got "
                             f"{w.shape}")
        self.program(self.tiles[0].codes_of(w))
        if b is not None:
            b = np.asarray(b, dtype=np.float64)
            if b.shape not in ((self.n_out,), (1, self.n_out)) or not np.isfinite(b).all():
                raise ValueError(f"bias must be finite, shape ({self.n_out},), got {b.shape}")
            self.bias = b.reshape(self.n_out).copy()

    def program(self, states: np.ndarray) -> None:
        """Write integer device states (n_out, n_in), block by block."""
        states = np.asarray(states, dtype=np.int64)
        if states.shape != (self.n_out, self.n_in):
            raise ValueError(f"states must have shape {(self.n_out, self.n_in)}, got "
                             f"{states.shape}")
        self.chips.run([(b.chip, partial(t.program, states[b.outputs, b.inputs]))
                        for b, t in zip(self.blocks, self.tiles, strict=True)])

    def states(self) -> np.ndarray:
        """The device states (n_out, n_in), integers, assembled from the blocks."""
        out = np.zeros((self.n_out, self.n_in), dtype=np.int64)
        parts = self.chips.run([(b.chip, t.states) for b, t in
                                zip(self.blocks, self.tiles, strict=True)])
        for b, s in zip(self.blocks, parts, strict=True):
            out[b.outputs, b.inputs] = s
        return out

    def weights(self) -> np.ndarray:
        """The weights the devices hold, in float units."""
        return self.states() / self.unit

    # ----- reads -----
    def _phase(self, ledger, block, phase: str):
        if ledger is None:
            return nullcontext()
        return ledger.phase(block.name, phase, self.chips[block.chip], block.tile)

    def _job(self, fn, ledger, block, phase):
        def run():
            with self._phase(ledger, block, phase):
                return fn()
        return run

    def _run(self, fns, ledger, phase: str, post: bool = False) -> list | None:
        """One call per block (``fns`` in block order, a list or a generator), each in its
        ledger phase; results in block order. ``post``: the results are not needed, the calls
        may still run when this returns (`Chips.post`). When the chips compute in this thread
        (`Chips.inline`) the calls run here, in order, as `Chips.run` would run them: on one
        chip up to the first failure, on several chips all of them, then the first failure is
        raised."""
        chips = self.chips
        if not chips.inline:
            jobs = ((b.chip, self._job(fn, ledger, b, phase))
                    for b, fn in zip(self.blocks, fns, strict=True))
            return chips.post(jobs) if post else chips.run(jobs)
        if len(chips) == 1 and ledger is None:
            return [fn() for fn in fns]
        out, error = [], None
        for b, t, fn in zip(self.blocks, self.tiles, fns, strict=True):
            try:
                if ledger is None:
                    out.append(fn())
                elif self._fused:  # many small calls: the ledger's cheaper record
                    dev = t.device
                    before = dev.tile_counters(b.tile)
                    t0 = time.perf_counter()
                    out.append(fn())
                    ledger.record(b.name, phase, dev, b.tile, before, time.perf_counter() - t0)
                else:
                    with ledger.phase(b.name, phase, chips[b.chip], b.tile):
                        out.append(fn())
            except Exception as e:
                if len(chips) == 1:
                    raise
                out.append(None)
                error = error or e
        if error is not None:
            raise error
        return out

    def _call_one(self, fn, ledger, phase: str):
        """``fn()``, the call of the layer's only block, recorded in ``ledger``'s ``phase``."""
        if ledger is None:
            return fn()
        t = self.tiles[0]
        dev = t.device
        before = dev.tile_counters(t.tile)
        t0 = time.perf_counter()
        out = fn()
        ledger.record(self.blocks[0].name, phase, dev, t.tile, before, time.perf_counter() - t0)
        return out

    def forward(self, x: np.ndarray, ledger=None) -> np.ndarray:
        """y = W x + b for a batch x (B, n_in); row blocks' outputs summed in block order."""
        if self._one:  # x's finiteness is checked in the compiled read, before it reads
            x = _shaped("x", x, self.n_in)
            return periphery.plus_bias(self._call_one(partial(self.tiles[0].forward, x), ledger,
                                                      "forward"), self.bias)
        x = _matrix("x", x, (0, self.n_in))
        parts = self._run([partial(t.forward, x[:, b.inputs])
                           for b, t in zip(self.blocks, self.tiles, strict=True)], ledger,
                          "forward")
        if len(parts) == 1:  # (0 + part) + bias, as the sum over blocks below
            return periphery.plus_bias(parts[0], self.bias)
        y = np.zeros((len(x), self.n_out))
        for b, part in zip(self.blocks, parts, strict=True):
            y[:, b.outputs] += part
        return y + self.bias

    def backward(self, d: np.ndarray, ledger=None) -> np.ndarray:
        """dx = W^T d for a batch d (B, n_out); column blocks' outputs summed in block order."""
        if self._one:
            d = _shaped("d", d, self.n_out)
            dx = self._call_one(partial(self.tiles[0].backward, d), ledger, "backward")
            dx += 0.0  # 0 + part, as the sum over blocks below
            return dx
        d = _matrix("d", d, (0, self.n_out))
        parts = self._run([partial(t.backward, d[:, b.outputs])
                           for b, t in zip(self.blocks, self.tiles, strict=True)], ledger,
                          "backward")
        dx = np.zeros((len(d), self.n_in))
        for b, part in zip(self.blocks, parts, strict=True):
            dx[:, b.inputs] += part
        return dx

    # ----- update -----
    def update(self, x: np.ndarray, d: np.ndarray, lr: float, rng: np.random.Generator,
               ledger=None) -> None:
        """W += -lr d^T x in expectation (summed over the batch), by stochastic pulses.

        Each block draws its codes from ``rng`` in block order (so the run does not depend on
        which chip answers first). Twins in this thread run each block's codes and pulses in one
        compiled call, block after block (the same draws); on other chips a block's chip pulses
        as soon as its codes are drawn, while the next block's are, and inside
        `Chips.overlapped` the pulses may still run when this returns. The bias is not touched
        (see `update_bias`).
        """
        if self._one and lr > 0:  # finiteness checked in the compiled call, before it pulses
            x, d = _shaped("x", x, self.n_in), _shaped("d", d, self.n_out)
        else:
            x, d = _matrix("x", x, (0, self.n_in)), _matrix("d", d, (0, self.n_out))
        if len(x) != len(d):
            raise ValueError(f"x and d must have the same batch size, got {len(x)} and {len(d)}")
        if lr <= 0:
            return
        if self._one:
            self._call_one(partial(self.tiles[0].coded_update, x, d, lr, rng), ledger, "update")
            return
        if self._fused:  # codes and pulses of each block in one compiled call, in block order
            self._run([partial(t.coded_update, x[:, b.inputs], d[:, b.outputs], lr, rng)
                       for b, t in zip(self.blocks, self.tiles, strict=True)], ledger, "update")
            return
        fns = (partial(t.apply_update, *t.update_codes(x[:, b.inputs], d[:, b.outputs], lr, rng))
               for b, t in zip(self.blocks, self.tiles, strict=True))
        self._run(fns, ledger, "update", post=True)

    def update_bias(self, d: np.ndarray, lr: float) -> None:
        """Digital SGD on the bias: b -= lr * sum_b d."""
        self.bias -= lr * np.add.reduce(np.asarray(d), axis=0)  # d.sum(axis=0), unwrapped
