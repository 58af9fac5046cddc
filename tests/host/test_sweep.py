"""``ohmflow sweep``: a grid of train runs in a local pool and on Ray, resumed and skipped when run
again, one table and plots, failures reported; bad specs refused before anything runs."""

import csv
import json
import statistics

import numpy as np
import pytest
from ohmflow.host import cli, sweep

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def blobs(tmp_path):
    """Three separable classes in 5 features (the tiny chip's 5 rows), 90 samples, seed 3."""
    rng = np.random.default_rng(3)
    centers = rng.normal(0, 1, (3, 5))
    y = np.arange(90) % 3
    x = centers[y] + rng.normal(0, 0.3, (90, 5))
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def write_spec(tmp_path, blobs, grid: str, fixed: str = "epochs = 1", name="spec.toml"):
    spec = tmp_path / name
    spec.write_text(f'[fixed]\nconfig = "tiny"\ndataset = "{blobs}"\nhidden = 4\n{fixed}\n'
                    f"[grid]\n{grid}\n")
    return spec


GRID12 = 'lr = [0.05, 0.3]\ndevice-model = ["ConstantStep", "SoftBounds"]\nseed = [0, 1, 2]'


def rows(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def check_results(out):
    """The table holds every run's own summary, and the plots exist."""
    table = rows(out)
    assert len(table) == 12
    for r in table:
        s = json.loads((out / "runs" / r["run"] / "summary.json").read_text())
        assert float(r["analog_test_acc"]) == s["final"]["analog_test_acc"]
        assert r["lr"] == str(s["train"]["lr"]) and r["seed"] == str(s["train"]["seed"])
        assert r["device-model"] == s["train"]["device_model"]["model"]
    for p in ("lr", "device-model"):
        assert (out / f"acc_vs_{p}.png").read_bytes()[:8] == PNG
    assert not (out / "acc_vs_seed.png").exists()
    md = (out / "results.md").read_text()
    accs = [float(r["analog_test_acc"]) for r in table
            if r["lr"] == "0.3" and r["device-model"] == "SoftBounds"]
    assert f"| 0.3 | SoftBounds | 3 | {statistics.mean(accs):.4f} | " \
           f"{statistics.stdev(accs):.4f} |" in md
    return table


@pytest.mark.slow  # about 35 s on two idle cores
def test_a_12_run_sweep_writes_its_table_and_plots_and_skips_finished_runs(tmp_path, blobs,
                                                                          capsys):
    spec = write_spec(tmp_path, blobs, GRID12)
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    table = check_results(out)
    assert {r["status"] for r in table} == {"done"}
    # each run is `ohmflow train` with its options: a direct run gives the same history
    one = table[7]
    direct = tmp_path / "direct"
    assert cli.main(["train", *one["args"].split(), "--out", str(direct), "--no-progress"]) == 0
    assert json.loads((direct / "history.json").read_text())[0]["analog_test_loss"] == \
        json.loads((out / "runs" / one["run"] / "history.json").read_text())[0][
            "analog_test_loss"]
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}
    capsys.readouterr()
    assert cli.main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert "12 done (skipped), 0 to resume, 0 new" in capsys.readouterr().out
    assert {r["status"] for r in check_results(out)} == {"skipped (done)"}
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, blobs, capsys):
    spec = sweep.load_spec(write_spec(tmp_path, blobs, "seed = [0, 1]", "epochs = 2"),
                           tmp_path / "sweep")
    first = spec.runs[0]
    folder = spec.out / "runs" / first.id
    # a run stopped after its first epoch: a checkpoint, no summary
    args = [a if a != "2" else "1" for a in first.args]
    assert cli.main(["train", *args, "--out", str(folder), "--no-progress"]) == 0
    (folder / "summary.json").unlink()
    assert sweep.status(folder) == "partial"
    table = sweep.run_sweep(spec, jobs=1, progress=False)
    assert [r["status"] for r in table] == ["resumed", "done"]
    assert "resuming" in (folder / "train.log").read_text()
    whole = tmp_path / "whole"
    assert cli.main(["train", *first.args, "--out", str(whole), "--no-progress"]) == 0
    key = "analog_test_loss"
    assert [h[key] for h in json.loads((folder / "history.json").read_text())] == \
        [h[key] for h in json.loads((whole / "history.json").read_text())]


def test_failed_runs_are_reported_with_their_error(tmp_path, blobs, capsys):
    spec = write_spec(tmp_path, blobs, 'backend = ["twin", "socket://127.0.0.1:1"]')
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--jobs", "1",
                     "--no-progress"]) == 1
    table = {r["backend"]: r for r in rows(out)}
    assert table["twin"]["status"] == "done" and not table["twin"]["error"]
    bad = table["socket://127.0.0.1:1"]
    assert bad["status"] == "failed" and "cannot open 'socket://127.0.0.1:1'" in bad["error"]
    assert "open_device" not in bad["error"] and "--backend verilator" in bad["error"]
    assert bad["error"] in (out / "runs" / bad["run"] / "error.txt").read_text()
    assert "1 of 2 runs failed" in capsys.readouterr().out
    assert "failed" in (out / "results.md").read_text()


@pytest.mark.parametrize("body, words", [
    ("[grid]\nlr = [0.1, -1]\n", ["run 2", "--lr -1", "lr must be a positive number"]),
    ("[grid]\nlrr = [0.1]\n", ["unrecognized arguments: --lrr"]),
    ("[fixed]\nout = 'x'\n", ["'out' is set by the sweep"]),
    ("[grid]\nlr = 0.1\n", ["grid option 'lr' must be a non-empty array"]),
    ("[grid]\nlr = [0.1, 0.1]\n", ["runs 1 and 2 are the same run"]),
    ("[grid]\ndesired-bl = [31, 200]\n", ["--desired-bl 200", "bl_max"]),
    ("[grid\nlr = [1]\n", ["is not valid TOML"]),
    ("[grids]\nlr = [1]\n", ["unknown table(s) ['grids']"]),
])
def test_a_bad_spec_is_refused_before_anything_runs(tmp_path, capsys, body, words):
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    rc = cli.main(["sweep", str(spec), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(spec) in err, err
    for w in words:
        assert w in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_same_sweep_on_a_local_ray(tmp_path, blobs, monkeypatch):
    """The dataset is named relative to the sweep's directory: Ray workers find it too."""
    ray = pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    spec = sweep.load_spec(write_spec(tmp_path, blobs.name, GRID12), tmp_path / "sweep")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        table = sweep.run_sweep(spec, ray_address="auto", progress=False)
    finally:
        ray.shutdown()
    assert {r["status"] for r in table} == {"done"}
    check_results(spec.out)
    one = table[5]  # a Ray task is `ohmflow train` with its options: a direct run agrees
    direct = tmp_path / "direct"
    assert cli.main(["train", *one["args"].split(), "--out", str(direct), "--no-progress"]) == 0
    key = "analog_test_loss"
    assert [h[key] for h in json.loads((direct / "history.json").read_text())] == \
        [h[key] for h in json.loads((spec.out / "runs" / one["run"] / "history.json").read_text())]
    again = sweep.run_sweep(spec, jobs=1, progress=False)  # run again, locally: all skipped
    assert {r["status"] for r in again} == {"skipped (done)"}


def test_an_interrupted_sweep_says_how_to_resume(tmp_path, blobs, capsys, monkeypatch):
    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_sweep", stop)
    spec = write_spec(tmp_path, blobs, "seed = [0, 1]")
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; run `ohmflow sweep {spec}` again" in err and "resume" in err


def test_the_documented_example_spec_is_valid(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "sweep_example.toml"
    spec = sweep.load_spec(path)
    assert len(spec.runs) == 2 * 3 * 3 and set(spec.swept) == {"device-model", "lr", "seed"}
    assert str(spec.out) == "sweeps/example"
    assert cli.main(["sweep", str(path), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 18
