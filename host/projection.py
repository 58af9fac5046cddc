"""Projection of a training run's counted work onto real chips: time and energy, per phase.

`project` takes a `CostLedger` (exact counts from the emulator) and a technology profile from
``profiles.toml`` (published chip figures, each with its source) and returns a `Projection`:
time and energy per phase, with every term of the sum. Analog profiles model an in-memory
computing chip, digital profiles a GPU-class accelerator. The model and its limits are written
down in ``docs/projection.md``; `validate` checks each profile against published figures.

Reporting: `format_projection` (a text table, analog against digital), `write_report`
(markdown or JSON) and `plot_projection` (PNG).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ohmflow.host.ledger import FIELDS, PHASES, CostLedger

PROFILES_PATH = Path(__file__).resolve().parent / "profiles.toml"

ANALOG_FIELDS = ("rows", "cols", "cores", "in_bits", "out_bits", "clock_hz", "read_phases",
                 "t_mvm_s", "e_mac_j", "e_dac_j", "e_adc_j", "update_supported")
ANALOG_UPDATE_FIELDS = ("t_slot_s", "e_update_device_j", "e_pulse_j")
DIGITAL_FIELDS = ("peak_macs_per_s", "e_mac_j", "bytes_per_value", "e_byte_j",
                  "bandwidth_bytes_per_s")
_INT_FIELDS = ("rows", "cols", "cores", "in_bits", "out_bits", "read_phases", "bytes_per_value")
_POSITIVE = ("rows", "cols", "cores", "in_bits", "out_bits", "clock_hz", "read_phases",
             "t_mvm_s", "t_slot_s", "peak_macs_per_s", "bytes_per_value", "bandwidth_bytes_per_s")


# ----------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class AnalogProfile:
    """An analog in-memory computing chip (see docs/projection.md for each field)."""

    name: str
    title: str
    rows: int
    cols: int
    cores: int
    in_bits: int
    out_bits: int
    clock_hz: float
    read_phases: int
    t_mvm_s: float
    e_mac_j: float
    e_dac_j: float
    e_adc_j: float
    update_supported: bool
    t_slot_s: float = 0.0
    e_update_device_j: float = 0.0
    e_pulse_j: float = 0.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    validation: tuple[dict, ...] = field(default=(), compare=False)
    kind: str = "analog"

    def replace(self, **kw) -> AnalogProfile:
        """A copy with fields changed (and checked)."""
        return _checked(dataclasses.replace(self, **kw))


@dataclass(frozen=True)
class DigitalProfile:
    """A digital accelerator: MACs at a fixed energy and peak rate, plus memory traffic."""

    name: str
    title: str
    peak_macs_per_s: float
    e_mac_j: float
    bytes_per_value: int
    e_byte_j: float
    bandwidth_bytes_per_s: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    validation: tuple[dict, ...] = field(default=(), compare=False)
    kind: str = "digital"

    def replace(self, **kw) -> DigitalProfile:
        return _checked(dataclasses.replace(self, **kw))


Profile = AnalogProfile | DigitalProfile


def _checked(p: Profile) -> Profile:
    names = ANALOG_FIELDS + ANALOG_UPDATE_FIELDS if p.kind == "analog" else DIGITAL_FIELDS
    for name in names:
        v = getattr(p, name)
        if name == "update_supported":
            if not isinstance(v, bool):
                raise ValueError(f"profile {p.name!r}: field 'update_supported' must be true or "
                                 f"false, got {v!r}")
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"profile {p.name!r}: field {name!r} must be a finite number, "
                             f"got {v!r}")
        if name in _INT_FIELDS and v != int(v):
            raise ValueError(f"profile {p.name!r}: field {name!r} must be an integer, got {v!r}")
        if v < 0 or (name in _POSITIVE and v == 0 and not (
                name == "t_slot_s" and not getattr(p, "update_supported", True))):
            kind = "positive" if name in _POSITIVE else "non-negative"
            raise ValueError(f"profile {p.name!r}: field {name!r} must be {kind}, got {v!r}")
    return p


def _parse_profile(name: str, table: dict, origin: str) -> Profile:
    kind = table.get("kind")
    if kind not in ("analog", "digital"):
        raise ValueError(f"profile {name!r} in {origin}: field 'kind' must be 'analog' or "
                         f"'digital', got {kind!r}")
    if kind == "analog":
        names = list(ANALOG_FIELDS)
        upd = table.get("update_supported")
        if isinstance(upd, dict) and upd.get("value") is True:
            names += ANALOG_UPDATE_FIELDS
    else:
        names = list(DIGITAL_FIELDS)
    values, sources = {}, {}
    for fname in names:
        if fname not in table:
            raise ValueError(f"profile {name!r} in {origin}: missing field {fname!r}")
        entry = table[fname]
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"profile {name!r} in {origin}: field {fname!r} must be a table "
                             f"{{ value = ..., source = \"...\" }}")
        src = entry.get("source")
        if not isinstance(src, str) or not src.strip():
            raise ValueError(f"profile {name!r} in {origin}: field {fname!r} has no source")
        v = entry["value"]
        values[fname] = int(v) if fname in _INT_FIELDS and isinstance(v, int) else v
        sources[fname] = src
    validation = []
    for i, row in enumerate(table.get("validation", [])):
        for need in ("quantity", "published", "source"):
            if need not in row:
                raise ValueError(f"profile {name!r} in {origin}: validation row {i} is missing "
                                 f"field {need!r}")
        if row["quantity"] not in ("tops", "tops_per_w"):
            raise ValueError(f"profile {name!r} in {origin}: validation row {i} field "
                             f"'quantity' must be 'tops' or 'tops_per_w'")
        validation.append(dict(row))
    cls = AnalogProfile if kind == "analog" else DigitalProfile
    title = table.get("title", name)
    return _checked(cls(name=name, title=title, sources=sources, validation=tuple(validation),
                        **values))


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """All profiles of a TOML file (default: the ``profiles.toml`` shipped beside this module)."""
    p = Path(path) if path is not None else PROFILES_PATH
    with open(p, "rb") as f:
        data = tomllib.load(f)
    return {name: _parse_profile(name, table, p.name) for name, table in data.items()}


def get_profile(name: str | Profile, path: str | Path | None = None) -> Profile:
    """One profile by name; an unknown name raises ValueError listing the known ones."""
    if isinstance(name, AnalogProfile | DigitalProfile):
        return name
    profiles = load_profiles(path)
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
    return profiles[name]


# -------------------------------------------------------------------------------- projection
@dataclass
class PhaseCost:
    """Time and energy of one phase, with the terms they are the sums of.

    ``time_s`` and ``energy_j`` are None when the profile cannot model the phase.
    """

    time_s: float | None
    energy_j: float | None
    time_terms: dict[str, float] = field(default_factory=dict)
    energy_terms: dict[str, float] = field(default_factory=dict)


@dataclass
class Projection:
    """A ledger projected onto one profile."""

    profile: str
    kind: str
    title: str
    phases: dict[str, PhaseCost]
    notes: list[str] = field(default_factory=list)

    @property
    def modelled_phases(self) -> list[str]:
        return [p for p in PHASES if self.phases[p].time_s is not None]

    @property
    def time_s(self) -> float:
        """Total time over the modelled phases."""
        return sum(self.phases[p].time_s for p in self.modelled_phases)

    @property
    def energy_j(self) -> float:
        """Total energy over the modelled phases."""
        return sum(self.phases[p].energy_j for p in self.modelled_phases)

    def to_dict(self) -> dict:
        return {
            "profile": self.profile, "kind": self.kind, "title": self.title,
            "phases": {p: dataclasses.asdict(c) for p, c in self.phases.items()},
            "time_s": self.time_s, "energy_j": self.energy_j, "notes": list(self.notes),
        }


def _sum_terms(terms: dict[str, float]) -> float:
    return float(sum(terms.values()))


def _project_analog(ledger: CostLedger, p: AnalogProfile) -> Projection:
    phases, notes = {}, []
    for phase in PHASES:
        c = ledger.by_phase()[phase]
        k = p.read_phases
        t = {"mvm": (c["fwd_vectors"] + c["bwd_vectors"]) * p.t_mvm_s * k}
        e = {"array": c["macs"] * p.e_mac_j * k,
             "dac": c["dac_conversions"] * p.e_dac_j * k,
             "adc": c["adc_conversions"] * p.e_adc_j * k}
        has_update = c["pulse_slots"] or c["pulses"] or c["device_updates"]
        if has_update and not p.update_supported:
            phases[phase] = PhaseCost(None, None, t, e)
            notes.append(f"{p.name} has no in-array update: the {phase} phase's pulse work is "
                         "not modelled and is left out of the totals")
            continue
        if p.update_supported:
            t["pulses"] = c["pulse_slots"] * p.t_slot_s
            e["device_updates"] = c["device_updates"] * p.e_update_device_j
            e["pulses"] = c["pulses"] * p.e_pulse_j
        phases[phase] = PhaseCost(_sum_terms(t), _sum_terms(e), t, e)
    need = sum(math.ceil(i / p.rows) * math.ceil(o / p.cols) for i, o in ledger.shapes.values())
    if need > p.cores:
        notes.append(f"the run's layers need {need} arrays of {p.rows}x{p.cols}, {p.name} has "
                     f"{p.cores}: reprogramming between layers is not modelled")
    if ledger.in_bits > p.in_bits or ledger.out_bits > p.out_bits:
        notes.append(f"the run used {ledger.in_bits}-bit DAC / {ledger.out_bits}-bit ADC codes, "
                     f"{p.name} is characterised at {p.in_bits}/{p.out_bits} bits")
    return Projection(p.name, "analog", p.title, phases, notes)


def _project_digital(ledger: CostLedger, p: DigitalProfile) -> Projection:
    phases, notes = {}, []
    for phase in PHASES:
        macs = bytes_ = t_total = 0.0
        for (_, ph), c in ledger.entries.items():
            if ph != phase:
                continue
            m = c["macs"] + c["device_updates"] + (c["weight_elems"] if phase == "update" else 0)
            w_moves = 2 if phase == "update" else 1
            b = p.bytes_per_value * (c["dac_conversions"] + c["adc_conversions"]
                                     + c["update_values"] + w_moves * c["weight_elems"])
            t_total += max(m / p.peak_macs_per_s, b / p.bandwidth_bytes_per_s)
            macs += m
            bytes_ += b
            if c["pulse_ops"]:
                notes.append(f"{c['pulse_ops']} deterministic pulse operations in the {phase} "
                             f"phase have no digital counterpart in the model")
        t_compute = macs / p.peak_macs_per_s
        t = {"compute": t_compute, "memory_stall": t_total - t_compute}
        e = {"macs": macs * p.e_mac_j, "memory": bytes_ * p.e_byte_j}
        phases[phase] = PhaseCost(_sum_terms(t), _sum_terms(e), t, e)
    return Projection(p.name, "digital", p.title, phases, notes)


def project(ledger: CostLedger, profile: str | Profile, path: str | Path | None = None
            ) -> Projection:
    """Project the ledger's counts onto a profile (a name in ``profiles.toml`` or a profile)."""
    if not isinstance(ledger, CostLedger):
        raise ValueError(f"project needs a CostLedger, got {type(ledger).__name__}")
    p = get_profile(profile, path)
    for (layer, phase), c in ledger.entries.items():
        for k in FIELDS:
            if c[k] < 0:
                raise ValueError(f"ledger count {k!r} of {layer}/{phase} is negative: {c[k]}")
    return _project_analog(ledger, p) if p.kind == "analog" else _project_digital(ledger, p)


def compare(ledger: CostLedger, analog: str | Profile = "hermes",
            digital: str | Profile = "h100-bf16", path: str | Path | None = None
            ) -> tuple[Projection, Projection]:
    """The ledger projected onto one analog and one digital profile."""
    a, d = project(ledger, analog, path), project(ledger, digital, path)
    if a.kind != "analog" or d.kind != "digital":
        raise ValueError(f"compare needs an analog and a digital profile, got {a.kind} "
                         f"{a.profile!r} and {d.kind} {d.profile!r}")
    return a, d


# -------------------------------------------------------------------------------- validation
def validate(profile: str | Profile, path: str | Path | None = None,
             vectors: int = 1000) -> list[dict]:
    """Model against the profile's published figures, one dict per validation row.

    Analog: ``vectors`` forward MVMs on one full rows x cols array are projected; TOPS/W is
    2 * MACs / energy, TOPS is cores * 2 * MACs / time (all cores busy). Digital: peak compute,
    2 / e_mac_j and 2 * peak_macs_per_s.
    """
    base = get_profile(profile, path)
    rows = []
    for v in base.validation:
        p = base.replace(**v.get("overrides", {}))
        if p.kind == "analog":
            led = CostLedger()
            led.add("validation", "forward", {
                "fwd_vectors": vectors, "macs": vectors * p.rows * p.cols,
                "dac_conversions": vectors * p.rows, "adc_conversions": vectors * p.cols,
                "calls": 1, "weight_elems": p.rows * p.cols})
            pr = project(led, p)
            ops = 2 * vectors * p.rows * p.cols
            model = (ops / pr.energy_j / 1e12 if v["quantity"] == "tops_per_w"
                     else p.cores * ops / pr.time_s / 1e12)
        else:
            model = (2 / p.e_mac_j / 1e12 if v["quantity"] == "tops_per_w"
                     else 2 * p.peak_macs_per_s / 1e12)
        rows.append({
            "profile": base.name, "quantity": v["quantity"],
            "overrides": dict(v.get("overrides", {})), "published": float(v["published"]),
            "model": model, "ratio": model / float(v["published"]),
            "independent": bool(v.get("independent", False)), "source": v["source"],
            "note": v.get("note", ""),
        })
    return rows


# --------------------------------------------------------------------------------- reporting
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
    "analog: layers run one after another, one MVM per vector per t_mvm, no pipelining; "
    "update time = pulse slots x t_slot; host-side digital work (scaling, bias, activations, "
    "loss) not counted on either side",
    "digital: each (layer, phase) at peak rate, time = max(MACs/peak, bytes/bandwidth), a "
    "lower bound that small layers do not reach (no launch or synchronisation overhead); "
    "weights and activations of every call move once through HBM (the analog side is charged "
    "no activation traffic); pJ/MAC from TDP at peak",
)


def _work(counts: dict[str, int] | None, phases: list[str]) -> str:
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
          "docs/projection.md.", "", "## Counted work", "",
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
