"""The training loop's cost ledger: exact attribution, exact resume, and the CLI's report."""

import json

import numpy as np
from ohmflow.host import cli
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer

PNG = b"\x89PNG\r\n\x1a\n"


def test_ledger_attributes_each_phase_exactly(digits):
    t = Trainer(TrainConfig(epochs=1, seed=2, float_baseline=False), TwinDevice(), digits)
    t.run()
    n = len(digits.x_train)
    sizes = t.sizes  # 64-32-10
    led = t.ledger
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        fwd = led.get(f"layer{k}", "forward")
        # every training sample is read forward once (bound management may re-read a few)
        assert fwd["fwd_vectors"] >= n and fwd["macs"] == fwd["fwd_vectors"] * n_in * n_out
        assert fwd["dac_conversions"] == fwd["fwd_vectors"] * n_in
        assert fwd["update_samples"] == 0 and fwd["pulses"] == 0
        upd = led.get(f"layer{k}", "update")
        assert upd["macs"] == 0 and upd["fwd_vectors"] == 0 and 0 < upd["update_samples"] <= n
        bwd = led.get(f"layer{k}", "backward")
        if k == 0:  # the first layer's input gradient is never read
            assert bwd["bwd_vectors"] == 0
        else:
            assert bwd["bwd_vectors"] >= n and bwd["macs"] == bwd["bwd_vectors"] * n_in * n_out
    # the ledger covers training only: the device counters also hold the evaluation reads
    counters = t.counters()
    assert sum(c["pulses"] for c in counters) == led.totals()["pulses"]
    eval_vectors = len(digits.x_test)  # the test-set evaluation after the epoch
    assert counters[0]["fwd_vectors"] == led.get("layer0", "forward")["fwd_vectors"] + \
        eval_vectors


def test_ledger_survives_resume_exactly(digits, tmp_path):
    cfg = TrainConfig(epochs=2, seed=4, float_baseline=False)
    whole = Trainer(cfg, TwinDevice(), digits)
    whole.run()
    first = Trainer(cfg, TwinDevice(), digits, out_dir=tmp_path)
    first.run(stop_after=1)
    resumed = Trainer.resume(tmp_path, TwinDevice())
    resumed.run()
    assert resumed.ledger.entries == whole.ledger.entries
    assert np.array_equal(resumed.analog.state()["analog_w0"], whole.analog.state()["analog_w0"])


def test_cli_prints_projection_and_writes_report(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["train", "--epochs", "1", "--hidden", "8", "--out", str(out), "--no-progress",
                   "--report", str(tmp_path / "cost.json")])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert "projected hardware cost" in text and "energy gain" in text
    # the regime in one sentence: a 64-8-10 network fills 2 % of a 4096x4096 RPU array pair
    assert "regime: layers this small underuse a 4096x4096 array" in text
    doc = json.loads((tmp_path / "cost.json").read_text())
    assert "utilisation" in doc["regime"][0]
    assert {p["profile"] for p in doc["projections"]} >= {"rpu", "hermes", "h100-bf16"}
    assert doc["ledger"]["entries"]
    assert (tmp_path / "cost.png").read_bytes()[:8] == PNG
    rc = cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "r2"), "--no-progress",
                   "--report", str(tmp_path / "cost.txt")])
    _, err = capsys.readouterr()
    assert rc == 2 and "--report" in err and ".md or .json" in err
