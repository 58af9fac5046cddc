"""The preset benchmark: its table summarizes the runs it is given, and a run records what the
trainer measured."""

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
    assert "0.301 (0.181–0.481)" in t  # aihwkit's ReRamSBPreset figure sits beside ours


def test_one_run_counts_pulses_per_training_sample():
    data = datasets.digits()
    r = preset_bench.train_one("GokmenVlasovPreset", seed=0, epochs=1, data=data)
    assert 0.0 <= r["test_acc"] <= 1.0
    # at most BL pulses per device per sample, and some devices pulse
    assert 0 < r["pulses_per_sample"] <= 31 * (64 * 32 + 32 * 10)
    assert r["preset"] == "GokmenVlasovPreset" and r["epochs"] == 1
