"""The ohmflow command line: train end to end, resume, info, registration, bad input."""

import json
import sys

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host import cli

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_end_to_end_writes_report(tmp_path, capsys):
    out = tmp_path / "run"
    rc, text, err = run(capsys, "train", "--epochs", "2", "--hidden", "16", "--lr", "0.3",
                        "--out", str(out), "--no-progress")
    assert rc == 0, err
    for name in ("curves.png", "weights.png", "devicemap.png"):
        assert (out / name).read_bytes()[:8] == PNG
    table = (out / "table.txt").read_text()
    assert "analog" in table and "float" in table and "fwd_vectors" in table
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    last = hist[-1]
    assert f"{last['analog_test_acc']:.4f}" in text and f"{last['float_test_acc']:.4f}" in text
    assert "epoch   1/2" in text and "samples/s" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["hidden"] == [16] and summary["backend"] == "twin"
    assert summary["counters"][0]["update_samples"] > 0


def test_resume_continues_the_stored_run(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ("--hidden", "8", "--no-progress", "--seed", "4", "--no-float")
    assert run(capsys, "train", "--epochs", "2", "--out", str(a), *common)[0] == 0
    assert run(capsys, "train", "--epochs", "1", "--out", str(b), *common)[0] == 0
    rc, text, err = run(capsys, "train", "--resume", str(b), "--epochs", "2", "--no-progress")
    assert rc == 0, err
    assert "resuming" in text
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    assert [h["analog_test_loss"] for h in ha] == [h["analog_test_loss"] for h in hb]


def test_resume_refuses_changed_options_and_corruption(tmp_path, capsys):
    a = tmp_path / "a"
    assert run(capsys, "train", "--epochs", "1", "--hidden", "8", "--out", str(a),
               "--no-progress", "--no-float")[0] == 0
    rc, _, err = run(capsys, "train", "--resume", str(a), "--lr", "0.5")
    assert rc == 2 and "--lr differs" in err
    rc, _, err = run(capsys, "train", "--epochs", "1", "--out", str(a))
    assert rc == 2 and "already holds a run" in err
    ck = a / "checkpoint.ohmckpt"
    data = bytearray(ck.read_bytes())
    data[-10] ^= 1
    ck.write_bytes(bytes(data))
    rc, _, err = run(capsys, "train", "--resume", str(a), "--epochs", "2")
    assert rc == 2 and "checksum" in err and "Traceback" not in err


def test_info_reports_the_config(capsys):
    rc, text, _ = run(capsys, "info", "--config", "icebreaker")
    assert rc == 0
    fields = dict(line.split(None, 1) for line in text.splitlines() if line.strip())
    cfg = PRESETS["icebreaker"]
    for k in ("tiles", "rows", "cols", "in_bits", "out_bits", "p_bits", "bl_max"):
        assert int(fields[k]) == getattr(cfg, k)
    assert fields["fingerprint"] == f"0x{cfg.fingerprint():08x}"


@pytest.fixture
def nan_dataset(tmp_path):
    x = np.random.default_rng(0).random((40, 6))
    x[7, 2] = np.nan
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=np.arange(40) % 2)
    return path


@pytest.mark.parametrize("case, argv, words", [
    ("wide", ["--hidden", "200", "--chips", "1"], ["needs 8 tiles", "--chips 2"]),
    ("layers", ["--hidden", "8", "8", "8", "8", "--chips", "1"],
     ["needs 5 tiles", "--chips 2", "tiles16"]),
    ("board", ["--hidden", "200", "--backend", "socket://127.0.0.1:9"], ["needs 8 tiles"]),
    ("chips", ["--chips", "0"], ["--chips must be a positive integer"]),
    ("block", ["--max-input-size", "65"], ["max_input_size 65 exceeds", "64 rows"]),
    ("model", ["--device-model", "Memristor"], ["unknown device model", "SoftBounds"]),
    ("param", ["--dw-min", "-1"], ["dw_min"]),
    ("port", ["--backend", "/dev/ttyOHMFLOW-NOPE"], ["ttyOHMFLOW-NOPE"]),
    ("config", ["--config", "nonexistent"], ["unknown chip config", "icebreaker"]),
    ("dataset", ["--dataset", "imagenet"], ["unknown dataset", "mnist1d"]),
    ("nan", None, ["NaN", "sample"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, nan_dataset, case, argv, words):
    if argv is None:
        argv = ["--dataset", str(nan_dataset)]
    rc, _, err = run(capsys, "train", "--epochs", "1", "--out", str(tmp_path / case),
                     "--no-progress", *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("ohmflow train: error: "), err
    for w in words:
        assert w in err


def test_a_command_registers_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "ohmflow_hello_cmd.py").write_text(
        "def add_arguments(p):\n    p.add_argument('--name', default='chip')\n"
        "def run(args):\n    print('hello', args.name)\n    return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "hello", ("ohmflow_hello_cmd", "say hello"))
    assert run(capsys, "hello", "--name", "tile")[:2] == (0, "hello tile\n")
    assert "ohmflow_hello_cmd" in sys.modules
    del sys.modules["ohmflow_hello_cmd"]
    rc, _, _ = run(capsys, "info")  # the other commands do not import it
    assert rc == 0 and "ohmflow_hello_cmd" not in sys.modules
