"""Projection model: hand-computed arithmetic, published figures, reports, bad inputs.

Expected values are computed here from the equations of docs/projection.md, not with the
module's helpers.
"""

import json
import tomllib

import numpy as np
import pytest
from ohmflow.host import projection as P
from ohmflow.host.device import TwinDevice
from ohmflow.host.ledger import CostLedger

SMALL = """
[toy-analog]
kind = "analog"
rows = { value = 8, source = "test" }
cols = { value = 4, source = "test" }
cores = { value = 2, source = "test" }
in_bits = { value = 8, source = "test" }
out_bits = { value = 8, source = "test" }
clock_hz = { value = 1e9, source = "test" }
read_phases = { value = 2, source = "test" }
t_mvm_s = { value = 1e-7, source = "test" }
e_mac_j = { value = 1e-12, source = "test" }
e_dac_j = { value = 2e-12, source = "test" }
e_adc_j = { value = 3e-12, source = "test" }
update_supported = { value = true, source = "test" }
t_slot_s = { value = 1e-9, source = "test" }
e_update_device_j = { value = 5e-13, source = "test" }
e_pulse_j = { value = 1e-13, source = "test" }

[toy-digital]
kind = "digital"
peak_macs_per_s = { value = 1e9, source = "test" }
e_mac_j = { value = 1e-12, source = "test" }
bytes_per_value = { value = 2, source = "test" }
e_byte_j = { value = 1e-11, source = "test" }
bandwidth_bytes_per_s = { value = 1e9, source = "test" }
"""


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(SMALL)
    return path


def _toy_ledger():
    # One layer of n_in = 4, n_out = 3; batch 2, one call per phase, BL = 5.
    led = CostLedger()
    led.shapes["fc"] = (4, 3)
    led.add("fc", "forward", {"fwd_vectors": 2, "macs": 24, "dac_conversions": 8,
                              "adc_conversions": 6, "calls": 1, "weight_elems": 12})
    led.add("fc", "backward", {"bwd_vectors": 2, "macs": 24, "dac_conversions": 6,
                               "adc_conversions": 8, "calls": 1, "weight_elems": 12})
    led.add("fc", "update", {"update_samples": 2, "pulses": 17, "pulse_slots": 10,
                             "device_updates": 24, "update_values": 14, "calls": 1,
                             "weight_elems": 12})
    return led


def test_analog_arithmetic_by_hand(toy):
    pr = P.project(_toy_ledger(), "toy-analog", toy)
    # forward: T = vectors * t_mvm * phases; E = phases * (MACs e_mac + DAC e_dac + ADC e_adc)
    assert pr.phases["forward"].time_s == pytest.approx(2 * 1e-7 * 2)
    assert pr.phases["forward"].energy_j == pytest.approx(2 * (24e-12 + 8 * 2e-12 + 6 * 3e-12))
    assert pr.phases["backward"].energy_j == pytest.approx(2 * (24e-12 + 6 * 2e-12 + 8 * 3e-12))
    # update: T = slots * t_slot; E = device_updates * e_update_device + pulses * e_pulse
    assert pr.phases["update"].time_s == pytest.approx(10 * 1e-9)
    assert pr.phases["update"].energy_j == pytest.approx(24 * 5e-13 + 17 * 1e-13)
    assert pr.phases["update"].energy_terms["pulses"] == pytest.approx(17e-13)
    assert pr.time_s == pytest.approx(4e-7 + 4e-7 + 1e-8)
    assert pr.notes == []


def test_digital_arithmetic_by_hand(toy):
    pr = P.project(_toy_ledger(), "toy-digital", toy)
    # forward: MACs 24; bytes = 2 * (8 + 6 + 12) = 52; T = max(24/1e9, 52/1e9)
    f = pr.phases["forward"]
    assert f.time_s == pytest.approx(52e-9)
    assert f.time_terms["compute"] == pytest.approx(24e-9)
    assert f.energy_j == pytest.approx(24e-12 + 52 * 1e-11)
    # update: MACs = 24 outer-product + 12 weight step = 36;
    # bytes = 2 * (14 values + 2 * 12 weights read and written) = 76
    u = pr.phases["update"]
    assert u.time_s == pytest.approx(76e-9)
    assert u.energy_j == pytest.approx(36e-12 + 76e-11)


def test_capacity_and_bits_notes(toy):
    led = _toy_ledger()
    led.shapes["big"] = (20, 9)  # ceil(20/8) * ceil(9/4) = 9 arrays > 2 cores
    led.add("big", "forward", {"fwd_vectors": 1, "macs": 180, "dac_conversions": 20,
                               "adc_conversions": 9, "calls": 1, "weight_elems": 180})
    led.in_bits = 9
    notes = " ".join(P.project(led, "toy-analog", toy).notes)
    assert "need 10 arrays" in notes and "9-bit DAC" in notes


LITERATURE = {  # published figures, as printed in the papers cited in profiles.toml
    ("hermes", "tops_per_w", 1): 9.76, ("hermes", "tops_per_w", 4): 2.48,
    ("hermes", "tops", 1): 63.1, ("hermes", "tops", 4): 16.1,
    ("hermes", "mvm_latency_s", 1): 64 * 2 * 256 * 256 / 63.1e12,
    ("hermes", "mvm_latency_s", 4): 64 * 2 * 256 * 256 / 16.1e12,
    ("ibm-speech", "tops_per_w", 1): 12.4, ("ibm-speech", "mvm_latency_s", 1): 300e-9,
    ("rpu", "tops_per_w", 1): 84.0, ("rpu", "train_cycle_s", 1): 80e-9 + 80e-9 + 10 * 1e-9,
}


def _expected(q: str, v: dict, bl: int) -> float:
    """docs/projection.md, section 2, for full arrays: one vector's read time is
    max(phases * t_mvm, periphery ops / (ops per cycle * clock)), its energy phases * (array +
    converters) + periphery ops * e_periph + bytes * e_move."""
    r, c, k = v["rows"], v["cols"], v["read_phases"]
    rate = v.get("periph_ops_per_cycle", 0) * v["clock_hz"]

    def t_read(ops: int) -> float:
        return max(k * v["t_mvm_s"], ops / rate if rate else 0.0)

    code_in, code_out = -(-v["in_bits"] // 8), -(-v["out_bits"] // 8)
    e = (k * (r * c * v["e_mac_j"] + r * v["e_dac_j"] + c * v["e_adc_j"])
         + v.get("e_periph_op_j", 0) * (2 * r + 3 * c)
         + v.get("e_move_byte_j", 0) * (code_in * r + code_out * c))
    if q == "tops_per_w":
        return 2 * r * c / e / 1e12
    if q == "tops":
        return v["cores"] * 2 * r * c / t_read(2 * r + 3 * c) / 1e12
    if q == "mvm_latency_s":
        return t_read(2 * r + 3 * c)
    return (t_read(2 * r + 3 * c) + t_read(2 * c + 2 * r) + bl * v["t_slot_s"]
            + (3 * (r + c) / rate if rate else 0.0))


def test_published_figures_within_2x():
    raw = tomllib.loads(P.PROFILES_PATH.read_text())
    seen = set()
    for name in ("hermes", "ibm-speech", "rpu"):
        t = raw[name]
        for row in P.validate(name):
            ov = row["overrides"]
            v = {k: ov.get(k, e["value"]) for k, e in t.items() if isinstance(e, dict)}
            bl = next(r.get("bl", 0) for r in t["validation"] if r["quantity"] == row["quantity"])
            assert row["model"] == pytest.approx(_expected(row["quantity"], v, bl), rel=1e-9)
            assert 0.5 <= row["ratio"] <= 2.0, row
            key = (name, row["quantity"], v["read_phases"])
            assert row["published"] == pytest.approx(LITERATURE[key], rel=0.01)
            seen.add(key)
    assert seen == set(LITERATURE)
    for name in ("h100-bf16", "h100-int8"):
        for row in P.validate(name):
            assert 0.5 <= row["ratio"] <= 2.0


def test_independent_checks_exist():
    rows = [r for name in P.load_profiles() for r in P.validate(name) if r["independent"]]
    assert len(rows) >= 3
    assert all(0.5 <= r["ratio"] <= 2.0 for r in rows)


def _trained_ledger():
    dev = TwinDevice("tiny")
    dev.configure(shapes=((5, 7), (5, 3)))
    rng = np.random.default_rng(0)
    led = CostLedger()
    for _ in range(3):
        with led.phase("fc1", "forward", dev, 0):
            dev.forward(0, rng.integers(-60, 61, (4, 5)))
        with led.phase("fc2", "forward", dev, 1):
            dev.forward(1, rng.integers(-60, 61, (4, 5)))
        with led.phase("fc2", "backward", dev, 1):
            dev.backward(1, rng.integers(-60, 61, (4, 3)))
        with led.phase("fc2", "update", dev, 1):
            dev.update(1, rng.integers(-99, 100, (4, 5)), rng.integers(-99, 100, (4, 3)))
        with led.phase("fc1", "update", dev, 0):
            dev.update(0, rng.integers(-99, 100, (4, 5)), rng.integers(-99, 100, (4, 7)))
    return led


def test_hermes_leaves_update_out_and_says_so():
    led = _trained_ledger()
    a, d = P.compare(led, "hermes", "h100-bf16")
    assert a.phases["update"].time_s is None
    assert a.modelled_phases == ["forward", "backward"]
    text = P.format_projection(a, d, led)
    assert "total (forward+backward)" in text and "no in-array update" in text
    assert "assumptions:" in text


def test_reports_and_plot(tmp_path):
    led = _trained_ledger()
    prs = [P.project(led, n) for n in ("rpu", "hermes", "h100-bf16")]
    text = P.format_projection(prs[0], prs[2], led)
    for phase in ("forward", "backward", "update", "total"):
        assert phase in text
    md = P.write_report(tmp_path / "r.md", led, prs).read_text()
    assert "## rpu against h100-bf16" in md and "## hermes against h100-bf16" in md
    doc = json.loads(P.write_report(tmp_path / "r.json", led, prs).read_text())
    assert doc["ledger"]["totals"]["macs"] == led.totals()["macs"]
    assert CostLedger.from_dict(doc["ledger"]).to_dict() == led.to_dict()
    assert {c["analog"] for c in doc["comparisons"]} == {"rpu", "hermes"}
    png = P.plot_projection(tmp_path / "p.png", prs)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\.md or \.json"):
        P.write_report(tmp_path / "r.txt", led, prs)


def test_bad_profiles(tmp_path, toy):
    with pytest.raises(ValueError, match="unknown profile 'tpu'.*hermes"):
        P.get_profile("tpu")
    missing = tmp_path / "missing.toml"
    missing.write_text(SMALL.replace('e_mac_j = { value = 1e-12, source = "test" }\ne_dac_j',
                                     "e_dac_j"))
    with pytest.raises(ValueError, match="toy-analog.*missing field 'e_mac_j'"):
        P.load_profiles(missing)
    nosrc = tmp_path / "nosrc.toml"
    nosrc.write_text(SMALL.replace('t_mvm_s = { value = 1e-7, source = "test" }',
                                   "t_mvm_s = { value = 1e-7 }"))
    with pytest.raises(ValueError, match="'t_mvm_s' has no source"):
        P.load_profiles(nosrc)
    neg = tmp_path / "neg.toml"
    neg.write_text(SMALL.replace("value = 3e-12", "value = -3e-12"))
    with pytest.raises(ValueError, match="'e_adc_j' must be non-negative"):
        P.load_profiles(neg)
    bare = tmp_path / "bare.toml"
    bare.write_text(SMALL.replace('cores = { value = 2, source = "test" }', "cores = 2"))
    with pytest.raises(ValueError, match="'cores' must be a table"):
        P.load_profiles(bare)
    with pytest.raises(ValueError, match="'t_mvm_s' must be positive"):
        P.get_profile("toy-analog", toy).replace(t_mvm_s=0.0)
    with pytest.raises(ValueError, match="CostLedger"):
        P.project({"macs": 1}, "hermes")
    with pytest.raises(ValueError, match="an analog and a digital"):
        P.compare(_toy_ledger(), "h100-bf16", "hermes")


def test_the_update_row_counts_pulses_not_macs():
    led = _trained_ledger()
    a, d = P.compare(led, "rpu", "h100-bf16")
    counts = led.by_phase()
    assert counts["update"]["pulses"] > 0 and counts["update"]["macs"] == 0
    rows = {ln.split()[0]: ln for ln in P.format_projection(a, d, led).splitlines()}
    assert f"{counts['update']['pulses']:.3g} pulses" in rows["update"]
    assert "MACs" not in rows["update"] and "nan" not in rows["update"]
    assert f"{counts['forward']['macs']:.3g} MACs" in rows["forward"]
    total = rows["total"]
    macs = counts["forward"]["macs"] + counts["backward"]["macs"]
    assert f"{macs:.3g} MACs, {counts['update']['pulses']:.3g} pulses" in total
    from ohmflow.host.projection_report import _si

    assert _si(a.phases["update"].energy_j, "J") in rows["update"]  # and its energy
