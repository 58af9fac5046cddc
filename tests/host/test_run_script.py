"""``./run``: relative paths are the caller's, no arguments print the help, ``--version``."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

RUN = Path(__file__).resolve().parents[2] / "run"


def run(cwd, *args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "OHMFLOW_VENV"}
    return subprocess.run([str(RUN), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory outside the project, with a small dataset and a chip config in it."""
    rng = np.random.default_rng(3)
    y = np.arange(60) % 3
    x = rng.normal(0, 1, (3, 5))[y] + rng.normal(0, 0.3, (60, 5))
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    (tmp_path / "chip.toml").write_text("[chip]\ntiles = 2\nrows = 5\ncols = 7\nlanes = 3\n")
    return tmp_path


def test_relative_paths_are_taken_from_the_callers_directory(elsewhere):
    res = run(elsewhere, "train", "--epochs", "1", "--hidden", "4", "--no-progress",
              "--dataset", "blobs.npz", "--config", "chip.toml", "--out", "out/a",
              "--report", "cost.md")
    assert res.returncode == 0, res.stderr
    assert (elsewhere / "out" / "a" / "summary.json").exists()
    assert (elsewhere / "cost.md").exists() and (elsewhere / "cost.png").exists()
    assert not (RUN.parent / "out").exists() and not (RUN.parent / "cost.md").exists()
    res = run(elsewhere, "train", "--resume", "out/a", "--epochs", "2", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "resuming out/a after epoch 1 of 2" in res.stdout
    # the speed figure of a resumed run names its backend and the epochs it covers
    assert "analog training speed on backend twin" in res.stdout
    assert "(epoch 2, this session)" in res.stdout


def test_no_arguments_print_the_help_and_train_nothing(tmp_path):
    res = run(tmp_path)
    assert res.returncode == 0
    for word in ("./run train", "./run test", "./run sim", "train", "sweep", "--version"):
        assert word in res.stdout
    assert not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []


def test_version():
    from importlib.metadata import version

    res = run(RUN.parent, "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"ohmflow {version('ohmflow')}"
