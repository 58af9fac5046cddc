"""The drift experiment's command runs and reports every time and temperature (its figures are
in docs/drift.md, made by `python -m ohmflow.host.drift_bench --write-docs`)."""

from ohmflow.host import drift_bench


def test_drift_bench_reports_every_row(capsys):
    assert drift_bench.main(["--seeds", "0", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("| at programming |", "| 1 s |", "| 1 h |", "| 1 day |", "| 30 days |",
                "| 300 K |", "| 350 K |", "| 400 K |"):
        assert row in out


def test_a_strong_uniform_drift_is_compensated_until_the_adc_resolution_runs_out():
    """ν 0.3 without spread: after 1 h every weight is (180)^-0.3 = 21 % of itself; the digital
    biases then outweigh the shrunken products and the uncompensated network fails, while the
    compensated one keeps most of its accuracy (seed 0, 2 epochs: 0.19 against 0.71). After 30
    days (3 %) the outputs are a few ADC steps and compensation, after the ADC, cannot help."""
    acc = drift_bench.drift_run(0, 2, 0.3, 0.0)
    assert acc["1 h"][1] > acc["1 h"][0] + 0.3
    assert acc["30 days"][1] < 0.5
