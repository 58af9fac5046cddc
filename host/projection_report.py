"""Reports of projections: a text table, markdown or JSON files, a PNG, and the regime sentence.

`format_projection` prints analog against digital per phase; `write_report` writes the counted
work and every projection's terms (``.md`` or ``.json``); `plot_projection` draws time and
energy by phase; `regime_sentence` says in one sentence which regime a network is in (array
utilisation, and what bounds each side).
"""

from __future__ import annotations

import json
from pathlib import Path

from ohmflow.host.ledger import PHASES, CostLedger
from ohmflow.host.projection import Projection, project

_PREFIX = ((1e0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def _si(x: float | None, unit: str) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return f"0 {unit}"
    if abs(x) >= 1e3:
        return f"{x:.3g} {unit}"
    for scale, pre in _PREFIX:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {pre}{unit}"
    return f"{x:.3g} {unit}"


def _ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den == 0:
        return "n/a"
    return f"{num / den:.3g}x"


ASSUMPTIONS = (
    "analog: the blocks of a layer run at once on their own arrays, layers one after another "
    "(or pipelined where the profile says so), one MVM per vector per t_mvm; update time = "
    "pulse slots x t_slot; the digital periphery (scaling, activations, partial sums, update "
    "probabilities, transfers between arrays) charged per value where the profile gives its "
    "cost; as many chips as the arrays need, weights stationary",
    "digital: each layer and phase as one kernel, time = max(MACs / (peak x efficiency), "
    "bytes / bandwidth, kernel time); weights and activations of every call move once through "
    "HBM; pJ/MAC from TDP at peak, divided by the efficiency (the board draws TDP while it "
    "sustains that fraction of peak); HBM pJ/byte not scaled",
)


def _work(counts: dict[str, dict[str, int]] | None, phases: list[str]) -> str:
    """The counted work of some phases: MACs of the reads, pulses of the update."""
    if counts is None:
        return "-"
    parts = []
    if any(p != "update" for p in phases):
        parts.append(f"{sum(counts[p]['macs'] for p in phases if p != 'update'):.3g} MACs")
    if "update" in phases:
        parts.append(f"{counts['update']['pulses']:.3g} pulses")
    return ", ".join(parts)


def _rows(analog: Projection, digital: Projection, ledger: CostLedger | None):
    out = []
    counts = ledger.by_phase() if ledger is not None else None
    for phase in PHASES:
        a, d = analog.phases[phase], digital.phases[phase]
        out.append((phase, _work(counts, [phase]), a.time_s, d.time_s, a.energy_j, d.energy_j))
    modelled = analog.modelled_phases
    d_t = sum(digital.phases[p].time_s for p in modelled)
    d_e = sum(digital.phases[p].energy_j for p in modelled)
    label = "total" if len(modelled) == len(PHASES) else "total (" + "+".join(modelled) + ")"
    out.append((label, _work(counts, list(modelled)), analog.time_s, d_t, analog.energy_j, d_e))
    return out


def format_projection(analog: Projection, digital: Projection,
                      ledger: CostLedger | None = None) -> str:
    """A compact table: per phase, analog and digital time and energy and their ratios."""
    head = ("phase", "counted work", "analog time", "digital time", "speed-up",
            "analog energy", "digital energy", "energy gain")
    lines = [f"analog:  {analog.profile} ({analog.title})",
             f"digital: {digital.profile} ({digital.title})"]
    table = [head]
    for label, work, at, dt, ae, de in _rows(analog, digital, ledger):
        table.append((label, work, _si(at, "s"), _si(dt, "s"),
                      _ratio(dt, at), _si(ae, "J"), _si(de, "J"), _ratio(de, ae)))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    lines.append("speed-up and energy gain are digital/analog (> 1 favours analog)")
    if ledger is not None:
        fpga = ledger.fpga_time_s()
        lines.append(f"emulator: {_si(ledger.emulator_wall_s(), 's')} host wall time in device "
                     f"calls" + (f", {_si(fpga, 's')} FPGA time" if fpga is not None else ""))
    for n in analog.notes + digital.notes:
        lines.append(f"note: {n}")
    lines.append("assumptions: " + "; ".join(ASSUMPTIONS) + " (sources: profiles.toml)")
    return "\n".join(lines)


def _pairs(projections: list[Projection]) -> list[tuple[Projection, Projection]]:
    analogs = [p for p in projections if p.kind == "analog"]
    digitals = [p for p in projections if p.kind == "digital"]
    return [(a, d) for a in analogs for d in digitals]


def _markdown(ledger: CostLedger, projections: list[Projection]) -> str:
    md = ["# Hardware-cost projection", "",
          "Counts measured on the emulator, projected onto published chips with the model of "
          "docs/projection.md.", ""]
    md += [f"Regime: {regime_sentence(ledger, a, d)}" for a, d in _pairs(projections)[:1]]
    md += ["", "## Counted work", "",
          "| layer | phase | calls | vectors | MACs | DAC conv. | ADC conv. | update samples "
          "| pulses |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (layer, phase), c in ledger.entries.items():
        md.append(f"| {layer} | {phase} | {c['calls']} | {c['fwd_vectors'] + c['bwd_vectors']} "
                  f"| {c['macs']} | {c['dac_conversions']} | {c['adc_conversions']} "
                  f"| {c['update_samples']} | {c['pulses']} |")
    fpga = ledger.fpga_time_s()
    md += ["", f"Emulator host wall time in device calls: {_si(ledger.emulator_wall_s(), 's')}"
           + (f"; FPGA time {_si(fpga, 's')} at {ledger.clock_hz:.4g} Hz." if fpga is not None
              else " (no cycle counts from this backend).")]
    for a, d in _pairs(projections):
        md += ["", f"## {a.profile} against {d.profile}", "",
               f"Analog: {a.title}. Digital: {d.title}.", "",
               "| phase | counted work | analog time | digital time | speed-up | analog energy "
               "| digital energy | energy gain |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, work, at, dt, ae, de in _rows(a, d, ledger):
            md.append(f"| {label} | {work} | {_si(at, 's')} | {_si(dt, 's')} | {_ratio(dt, at)} "
                      f"| {_si(ae, 'J')} | {_si(de, 'J')} | {_ratio(de, ae)} |")
        md.append("")
        md.append("Speed-up and energy gain are digital/analog (> 1 favours analog).")
    md += ["", "## Terms", ""]
    for p in projections:
        md += [f"### {p.profile} ({p.kind})", "", "| phase | term | time | energy |",
               "|---|---|---:|---:|"]
        for phase, c in p.phases.items():
            for term in dict.fromkeys([*c.time_terms, *c.energy_terms]):
                t, e = c.time_terms.get(term), c.energy_terms.get(term)
                md.append(f"| {phase} | {term} | {'' if t is None else _si(t, 's')} "
                          f"| {'' if e is None else _si(e, 'J')} |")
        md += [""] + [f"- Note: {n}" for n in p.notes]
    md += ["## Assumptions", ""] + [f"- {a}" for a in ASSUMPTIONS]
    md += ["- Every profile parameter and its source: host/profiles.toml; the model and its "
           "limits: docs/projection.md.", ""]
    return "\n".join(md)


def write_report(path: str | Path, ledger: CostLedger, projections: list[Projection]) -> Path:
    """Write the ledger and projections as markdown (``.md``) or JSON (``.json``)."""
    path = Path(path)
    if path.suffix == ".md":
        path.write_text(_markdown(ledger, projections))
    elif path.suffix == ".json":
        doc = {
            "ledger": ledger.to_dict(),
            "projections": [p.to_dict() for p in projections],
            "comparisons": [
                {"analog": a.profile, "digital": d.profile,
                 "phases": {label: {"analog_time_s": at, "digital_time_s": dt,
                                    "analog_energy_j": ae, "digital_energy_j": de}
                            for label, _, at, dt, ae, de in _rows(a, d, ledger)}}
                for a, d in _pairs(projections)],
            "assumptions": list(ASSUMPTIONS),
            "regime": [regime_sentence(ledger, a, d) for a, d in _pairs(projections)[:1]],
        }
        path.write_text(json.dumps(doc, indent=1) + "\n")
    else:
        raise ValueError(f"report path must end in .md or .json, got {path.name!r}")
    return path


def plot_projection(path: str | Path, projections: list[Projection]) -> Path:
    """Bar charts of time and energy by phase for each projection, as a PNG (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(PHASES))
    w = 0.8 / max(1, len(projections))
    for ax, attr, label in ((axes[0], "time_s", "time (s)"), (axes[1], "energy_j", "energy (J)")):
        for k, p in enumerate(projections):
            vals = [getattr(p.phases[ph], attr) for ph in PHASES]
            ys = [v if v else np.nan for v in vals]
            ax.bar(x + (k - (len(projections) - 1) / 2) * w, ys, w, label=p.profile)
        ax.set_xticks(x, PHASES)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("Projected time and energy by phase (missing bar: not modelled)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------ regime
_BOUND = {"compute": "compute-bound", "memory_stall": "memory-bound",
          "launch": "bound by kernel launches", "mvm": "bound by array reads",
          "periphery": "bound by its digital periphery", "pulses": "bound by update pulses"}


def _bound(p: Projection, phases: list[str]) -> str:
    terms: dict[str, float] = {}
    for ph in phases:
        for k, v in p.phases[ph].time_terms.items():
            terms[k] = terms.get(k, 0.0) + v
    return _BOUND[max(terms, key=terms.get)] if terms else "idle"


def regime_sentence(ledger: CostLedger, analog: str | Projection = "rpu",
                    digital: str | Projection = "h100-bf16-measured") -> str:
    """One sentence on the network's regime: array utilisation, time and energy per training
    step on both sides and what bounds each (for ``ohmflow train --report``)."""
    from ohmflow.host.workload import steps_of

    a = analog if isinstance(analog, Projection) else project(ledger, analog)
    d = digital if isinstance(digital, Projection) else project(ledger, digital)
    if a.kind != "analog" or d.kind != "digital":
        raise ValueError(f"regime_sentence needs an analog and a digital profile, got {a.kind} "
                         f"{a.profile!r} and {d.kind} {d.profile!r}")
    rows, cols = a.array_shape
    u = 100 * (a.utilisation or 0.0)
    pct = f"{u:.2g}" if u < 10 else f"{u:.0f}"
    if u < 25:
        util = (f"layers this small underuse a {rows}x{cols} array: utilisation {pct} % of "
                f"{a.arrays} array{'s' if a.arrays != 1 else ''}")
    else:
        util = f"the layers fill {a.arrays} arrays of {rows}x{cols} to {pct} %"
    phases = a.modelled_phases
    steps = steps_of(ledger)
    at = a.time_s / steps
    dt = sum(d.phases[p].time_s for p in phases) / steps
    ae = a.energy_j / steps
    de = sum(d.phases[p].energy_j for p in phases) / steps
    which = "" if len(phases) == len(PHASES) else f" ({'+'.join(phases)} only)"
    return (f"{util}; a training step{which} takes {_si(at, 's')} on {a.profile} "
            f"({_bound(a, phases)}) against {_si(dt, 's')} on {d.profile} "
            f"({_bound(d, phases)}): {dt / at:.2g}x the speed at {de / ae:.2g}x the energy "
            "efficiency.")
