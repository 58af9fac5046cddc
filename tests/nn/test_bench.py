"""The front end's benchmark runs end to end (tiny sizes, nothing written)."""

import pytest
from ohmflow.nn import bench


@pytest.mark.slow
def test_bench_runs_and_checks_the_same_states(capsys):
    """One epoch each: the overhead part raises if the torch run's states differ from Trainer's."""
    out = bench.main(["--epochs", "1", "--overhead-epochs", "1", "--repeats", "1", "--no-write"])
    assert out["overhead"]["trainer"] > 0 and out["overhead"]["torch"] > 0
    assert len(out["cnn"]["analog"]) == len(out["cnn"]["float"]) == 3
    assert all(0.5 < a <= 1 for a in out["cnn"]["analog"] + out["cnn"]["float"])
    assert "| `ohmflow.nn`" in capsys.readouterr().out
