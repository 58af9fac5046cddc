"""Training work of an MLP as ledger counts: grouping of block entries, analytic ledgers, scaling.

A layer larger than a tile is split into a grid of blocks; the ledger then holds one entry per
block, named ``layer{k}`` (one block) or ``layer{k}.{r}.{c}`` (input block r, output block c),
with ``ledger.shapes[name] = (n_in, n_out)`` of the block (`ohmflow.host.mapping.layer_of` and
`block_index` read those names). `analytic_ledger` writes the counts one training step of an MLP
would leave, from layer shapes alone (for networks too large to train here); `PerSample`
carries the rates that only a run can measure (re-reads, live update samples, pulse-train length,
pulses per device update) from a few measured steps into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ohmflow.host.ledger import PHASES, CostLedger
from ohmflow.host.mapping import block_index, layer_of, split_sizes


def group_blocks(ledger: CostLedger) -> dict[str, dict[str, tuple[int, int]]]:
    """Layer -> {block name: (n_in, n_out)}, in first-seen order; an entry without a shape
    raises."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name in ledger.layers:
        if name not in ledger.shapes:
            raise ValueError(f"ledger entry {name!r} has no shape (ledger.shapes[{name!r}] = "
                             "(n_in, n_out) is needed to map it onto arrays)")
        out.setdefault(layer_of(name), {})[name] = tuple(ledger.shapes[name])
    return out


def layer_extent(blocks: dict[str, tuple[int, int]]) -> tuple[int, int, int, int]:
    """(n_in, n_out, input blocks R, output blocks C) of a layer from its blocks."""
    rows: dict[int, int] = {}
    cols: dict[int, int] = {}
    for name, (i, o) in blocks.items():
        r, c = block_index(name)
        rows[r] = i
        cols[c] = o
    return sum(rows.values()), sum(cols.values()), len(rows), len(cols)


def arrays_for(n_in: int, n_out: int, rows: int, cols: int) -> int:
    """Arrays of rows x cols that hold a block of n_in inputs by n_out outputs."""
    return math.ceil(n_in / rows) * math.ceil(n_out / cols)


@dataclass(frozen=True)
class PerSample:
    """Rates per sample that a run measures and an analytic ledger cannot know.

    ``fwd_reads`` and ``bwd_reads``: device vectors per sample and layer (> 1 when bound
    management re-reads saturated vectors); ``live``: fraction of samples whose update is sent
    (the others have all-zero codes on one side); ``bl``: mean pulse slots per update sample;
    ``pulses_per_update``: device pulses per device update (coincidences per device per
    sample). The defaults are the ideal: every sample read once and updated, BL 31, no pulse
    count.
    """

    fwd_reads: float = 1.0
    bwd_reads: float = 1.0
    live: float = 1.0
    bl: float = 31.0
    pulses_per_update: float = 0.0
    source: str = "defaults (no measured run)"

    @classmethod
    def measure(cls, ledger: CostLedger, samples: int, source: str) -> PerSample:
        """The rates of a measured ledger of ``samples`` training samples (all blocks)."""
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        layers = group_blocks(ledger)
        fwd = bwd = upd = slots = pulses = dev_upd = 0
        n_bwd = 0
        for blocks in layers.values():
            first = next(iter(blocks))
            fwd += ledger.get(first, "forward")["fwd_vectors"]
            b = ledger.get(first, "backward")["bwd_vectors"]
            bwd += b
            n_bwd += b > 0
            u = ledger.get(first, "update")
            upd += u["update_samples"]
            slots += u["pulse_slots"]
            for name in blocks:
                c = ledger.get(name, "update")
                pulses += c["pulses"]
                dev_upd += c["device_updates"]
        n = len(layers)
        return cls(fwd_reads=fwd / (samples * n), bwd_reads=bwd / (samples * max(n_bwd, 1)),
                   live=upd / (samples * n), bl=slots / upd if upd else 0.0,
                   pulses_per_update=pulses / dev_upd if dev_upd else 0.0, source=source)


def analytic_ledger(sizes: list[int] | tuple[int, ...], batch: int, steps: int = 1,
                    rates: PerSample | None = None, block: tuple[int, int] | None = None
                    ) -> CostLedger:
    """The counts ``steps`` training steps of an MLP ``sizes`` at ``batch`` would leave.

    As `AnalogMLP.train_batch` counts them: every layer's forward, every layer's backward but the
    first's, every layer's update, one device call per layer and phase and step. ``rates``
    (default: the ideal) scales reads, update samples, pulse slots and pulses per sample;
    ``block`` = (max inputs, max outputs) splits each layer into blocks named
    ``layer{k}.{r}.{c}`` as the tile mapping does (None: one block per layer).
    """
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must be at least two widths >= 1, got {list(sizes)}")
    if batch < 1 or steps < 1:
        raise ValueError(f"batch and steps must be >= 1, got {batch} and {steps}")
    r = rates or PerSample()
    led = CostLedger()
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        ins = split_sizes(n_in, block[0]) if block else [n_in]
        outs = split_sizes(n_out, block[1]) if block else [n_out]
        for ri, i in enumerate(ins):
            for ci, o in enumerate(outs):
                name = f"layer{k}" if len(ins) == len(outs) == 1 else f"layer{k}.{ri}.{ci}"
                led.shapes[name] = (i, o)
                v = round(steps * batch * r.fwd_reads)
                led.add(name, "forward", {"fwd_vectors": v, "macs": v * i * o,
                                          "dac_conversions": v * i, "adc_conversions": v * o,
                                          "calls": steps, "weight_elems": steps * i * o})
                if k > 0:
                    v = round(steps * batch * r.bwd_reads)
                    led.add(name, "backward", {"bwd_vectors": v, "macs": v * i * o,
                                               "dac_conversions": v * o,
                                               "adc_conversions": v * i, "calls": steps,
                                               "weight_elems": steps * i * o})
                s = round(steps * batch * r.live)
                led.add(name, "update", {
                    "update_samples": s, "device_updates": s * i * o,
                    "update_values": s * (i + o), "pulse_slots": round(s * r.bl),
                    "pulses": round(s * i * o * r.pulses_per_update), "calls": steps,
                    "weight_elems": steps * i * o})
    return led


def steps_of(ledger: CostLedger) -> int:
    """Training steps in a ledger: device calls of the first entry's forward phase."""
    if not ledger.entries:
        raise ValueError("the ledger is empty: no training steps to project")
    first = ledger.layers[0]
    return max(1, ledger.get(first, PHASES[0])["calls"])
