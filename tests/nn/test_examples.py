"""The examples under examples/ run (short runs) and learn; swapping the backend is one argument."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mlp_example_learns_on_the_twin(capsys):
    """Two epochs, seed 0: chance is 0.1; a broken update, read or gradient stays near it."""
    example("mlp_digits").main(["--epochs", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[1] for ln in lines] == ["1/2", "2/2"]
    assert float(lines[-1].split()[-1]) > 0.8


def test_mlp_example_on_verilator_is_the_twin_run():
    """One epoch with --backend verilator ends with the twin run's accuracy and loss lines."""
    pytest.importorskip("ohmflow.sim.verilator_server")
    mod = example("mlp_digits")
    logs = {b: [] for b in ("twin", "verilator")}
    for b, out in logs.items():
        mod.train(b, epochs=1, log=out.append)
    assert logs["twin"] == logs["verilator"]


@pytest.mark.parametrize("analog", [True, False])
def test_cnn_example_learns(analog):
    """One epoch of the CNN, analog (conv and linear on the twin) and float, seed 0."""
    acc = example("cnn_digits").train(epochs=1, analog=analog, log=lambda line: None)
    assert acc > 0.75


def test_mlp_example_with_an_algorithm_learns_and_saves_a_ledger_ohmflow_project_reads(
        tmp_path, capsys):
    """One epoch of TTv2 (the algorithm benchmark's options, lr 0.3), seed 0: above chance
    (0.1), and the saved ledger holds the 45 training steps, A's updates and C's transfers."""
    from ohmflow.host.projection_sweep import load_ledger, steps_of

    path = tmp_path / "cost.json"
    example("mlp_digits").main(["--epochs", "1", "--algorithm", "ttv2", "--lr", "0.3",
                                "--algorithm-option", "n_reads_per_transfer=8",
                                "--algorithm-option", "transfer_bl=4", "--ledger", str(path)])
    assert float(capsys.readouterr().out.split()[-1]) > 0.4
    led = load_ledger(path)
    assert steps_of(led) == 45
    assert led.get("layer0.A", "update")["update_samples"] == 1437  # the training split
    assert led.get("layer0", "update")["pulse_ops"] > 0  # transfers: PULSE on C
    with pytest.raises(SystemExit):
        example("mlp_digits").main(["--algorithm", "ttv2", "--algorithm-option", "momentm=1"])
    assert "has no option 'momentm'" in capsys.readouterr().err
