"""The algorithm benchmark: runs recorded once, skipped when asked again, tabulated."""

import json

from ohmflow.host import algorithm_bench


def test_bench_records_runs_skips_them_again_and_tabulates(tmp_path, capsys):
    res = tmp_path / "runs.jsonl"
    argv = ["--epochs", "1", "--seeds", "1", "--devices", "softbounds", "--algorithms", "sgd",
            "mixed-precision", "--results", str(res), "--no-write"]
    assert algorithm_bench.main(argv) == 0
    runs = [json.loads(line) for line in res.read_text().splitlines()]
    assert [r["algorithm"] for r in runs] == ["sgd", "mixed-precision"]
    assert runs[0]["transfer_reads_per_sample"] == 0 and runs[0]["pulses_per_sample"] > 0
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in runs)
    capsys.readouterr()
    assert algorithm_bench.main(argv) == 0
    out = capsys.readouterr().out
    assert len(res.read_text().splitlines()) == 2
    rows = [line for line in out.splitlines() if line.startswith("| softbounds")]
    assert len(rows) == 2 and "| sgd | 1 |" in rows[0] and "| mixed-precision | 1 |" in rows[1]
