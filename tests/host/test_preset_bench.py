"""The preset benchmark: its table summarizes the runs it is given, and a run records what the
trainer measured."""

import pytest
from ohmflow.host import datasets, preset_bench


def test_table_summarizes_runs_per_preset():
    rs = [{"preset": "EcRamPreset", "seed": s, "epochs": 5, "test_acc": a,
           "pulses_per_sample": p} for s, a, p in ((0, 0.80, 100.0), (1, 0.90, 200.0),
                                                   (2, 0.70, 300.0))]
    rs.append({"preset": "EcRamPreset", "seed": 0, "epochs": 30, "test_acc": 0.1,
               "pulses_per_sample": 1.0})  # another recipe: not in the 5-epoch table
    t = preset_bench.table(rs, epochs=5, seeds=[0, 1, 2])
    row = next(line for line in t.splitlines() if line.startswith("| EcRamPreset"))
    assert "0.800 (0.700–0.900) | 3 | 200 |" in row
    assert "| ReRamESPreset | not run" in t and "| IdealizedPreset | not run" in t
    assert "0.301 (0.181–0.481)" not in t  # the recorded aihwkit figure is a 30-epoch one
    assert "| ReRamSBPreset | not run | — | — | 0.301 (0.181–0.481), 3 runs | — |" in \
        preset_bench.table(rs, epochs=30, seeds=[0])


def test_aihwkit_runs_in_the_results_sit_beside_the_twins():
    """aihwkit's runs of a preset (engine "aihwkit") fill its column and replace the recorded
    figure; they never count as the twin's runs."""
    rs = [{"preset": "ReRamSBPreset", "seed": s, "epochs": 30, "test_acc": a,
           "pulses_per_sample": 50.0} for s, a in ((0, 0.8), (1, 0.6))]
    rs += [{"preset": "ReRamSBPreset", "seed": s, "epochs": 30, "test_acc": a,
            "engine": "aihwkit", "versions": "aihwkit 1.2.0 with torch 2.13.0"}
           for s, a in ((0, 0.5), (1, 0.3), (2, 0.1))]
    rs += [{"preset": "ReRamSBPreset", "seed": 1, "epochs": 30, "test_acc": 0.75,
            "engine": preset_bench.NO_WRITE_NOISE}]
    t = preset_bench.table(rs, epochs=30, seeds=[0, 1])
    row = next(line for line in t.splitlines() if line.startswith("| ReRamSBPreset"))
    assert row == ("| ReRamSBPreset | 0.700 (0.600–0.800) | 2 | 50 | 0.400 (0.300–0.500), 2 runs "
                   "| 0.750 (0.750–0.750), 1 runs |")
    assert "0.301" not in t


def test_aihwkit_option_without_aihwkit_says_how_to_install(monkeypatch):
    monkeypatch.setattr(preset_bench.aihwkit_peer, "available", lambda: False)
    with pytest.raises(SystemExit, match="aihwkit is not installed"):
        preset_bench.main(["--aihwkit", "--no-write", "--presets", "IdealizedPreset"])


def test_one_run_counts_pulses_per_training_sample():
    data = datasets.digits()
    r = preset_bench.train_one("GokmenVlasovPreset", seed=0, epochs=1, data=data)
    assert 0.0 <= r["test_acc"] <= 1.0
    # at most BL pulses per device per sample, and some devices pulse
    assert 0 < r["pulses_per_sample"] <= 31 * (64 * 32 + 32 * 10)
    assert r["preset"] == "GokmenVlasovPreset" and r["epochs"] == 1
