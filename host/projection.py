"""Projection of a training run's counted work onto real chips: time and energy, per phase.

`project` takes a `CostLedger` (exact counts from the emulator, or an analytic one from
`ohmflow.host.workload`) and a technology profile from ``profiles.toml`` (published chip
figures, each with its source) and returns a `Projection`: time and energy per phase, with every
term of the sum, and the arrays, chips and utilisation the network needs. Analog profiles model
an in-memory computing chip with its digital periphery, digital profiles a GPU-class accelerator
at peak or at a measured fraction of peak. The model and its limits are written down in
``docs/projection.md``; `validate` checks each profile against published figures.

Reporting (`format_projection`, `write_report`, `plot_projection`, `regime_sentence`) lives in
``ohmflow.host.projection_report`` and is reachable from here too.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ohmflow.host.ledger import FIELDS, PHASES, CostLedger
from ohmflow.host.mapping import block_index
from ohmflow.host.workload import arrays_for, group_blocks, layer_extent

PROFILES_PATH = Path(__file__).resolve().parent / "profiles.toml"

ANALOG_FIELDS = ("rows", "cols", "cores", "in_bits", "out_bits", "clock_hz", "read_phases",
                 "t_mvm_s", "e_mac_j", "e_dac_j", "e_adc_j", "update_supported")
ANALOG_UPDATE_FIELDS = ("t_slot_s", "e_update_device_j", "e_pulse_j")
#: optional analog fields and their defaults (digital periphery, schedule)
ANALOG_OPTIONAL = {"e_periph_op_j": 0.0, "e_move_byte_j": 0.0, "periph_ops_per_cycle": 0.0,
                   "schedule": "sequential"}
DIGITAL_FIELDS = ("peak_macs_per_s", "e_mac_j", "bytes_per_value", "e_byte_j",
                  "bandwidth_bytes_per_s")
#: optional digital fields and their defaults (peak: efficiency 1, no kernel floor)
DIGITAL_OPTIONAL = {"efficiency": 1.0, "t_kernel_s": 0.0}
SCHEDULES = ("sequential", "pipelined")
_INT_FIELDS = ("rows", "cols", "cores", "in_bits", "out_bits", "read_phases", "bytes_per_value")
_POSITIVE = ("rows", "cols", "cores", "in_bits", "out_bits", "clock_hz", "read_phases",
             "t_mvm_s", "t_slot_s", "peak_macs_per_s", "bytes_per_value", "bandwidth_bytes_per_s",
             "efficiency")
#: digital periphery operations per converted value (docs/projection.md, section 2)
PERIPH_OPS = {"forward": (2, 3), "backward": (2, 2)}  # (per DAC input, per ADC output)
PERIPH_OPS_UPDATE = 3  # per update value: scale, probability, sign


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
    e_periph_op_j: float = 0.0
    e_move_byte_j: float = 0.0
    periph_ops_per_cycle: float = 0.0
    schedule: str = "sequential"
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    validation: tuple[dict, ...] = field(default=(), compare=False)
    kind: str = "analog"

    def replace(self, **kw) -> AnalogProfile:
        """A copy with fields changed (and checked)."""
        return _checked(dataclasses.replace(self, **kw))


@dataclass(frozen=True)
class DigitalProfile:
    """A digital accelerator: MACs at a fixed energy and rate, memory traffic, kernel launches.

    ``efficiency`` is the fraction of peak it sustains (1: peak); ``t_kernel_s`` the least time
    one kernel takes (launch and synchronisation; 0: none).
    """

    name: str
    title: str
    peak_macs_per_s: float
    e_mac_j: float
    bytes_per_value: int
    e_byte_j: float
    bandwidth_bytes_per_s: float
    efficiency: float = 1.0
    t_kernel_s: float = 0.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    validation: tuple[dict, ...] = field(default=(), compare=False)
    kind: str = "digital"

    def replace(self, **kw) -> DigitalProfile:
        return _checked(dataclasses.replace(self, **kw))


Profile = AnalogProfile | DigitalProfile


def _checked(p: Profile) -> Profile:
    if p.kind == "analog":
        names = ANALOG_FIELDS + ANALOG_UPDATE_FIELDS + tuple(ANALOG_OPTIONAL)
    else:
        names = DIGITAL_FIELDS + tuple(DIGITAL_OPTIONAL)
    for name in names:
        v = getattr(p, name)
        if name == "update_supported":
            if not isinstance(v, bool):
                raise ValueError(f"profile {p.name!r}: field 'update_supported' must be true or "
                                 f"false, got {v!r}")
            continue
        if name == "schedule":
            if v not in SCHEDULES:
                raise ValueError(f"profile {p.name!r}: field 'schedule' must be one of "
                                 f"{', '.join(SCHEDULES)}, got {v!r}")
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
    if p.kind == "digital" and p.efficiency > 1:
        raise ValueError(f"profile {p.name!r}: field 'efficiency' is a fraction of peak, at most "
                         f"1, got {p.efficiency!r}")
    return p


def _parse_profile(name: str, table: dict, origin: str, data: dict) -> Profile:
    base = table.get("based_on")
    if base is not None:
        if base not in data or base == name or "based_on" in data[base]:
            raise ValueError(f"profile {name!r} in {origin}: 'based_on' must name another "
                             f"profile without a base of its own, got {base!r}")
        table = {**{k: v for k, v in data[base].items() if k not in ("title", "validation")},
                 **{k: v for k, v in table.items() if k != "based_on"}}
    kind = table.get("kind")
    if kind not in ("analog", "digital"):
        raise ValueError(f"profile {name!r} in {origin}: field 'kind' must be 'analog' or "
                         f"'digital', got {kind!r}")
    if kind == "analog":
        names = list(ANALOG_FIELDS)
        upd = table.get("update_supported")
        if isinstance(upd, dict) and upd.get("value") is True:
            names += ANALOG_UPDATE_FIELDS
        optional = ANALOG_OPTIONAL
    else:
        names = list(DIGITAL_FIELDS)
        optional = DIGITAL_OPTIONAL
    names += [n for n in optional if n in table]
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
        if row["quantity"] not in QUANTITIES:
            raise ValueError(f"profile {name!r} in {origin}: validation row {i} field "
                             f"'quantity' must be one of {', '.join(QUANTITIES)}")
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
    return {name: _parse_profile(name, table, p.name, data) for name, table in data.items()}


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
    """A ledger projected onto one profile.

    Analog projections also carry the arrays the network's blocks occupy, the chips those
    arrays need (``cores`` arrays a chip), and the utilisation: weights held / devices of the
    occupied arrays.
    """

    profile: str
    kind: str
    title: str
    phases: dict[str, PhaseCost]
    notes: list[str] = field(default_factory=list)
    arrays: int = 0
    chips: int = 0
    utilisation: float | None = None
    array_shape: tuple[int, int] | None = None

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
            "arrays": self.arrays, "chips": self.chips, "utilisation": self.utilisation,
            "array_shape": list(self.array_shape) if self.array_shape else None,
        }


def _sum_terms(terms: dict[str, float]) -> float:
    return float(sum(terms.values()))


_E_TERMS = ("array", "dac", "adc", "periphery", "transfers")


def _layer_cost(ledger: CostLedger, blocks: dict[str, tuple[int, int]], phase: str,
                p: AnalogProfile) -> tuple[float, float, float, dict[str, float], float]:
    """One layer's phase on the analog chip: (array time, periphery time beyond it, pulse time,
    energy terms, vectors per call). The layer's blocks run at once, each on its own arrays;
    the digital periphery works once per layer value (plus the partial sums), spread over the
    layer's arrays, while converters and transfers count per block."""
    k = p.read_phases
    rate = p.periph_ops_per_cycle * p.clock_hz  # digital periphery ops/s of one array
    code_in, code_out = math.ceil(p.in_bits / 8), math.ceil(p.out_bits / 8)
    n_in, n_out, _, _ = layer_extent(blocks)
    e = dict.fromkeys(_E_TERMS + ("device_updates", "pulses"), 0.0)
    t_mvm = t_pulse = 0.0
    in_arrays: dict[int, int] = {}
    out_arrays: dict[int, int] = {}
    vectors = samples = calls = layer_arrays = 0
    for name, (i, o) in blocks.items():
        c = ledger.get(name, phase)
        layer_arrays += arrays_for(i, o, p.rows, p.cols)
        r, col = block_index(name)
        in_arrays[r] = math.ceil(i / p.rows)
        out_arrays[col] = math.ceil(o / p.cols)
        v = c["fwd_vectors"] + c["bwd_vectors"]
        vectors, calls = max(vectors, v), max(calls, c["calls"])
        samples = max(samples, c["update_samples"])
        t_mvm = max(t_mvm, v * p.t_mvm_s * k)
        t_pulse = max(t_pulse, c["pulse_slots"] * p.t_slot_s)
        e["array"] += c["macs"] * p.e_mac_j * k
        e["dac"] += c["dac_conversions"] * p.e_dac_j * k
        e["adc"] += c["adc_conversions"] * p.e_adc_j * k
        e["transfers"] += (code_in * c["dac_conversions"] + code_out * c["adc_conversions"]
                           + c["update_values"]) * p.e_move_byte_j
        e["device_updates"] += c["device_updates"] * p.e_update_device_j
        e["pulses"] += c["pulses"] * p.e_pulse_j
    # per layer value (the inputs driven, the outputs read), and the partial sums of the
    # arrays along the summed dimension, added digitally
    if phase == "forward":
        per_in, per_out = PERIPH_OPS[phase]
        ops = vectors * (per_in * n_in + per_out * n_out)
        ops += vectors * n_out * (sum(in_arrays.values()) - 1)
    elif phase == "backward":
        per_in, per_out = PERIPH_OPS[phase]
        ops = vectors * (per_in * n_out + per_out * n_in)
        ops += vectors * n_in * (sum(out_arrays.values()) - 1)
    else:
        ops = PERIPH_OPS_UPDATE * samples * (n_in + n_out)
    e["periphery"] += ops * p.e_periph_op_j
    t_periph = ops / (layer_arrays * rate) if rate and layer_arrays else 0.0
    return t_mvm, max(t_periph - t_mvm, 0.0), t_pulse, e, vectors / calls if calls else 0.0


def _project_analog(ledger: CostLedger, p: AnalogProfile) -> Projection:
    layers = group_blocks(ledger)
    phases, notes = {}, []
    for phase in PHASES:
        costs = [_layer_cost(ledger, blocks, phase, p) for blocks in layers.values()]
        e = {name: sum(c[3][name] for c in costs) for name in costs[0][3]} if costs else {}
        if not p.update_supported:
            e.pop("device_updates", None)
            e.pop("pulses", None)
        mvm, periph = sum(c[0] for c in costs), sum(c[1] for c in costs)
        if p.schedule == "pipelined" and phase != "update":
            reads = [c[0] + c[1] for c in costs]
            per_call = [c[4] for c in costs if c[4] > 0]
            b = sum(per_call) / len(per_call) if per_call else 1.0
            total = sum(reads)
            scale = (total / b + (b - 1) / b * max(reads)) / total if total else 0.0
            t = {"mvm": mvm * scale, "periphery": periph * scale}
        else:
            t = {"mvm": mvm, "periphery": periph}
        c = ledger.by_phase()[phase]
        has_update = c["pulse_slots"] or c["pulses"] or c["device_updates"]
        if has_update and not p.update_supported:
            phases[phase] = PhaseCost(None, None, t, e)
            notes.append(f"{p.name} has no in-array update: the {phase} phase's pulse work is "
                         "not modelled and is left out of the totals")
            continue
        if p.update_supported:
            pulses = [x[2] for x in costs]
            t["pulses"] = (max(pulses, default=0.0) if p.schedule == "pipelined"
                           else sum(pulses))
        phases[phase] = PhaseCost(_sum_terms(t), _sum_terms(e), t, e)
    used = sum(i * o for blocks in layers.values() for i, o in blocks.values())
    arrays = sum(arrays_for(i, o, p.rows, p.cols) for blocks in layers.values()
                 for i, o in blocks.values())
    chips = math.ceil(arrays / p.cores) if arrays else 0
    if arrays > p.cores:
        notes.append(f"the run's layers need {arrays} arrays of {p.rows}x{p.cols}, {p.name} has "
                     f"{p.cores} a chip: {chips} chips, weights stationary (transfers between "
                     "chips charged as on-chip moves)")
    if ledger.in_bits > p.in_bits or ledger.out_bits > p.out_bits:
        notes.append(f"the run used {ledger.in_bits}-bit DAC / {ledger.out_bits}-bit ADC codes, "
                     f"{p.name} is characterised at {p.in_bits}/{p.out_bits} bits")
    util = used / (arrays * p.rows * p.cols) if arrays else None
    return Projection(p.name, "analog", p.title, phases, notes, arrays, chips, util,
                      (p.rows, p.cols))


def _project_digital(ledger: CostLedger, p: DigitalProfile) -> Projection:
    layers = group_blocks(ledger)
    phases, notes = {}, []
    for phase in PHASES:
        macs = bytes_ = t_compute = t_total = t_launch = 0.0
        for blocks in layers.values():
            n_in, n_out, _, _ = layer_extent(blocks)
            cs = [ledger.get(name, phase) for name in blocks]
            calls = max(c["calls"] for c in cs)
            if not calls:
                continue
            if phase == "update":
                values = max(c["update_samples"] for c in cs) * (n_in + n_out)
            else:
                values = max(c["fwd_vectors"] + c["bwd_vectors"] for c in cs) * (n_in + n_out)
            m = sum(c["macs"] + c["device_updates"] for c in cs)
            w = n_in * n_out * calls
            if phase == "update":
                m += w  # the SGD step on every weight
            b = p.bytes_per_value * (values + (2 if phase == "update" else 1) * w)
            tc = m / (p.peak_macs_per_s * p.efficiency)
            tk = calls * p.t_kernel_s
            t_total += max(tc, b / p.bandwidth_bytes_per_s, tk)
            t_compute += tc
            t_launch += max(tk - max(tc, b / p.bandwidth_bytes_per_s), 0.0)
            macs += m
            bytes_ += b
            ops = sum(c["pulse_ops"] for c in cs)
            if ops:
                notes.append(f"{ops} deterministic pulse operations in the {phase} phase have no "
                             "digital counterpart in the model")
        t = {"compute": t_compute, "memory_stall": t_total - t_compute - t_launch,
             "launch": t_launch}
        e = {"macs": macs * p.e_mac_j / p.efficiency, "memory": bytes_ * p.e_byte_j}
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
#: quantities a [[<profile>.validation]] row can check
QUANTITIES = ("tops", "tops_per_w", "mvm_latency_s", "train_cycle_s")


def _full_array_ledger(p: AnalogProfile, vectors: int, train: bool = False,
                       bl: int = 0) -> CostLedger:
    """``vectors`` forward reads of one full rows x cols array; with ``train``, one sample's
    forward, backward and update (BL pulse slots) instead."""
    led = CostLedger()
    led.shapes["validation"] = (p.rows, p.cols)
    n = p.rows * p.cols
    led.add("validation", "forward", {
        "fwd_vectors": vectors, "macs": vectors * n, "dac_conversions": vectors * p.rows,
        "adc_conversions": vectors * p.cols, "calls": 1, "weight_elems": n})
    if train:
        led.add("validation", "backward", {
            "bwd_vectors": vectors, "macs": vectors * n, "dac_conversions": vectors * p.cols,
            "adc_conversions": vectors * p.rows, "calls": 1, "weight_elems": n})
        led.add("validation", "update", {
            "update_samples": vectors, "device_updates": vectors * n,
            "update_values": vectors * (p.rows + p.cols), "pulse_slots": vectors * bl,
            "calls": 1, "weight_elems": n})
    return led


def validate(profile: str | Profile, path: str | Path | None = None,
             vectors: int = 1000) -> list[dict]:
    """Model against the profile's published figures, one dict per validation row.

    Analog: ``vectors`` forward MVMs on one full rows x cols array are projected; TOPS/W is
    2 * MACs / energy, TOPS is cores * 2 * MACs / time (all cores busy), the MVM latency is the
    time of one vector; ``train_cycle_s`` is one sample's forward, backward and update (the
    row's ``bl`` pulse slots). Digital: 2 / e_mac_j and 2 * peak_macs_per_s.
    """
    base = get_profile(profile, path)
    rows = []
    for v in base.validation:
        p = base.replace(**v.get("overrides", {}))
        q = v["quantity"]
        if p.kind == "analog":
            ops = 2 * vectors * p.rows * p.cols
            if q == "train_cycle_s":
                model = project(_full_array_ledger(p, 1, True, int(v.get("bl", 0))), p).time_s
            elif q == "mvm_latency_s":
                model = project(_full_array_ledger(p, 1), p).time_s
            else:
                pr = project(_full_array_ledger(p, vectors), p)
                model = (ops / pr.energy_j / 1e12 if q == "tops_per_w"
                         else p.cores * ops / pr.time_s / 1e12)
        else:
            model = (2 * p.efficiency / p.e_mac_j / 1e12 if q == "tops_per_w"
                     else 2 * p.peak_macs_per_s * p.efficiency / 1e12)
        rows.append({
            "profile": base.name, "quantity": q,
            "overrides": dict(v.get("overrides", {})), "published": float(v["published"]),
            "model": model, "ratio": model / float(v["published"]),
            "independent": bool(v.get("independent", False)), "source": v["source"],
            "note": v.get("note", ""),
        })
    return rows


_REPORTING = ("format_projection", "write_report", "plot_projection", "regime_sentence",
              "ASSUMPTIONS")


def __getattr__(name: str):
    # the reporting functions live in projection_report (imported on first use)
    if name in _REPORTING:
        from ohmflow.host import projection_report

        return getattr(projection_report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
