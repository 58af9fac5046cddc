"""Hardware-cost accounting: attribute a device's counter deltas to (layer, phase).

A training loop wraps each device call in ``ledger.phase(layer, phase, device, tile)``; the
ledger reads ``device.tile_counters(tile)`` before and after and adds the tile's deltas to that
(layer, phase) entry (``ledger.phases`` wraps a batch of calls on several tiles of one device,
each tile's deltas to its own layer, counted as one call each). A mapped layer records one
entry per block: ``layer`` is the block's name (``layer{k}``, or ``layer{k}.{r}.{c}`` for a
layer of several blocks; see `ohmflow.host.mapping`), and blocks on different chips record from
their chips' threads.
Besides the device counters (``ohmflow.emulator.config.COUNTERS`` and
``cycles`` on the RTL) each entry carries five counts the ledger derives from the tile's
settings at the time of the call, which the projection model (``ohmflow.host.projection``) needs:

``calls``
    Number of ``phase`` blocks.
``weight_elems``
    Sum over calls of the tile's active window ``n_in * n_out`` (weights a digital
    accelerator would read once per call).
``device_updates``
    ``update_samples * n_in * n_out``: device-level multiply-adds of the rank-1 updates.
``update_values``
    ``update_samples * (n_in + n_out)``: the x and d values of the rank-1 updates.
``pulse_slots``
    ``update_samples * bl + pulse_ops * bl_max``: pulse time slots of the updates, at the BL the
    updates ran with (a deterministic pulse op is charged the maximum train length, an upper
    bound).

The ledger also keeps the wall-clock seconds spent inside each block (``wall_s``) and the
largest DAC/ADC widths seen, and serialises to JSON.
"""

from __future__ import annotations

import json
import numbers
import operator
import threading
import time
from pathlib import Path

from ohmflow.emulator.config import COUNTERS

PHASES = ("forward", "backward", "update")
#: device counters the ledger tracks (``cycles`` only when the device reports it)
DEVICE_COUNTERS = (*COUNTERS, "cycles")
#: counts derived by the ledger from the tile's settings
DERIVED = ("calls", "weight_elems", "device_updates", "update_values", "pulse_slots")
FIELDS = (*DEVICE_COUNTERS, *DERIVED)
_TRACKED = frozenset(DEVICE_COUNTERS)
FORMAT_VERSION = 1


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"counter {name!r} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"counter {name!r} must be non-negative, got {value}")
    return int(value)


class _Phase:
    """The context manager of `CostLedger.phase` and `CostLedger.phases` (a class: it runs once
    per device call)."""

    __slots__ = ("ledger", "phase", "device", "parts", "settings", "shapes", "before", "key",
                 "t0")

    def __init__(self, ledger: CostLedger, phase: str, device, parts: list[tuple[str, int, int]]):
        self.ledger, self.phase, self.device, self.parts = ledger, phase, device, parts

    def __enter__(self) -> None:
        led, device = self.ledger, self.device
        key = self.key = id(device)
        if key in led._active:
            raise ValueError("ledger.phase blocks on the same device must not nest")
        if led.clock_hz is None:
            led.clock_hz = float(device.config.clock_hz)
        settings = self.settings = device.settings()
        if settings.in_bits > led.in_bits:
            led.in_bits = settings.in_bits
        if settings.out_bits > led.out_bits:
            led.out_bits = settings.out_bits
        self.shapes, self.before = [], []
        shapes, counters = settings.shapes, device.tile_counters
        for layer, tile, _ in self.parts:
            n_in, n_out = shapes[tile]
            shape = (int(n_in), int(n_out))
            led.shapes[layer] = shape
            self.shapes.append(shape)
            self.before.append(dict(counters(tile)))
        led._active.add(key)
        self.t0 = time.perf_counter()

    def __exit__(self, exc_type, exc, tb) -> bool:
        wall = time.perf_counter() - self.t0
        led = self.ledger
        led._active.discard(self.key)
        if exc_type is not None:
            return False
        parts = self.parts
        all_calls = parts[0][2] if len(parts) == 1 else sum(calls for _, _, calls in parts)
        counters = self.device.tile_counters
        # the BL the block's updates ran with: set inside the block (an update writes its BL
        # just before it pulses), so read at the end, not at the start
        bl = self.device.settings().bl
        for (layer, tile, calls), (n_in, n_out), before in zip(parts, self.shapes, self.before,
                                                                strict=True):
            after = counters(tile)
            if list(after) == list(before) and after.keys() <= _TRACKED:  # the usual case
                # the same names in the same order: subtract value by value (integers of any
                # type: `to_dict` writes them as Python ints)
                deltas = dict(zip(after, map(operator.sub, after.values(), before.values()),
                                  strict=True))
            else:
                deltas = {name: int(after[name]) - int(before[name]) for name in DEVICE_COUNTERS
                          if name in after and name in before}
            if deltas and min(deltas.values()) < 0:
                name = next(k for k, v in deltas.items() if v < 0)
                raise ValueError(f"counter {name!r} of tile {tile} went down by "
                                 f"{-deltas[name]} during {layer}/{self.phase}: was the device "
                                 "reset inside the block?")
            samples = deltas.get("update_samples", 0)
            size = n_in * n_out
            deltas["calls"] = calls
            deltas["weight_elems"] = calls * size
            deltas["device_updates"] = samples * size
            deltas["update_values"] = samples * (n_in + n_out)
            deltas["pulse_slots"] = (samples * bl
                                     + deltas.get("pulse_ops", 0) * self.device.config.bl_max)
            led._accumulate(layer, self.phase, deltas,
                            wall if calls == all_calls else wall * calls / all_calls)
        return False


def _check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    return phase


class CostLedger:
    """Counter deltas per (layer, phase), with totals and FPGA time from cycles.

    ``clock_hz`` turns ``cycles`` into FPGA time; if not given, the first device passed to
    `phase` supplies its ``config.clock_hz``.
    """

    def __init__(self, clock_hz: float | None = None):
        if clock_hz is not None and not clock_hz > 0:
            raise ValueError(f"clock_hz must be positive, got {clock_hz!r}")
        self.clock_hz = float(clock_hz) if clock_hz is not None else None
        self.entries: dict[tuple[str, str], dict[str, int]] = {}
        self.wall_s: dict[tuple[str, str], float] = {}
        self.has_cycles = False
        self.in_bits = 0
        self.out_bits = 0
        #: active window (n_in, n_out) of each layer's tile, as last seen
        self.shapes: dict[str, tuple[int, int]] = {}
        self._active: set[int] = set()
        #: blocks of different chips record from their chips' worker threads
        self._lock = threading.Lock()

    # ----- recording -----
    def phase(self, layer: str, phase: str, device, tile: int) -> _Phase:
        """Attribute the deltas of ``tile``'s counters during the block to (layer, phase).

        Blocks on one device must not nest: the outer block would count the inner one again.
        A block left by an exception records nothing.
        """
        return _Phase(self, _check_phase(phase), device, [(layer, tile, 1)])

    def phases(self, phase: str, device, parts: list[tuple[str, int, int]]) -> _Phase:
        """`phase` for a block of ``calls`` device calls on each (layer, tile, calls) of
        ``parts`` (one layer per tile): each tile's deltas go to its layer, as if each call had
        its own `phase` block; the wall-clock time is shared in proportion to the calls."""
        _check_phase(phase)
        for layer, _, calls in parts:
            if not isinstance(layer, str) or not layer:
                raise ValueError(f"layer must be a non-empty string, got {layer!r}")
            if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
                raise ValueError(f"calls must be an integer >= 1, got {calls!r}")
        tiles = [tile for _, tile, _ in parts]
        if len(set(tiles)) != len(tiles):
            raise ValueError(f"each tile may appear once in ledger.phases, got tiles {tiles}")
        return _Phase(self, phase, device, list(parts))

    def add(self, layer: str, phase: str, counts: dict[str, int], wall_s: float = 0.0) -> None:
        """Add counts (names in `FIELDS`) to (layer, phase); unknown names or negatives raise."""
        _check_phase(phase)
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"layer must be a non-empty string, got {layer!r}")
        unknown = set(counts) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown counter(s) {sorted(unknown)}; known: {list(FIELDS)}")
        checked = {k: _check_count(k, v) for k, v in counts.items()}
        if not wall_s >= 0:
            raise ValueError(f"wall_s must be non-negative, got {wall_s!r}")
        self._accumulate(layer, phase, checked, float(wall_s))

    def _accumulate(self, layer: str, phase: str, counts: dict[str, int], wall_s: float) -> None:
        """`add` for counts already checked (non-negative ints with known names)."""
        with self._lock:
            self._accumulate_locked(layer, phase, counts, wall_s)

    def _accumulate_locked(self, layer, phase, counts, wall_s) -> None:
        if "cycles" in counts:
            self.has_cycles = True
        key = (layer, phase)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = dict.fromkeys(FIELDS, 0)
        names = counts.keys()  # entry[k] += v for each count, in C loops
        entry.update(zip(names, map(operator.add, map(entry.__getitem__, names),
                                    counts.values()), strict=True))
        self.wall_s[key] = self.wall_s.get(key, 0.0) + wall_s

    # ----- queries -----
    @property
    def layers(self) -> list[str]:
        """Layer names in first-seen order."""
        return list(dict.fromkeys(layer for layer, _ in self.entries))

    def get(self, layer: str, phase: str) -> dict[str, int]:
        """The counts of one (layer, phase); zeros if nothing was recorded."""
        _check_phase(phase)
        return dict(self.entries.get((layer, phase), dict.fromkeys(FIELDS, 0)))

    def by_phase(self) -> dict[str, dict[str, int]]:
        """Counts summed over layers, for each phase."""
        out = {p: dict.fromkeys(FIELDS, 0) for p in PHASES}
        for (_, phase), entry in self.entries.items():
            for k, v in entry.items():
                out[phase][k] += v
        return out

    def totals(self) -> dict[str, int]:
        """Counts summed over every layer and phase."""
        out = dict.fromkeys(FIELDS, 0)
        for entry in self.entries.values():
            for k, v in entry.items():
                out[k] += v
        return out

    def fpga_time_s(self, phase: str | None = None) -> float | None:
        """FPGA time (cycles / clock_hz) of one phase or of all; None without cycle counts."""
        if not self.has_cycles or not self.clock_hz:
            return None
        counts = self.totals() if phase is None else self.by_phase()[_check_phase(phase)]
        return counts["cycles"] / self.clock_hz

    def emulator_wall_s(self, phase: str | None = None) -> float:
        """Host wall-clock seconds spent inside `phase` blocks."""
        return sum(w for (_, p), w in self.wall_s.items() if phase is None or p == phase)

    # ----- serialisation -----
    def to_dict(self) -> dict:
        return {
            "format": "ohmflow-ledger",
            "version": FORMAT_VERSION,
            "clock_hz": self.clock_hz,
            "has_cycles": self.has_cycles,
            "in_bits": self.in_bits,
            "out_bits": self.out_bits,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "entries": [
                {"layer": layer, "phase": phase, "wall_s": self.wall_s.get((layer, phase), 0.0),
                 "counts": {k: int(v) for k, v in entry.items()}}
                for (layer, phase), entry in self.entries.items()
            ],
            "totals": {k: int(v) for k, v in self.totals().items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> CostLedger:
        if d.get("format") != "ohmflow-ledger":
            raise ValueError("not an ohmflow ledger: field 'format' must be 'ohmflow-ledger'")
        if d.get("version") != FORMAT_VERSION:
            raise ValueError(f"ledger version {d.get('version')!r} is not {FORMAT_VERSION}")
        led = cls(d.get("clock_hz"))
        for e in d.get("entries", []):
            for name in ("layer", "phase", "counts"):
                if name not in e:
                    raise ValueError(f"ledger entry is missing field {name!r}")
            led.add(e["layer"], e["phase"], e["counts"], wall_s=e.get("wall_s", 0.0))
        led.has_cycles = bool(d.get("has_cycles", led.has_cycles))
        led.in_bits = int(d.get("in_bits", 0))
        led.out_bits = int(d.get("out_bits", 0))
        led.shapes = {k: (int(v[0]), int(v[1])) for k, v in d.get("shapes", {}).items()}
        return led

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, text: str) -> CostLedger:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CostLedger:
        return cls.from_json(Path(path).read_text())
