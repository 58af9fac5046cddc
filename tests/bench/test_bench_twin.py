"""The twin benchmark: its chip figure replays the training's own work, and without aihwkit it
compares with the recorded figure and says how to install aihwkit."""

import dataclasses
import statistics

import pytest
from ohmflow.host import bench_twin, datasets


def test_replayed_epoch_is_the_training_epoch():
    run = bench_twin.TwinRun("SoftBounds", datasets.digits(), 1)
    run.step_epoch()
    # chip_rates raises if the replay does not end in the recorded run's device states
    rates, pulses = run.chip_rates(1)
    assert len(rates) == 1 and rates[0] > 0 and pulses > 0
    twin_us, host_us = run.split()
    assert twin_us > 0 and host_us > 0 and not run.device.active


def test_without_aihwkit_the_recorded_figure_is_the_reference():
    figs = bench_twin.measure(models=("ConstantStep", "LinearStep"), repeats=1,
                              with_aihwkit=False, chip=False)
    lines = bench_twin.ratio_lines(figs)
    assert lines[0] == bench_twin.AIHWKIT_INSTALL
    for f, line in zip(figs, lines[1:], strict=True):
        lo, hi, date = bench_twin.AIHWKIT_RECORDED[(f.model, bench_twin.SMALL)]
        assert not f.aihwkit and len(f.step) == len(f.step_cpu) == 1
        assert f.model in line and f"recorded {date}" in line
        med = statistics.median(f.step)
        assert f"{med / hi:.2f}-{med / lo:.2f}x" in line
    other = dataclasses.replace(figs[0], hidden=(7,))
    assert other.reference() is None  # a network without a recorded figure has none
    assert "not recorded" in bench_twin.ratio_lines([other])[1]


def test_bad_repeats_are_refused():
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        bench_twin.measure(repeats=0)


def test_ohmflow_bench_prints_the_ratios(monkeypatch, capsys):
    from ohmflow.host import bench, cli

    # the simulator and emulator figures are other tests' business: constants here
    monkeypatch.setattr(bench, "amaranth_cycles_per_s", lambda cfg: 1.0)
    monkeypatch.setattr(bench, "verilator_cycles_per_s", lambda cfg, s: 1.0)
    monkeypatch.setattr(bench, "training_samples_per_s", lambda b, cfg, n: [1.0] * n)
    real = bench_twin.measure
    monkeypatch.setattr(bench_twin, "measure", lambda repeats, chip: real(
        models=("SoftBounds",), repeats=repeats, with_aihwkit=False, chip=chip))
    assert cli.main(["bench", "--repeats", "1"]) == 0  # writes docs only with --write-docs
    out = capsys.readouterr().out
    assert "twin vs aihwkit, SoftBounds: training step" in out and "recorded 2026-12-06" in out


def test_the_larger_network_compares_with_its_own_recorded_aihwkit_figure():
    """64-256-128-10 runs on the chips `ohmflow train --hidden 256 128` takes on the twin; its
    line compares with aihwkit's figure of that network, not the small network's."""
    cfg = bench_twin.train_config("ConstantStep", 1, bench_twin.LARGE)
    assert cfg.hidden == (256, 128) and cfg.chips == 4
    figs = bench_twin.measure(models=("ConstantStep",), repeats=1, with_aihwkit=False,
                              chip=False, hidden=bench_twin.LARGE)
    lo, hi, date = bench_twin.AIHWKIT_RECORDED[("ConstantStep", bench_twin.LARGE)]
    assert hi < bench_twin.AIHWKIT_RECORDED[("ConstantStep", bench_twin.SMALL)][0]
    assert figs[0].reference() == (lo, hi, f"recorded {date}") and figs[0].step[0] > 0
    lines = bench_twin.ratio_lines(figs)
    assert lines[0] == bench_twin.AIHWKIT_INSTALL
    med = figs[0].step[0]
    assert "64-256-128-10" in lines[1] and f"{med / hi:.2f}-{med / lo:.2f}x" in lines[1]
    with pytest.raises(ValueError, match="chip=False"):
        bench_twin.measure(repeats=1, hidden=bench_twin.LARGE)
