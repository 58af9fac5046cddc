"""The common interface of the training algorithms, analog SGD, and the chip primitives they share.

An algorithm is a per-layer update rule. `Algorithm` holds the options (a frozen dataclass whose
fields carry aihwkit's names and defaults) and names the extra arrays each layer needs
(``extra_arrays``, e.g. ``("A",)`` for Tiki-Taka); `Algorithm.rule` builds one `UpdateRule` per
layer, owning the layer's extra arrays (mapped onto tiles like the weights) and its digital
buffers. The weight array (``layer{k}``) is always the one the forward and backward reads use.

The rules run on the chip's primitives only (docs/numerics.md): the stochastic pulse update, the
forward read, and the deterministic PULSE:

- `read_columns`: column i of an array is the forward read of the one-hot input e_i (all blocks
  that hold input i, one device call per block for all the columns asked);
- `pulse_column`: signed pulse counts on the devices of input i (PULSE along a row of the
  numerics, one call per block that holds input i).
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import nullcontext
from functools import partial
from typing import ClassVar

import numpy as np

#: algorithm counters every rule reports (digital bookkeeping; the device counts are the ledger's)
COUNTER_NAMES = ("transfers", "transfer_reads", "transfer_pulse_ops", "transfer_pulses")


def _phase(layer, ledger, block, phase: str = "update"):
    if ledger is None:
        return nullcontext()
    return ledger.phase(block.name, phase, layer.chips[block.chip], block.tile)


def read_columns(layer, cols: list[int], ledger=None) -> np.ndarray:
    """Columns ``cols`` of ``layer``'s weights, (n_out, len(cols)), by one-hot forward reads.

    Each block that holds some of the inputs reads its one-hot vectors in one device call (noise
    management scales a one-hot vector by 1; the read carries the ADC's resolution and noise).
    The reads are recorded in the ledger as the block's ``update`` phase (they serve the update).
    """
    cols = [int(i) for i in cols]
    out = np.zeros((layer.n_out, len(cols)))
    jobs, places = [], []
    for b, t in zip(layer.blocks, layer.tiles, strict=True):
        which = [k for k, i in enumerate(cols) if b.i0 <= i < b.i1]
        if not which:
            continue
        x = np.zeros((len(which), b.n_in))
        x[np.arange(len(which)), [cols[k] - b.i0 for k in which]] = 1.0

        def job(t=t, x=x, b=b):
            with _phase(layer, ledger, b):
                return t.forward(x)
        jobs.append((b.chip, job))
        places.append((b, which))
    for (b, which), y in zip(places, layer.chips.run(jobs), strict=True):
        out[b.outputs, which] = y.T
    return out


def pulse_column(layer, i: int, counts: np.ndarray, ledger=None) -> int:
    """Signed pulse counts (n_out,) on the devices of input ``i`` (> 0 up); returns PULSE ops.

    Blocks whose counts are all zero get no command.
    """
    return _pulse_line(layer, "row", i, counts, ledger)


def pulse_output(layer, j: int, counts: np.ndarray, ledger=None) -> int:
    """Signed pulse counts (n_in,) on the devices of output ``j``; returns PULSE ops."""
    return _pulse_line(layer, "col", j, counts, ledger)


def _pulse_line(layer, axis: str, index: int, counts: np.ndarray, ledger) -> int:
    """PULSE on one line of ``layer``: input ``index`` (``axis`` "row", counts over the outputs)
    or output ``index`` ("col", counts over the inputs), one op per block that holds the line
    and has a nonzero count."""
    counts = np.asarray(counts, dtype=np.int64)
    jobs = []
    for b, t in zip(layer.blocks, layer.tiles, strict=True):
        lo, hi, other = (b.i0, b.i1, b.outputs) if axis == "row" else (b.j0, b.j1, b.inputs)
        if not lo <= index < hi:
            continue
        c = counts[other]
        if not c.any():
            continue
        jobs.append((b.chip, partial(_pulse_job, layer, ledger, b, t, axis, index - lo, c)))
    layer.chips.run(jobs)
    return len(jobs)


def pulse_outputs(layer, rows: list[int], counts: np.ndarray, ledger=None) -> int:
    """`pulse_output` for each output ``rows[k]`` with counts ``counts[k]`` (n_in,), in turn;
    returns the PULSE ops (see `pulse_lines`)."""
    return pulse_lines(layer, "col", rows, counts, ledger)


def pulse_inputs(layer, cols: list[int], counts: np.ndarray, ledger=None) -> int:
    """`pulse_column` for each input ``cols[k]`` with counts ``counts[k]`` (n_out,), in turn;
    returns the PULSE ops (see `pulse_lines`)."""
    return pulse_lines(layer, "row", cols, counts, ledger)


def pulse_lines(layer, axis: str, lines: list[int], counts: np.ndarray, ledger=None) -> int:
    """PULSE on lines of ``layer`` in turn: inputs (``axis`` "row", counts[k] of length n_out)
    or outputs ("col", length n_in); returns the PULSE ops.

    Each chip gets its ops in the order one `pulse_column` / `pulse_output` after another would
    send them (so each op has the same nonce), in one `Device.pulse_lines` call and one ledger
    block; blocks whose counts are all zero get no op.
    """
    counts = np.asarray(counts, dtype=np.int64)
    lines = np.asarray(lines, dtype=np.int64)
    n_blocks = len(layer.blocks)
    per_chip: dict[int, list] = {}
    for bi, b in enumerate(layer.blocks):
        lo, hi, other = (b.i0, b.i1, b.outputs) if axis == "row" else (b.j0, b.j1, b.inputs)
        ks = np.flatnonzero((lines >= lo) & (lines < hi))
        if not len(ks):
            continue
        part = counts[ks, other]
        live = part.any(axis=1)
        if live.any():
            per_chip.setdefault(b.chip, []).append((ks[live] * n_blocks + bi, bi, part[live],
                                                    lines[ks[live]] - lo))
    jobs, ops = [], 0
    for chip, parts in per_chip.items():
        order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
        block_of = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])[order]
        index = np.concatenate([p[3] for p in parts])[order]
        line_counts = [c for p in parts for c in p[2]]
        line_counts = [line_counts[k] for k in order]
        tiles = [layer.blocks[bi].tile for bi in block_of]
        ledger_parts = [(layer.blocks[p[1]].name, layer.blocks[p[1]].tile, len(p[0]))
                        for p in parts]
        ops += len(order)
        jobs.append((chip, partial(_pulse_lines_job, layer.chips[chip], ledger, ledger_parts,
                                   axis, tiles, index.tolist(), line_counts)))
    layer.chips.run(jobs)
    return ops


def _pulse_lines_job(device, ledger, parts, axis, tiles, index, line_counts):
    with nullcontext() if ledger is None else ledger.phases("update", device, parts):
        device.pulse_lines(axis, tiles, index, line_counts)


def _pulse_job(layer, ledger, b, t, axis, index, c):
    with _phase(layer, ledger, b):
        t.device.pulse(t.tile, axis, index, c)


def dw_min_of(layer) -> float:
    """The layer's mean step per pulse in weight units (mean over its blocks' device maps)."""
    n = [t.n_in * t.n_out for t in layer.tiles]
    return float(sum(t.dw_min * k for t, k in zip(layer.tiles, n, strict=True)) / sum(n))


class UpdateRule:
    """The update of one layer: ``weight`` (the array read forward and backward) and ``extra``
    (name -> `AnalogLinear` of the algorithm's extra arrays)."""

    def __init__(self, algo: Algorithm, weight, extra: dict):
        self.algo, self.weight, self.extra = algo, weight, extra
        self.count = dict.fromkeys(COUNTER_NAMES, 0)

    def update(self, x: np.ndarray, d: np.ndarray, lr: float, rng: np.random.Generator,
               ledger=None) -> None:
        """One batch's update from the layer's inputs x (B, n_in) and errors d (B, n_out)."""
        raise NotImplementedError

    def init_extra(self) -> None:
        """Program the extra arrays' starting states (all zero: A starts empty)."""
        for layer in self.extra.values():
            layer.program(np.zeros((layer.n_out, layer.n_in), dtype=np.int64))

    # ----- checkpoints -----
    def buffers(self) -> dict[str, np.ndarray]:
        """Digital state to checkpoint (besides the arrays' device states)."""
        return {}

    def load_buffers(self, st: dict[str, np.ndarray]) -> None:
        """Restore what `buffers` returned."""

    def state(self) -> dict[str, np.ndarray]:
        out = {f"array_{n}": a.states() for n, a in self.extra.items()}
        out.update(self.buffers())
        out["counters"] = np.array([self.count[k] for k in COUNTER_NAMES], dtype=np.int64)
        return out

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        for n, a in self.extra.items():
            s = np.asarray(st[f"array_{n}"], dtype=np.int64)
            if s.shape != (a.n_out, a.n_in):
                raise ValueError(f"array {n}: saved states are {s.shape}, the array is "
                                 f"{(a.n_out, a.n_in)}")
            a.program(s)
            if not np.array_equal(a.states(), s):
                raise ValueError(f"array {n}: the device did not take the saved states exactly")
        self.load_buffers(st)
        self.count = {k: int(v) for k, v in zip(COUNTER_NAMES, st["counters"], strict=True)}


class SGDRule(UpdateRule):
    """Analog SGD: the layer's stochastic pulse update, exactly as `AnalogLinear.update`."""

    def update(self, x, d, lr, rng, ledger=None) -> None:
        self.weight.update(x, d, lr, rng, ledger)


def _check_option(name: str, v, kind, lo=None, hi=None, lo_open=False):
    if kind is bool:
        if not isinstance(v, bool):
            raise ValueError(f"option {name} must be true or false, got {v!r}")
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"option {name} must be a number, got {v!r}")
    if kind is int and v != int(v):
        raise ValueError(f"option {name} must be an integer, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"option {name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"option {name} must be <= {hi}, got {v!r}")


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Options of an algorithm (subclasses add fields); `rule` makes the per-layer rule."""

    name: ClassVar[str] = "sgd"
    aihwkit: ClassVar[str] = "SingleRPUConfig (plain analog SGD)"
    extra_arrays: ClassVar[tuple[str, ...]] = ()
    #: option -> (type, lower bound, upper bound, lower bound excluded)
    limits: ClassVar[dict] = {}
    rule_class: ClassVar[type] = SGDRule

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            kind, lo, hi, lo_open = self.limits.get(f.name, (type(f.default), None, None, False))
            _check_option(f.name, getattr(self, f.name), kind, lo, hi, lo_open)

    def rule(self, weight, extra: dict) -> UpdateRule:
        """The update rule of one layer (``extra``: name -> `AnalogLinear`)."""
        return self.rule_class(self, weight, extra)

    def options(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_options(cls, options: dict) -> Algorithm:
        """The algorithm with ``options`` (names as aihwkit's); unknown names are refused."""
        names = cls.option_names()
        unknown = sorted(set(options) - set(names))
        if unknown:
            have = ", ".join(names) if names else "none"
            raise ValueError(f"algorithm {cls.name!r} has no option(s) {', '.join(unknown)}; "
                             f"its options: {have}")
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        kw = {}
        for k, v in options.items():
            kind = cls.limits.get(k, (type(defaults[k]),))[0]
            if kind is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            kw[k] = v
        return cls(**kw)


def chunk_reads(credit: float, per_unit: float) -> tuple[int, float]:
    """Whole transfers due after adding ``per_unit`` to ``credit``: (count, remaining credit)."""
    credit += per_unit
    n = int(math.floor(credit + 1e-12))
    return n, credit - n
