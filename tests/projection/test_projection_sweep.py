"""ohmflow project: crossings, the generated doc section, and the command end to end."""

import math

import pytest
from ohmflow.host import cli
from ohmflow.host import projection_sweep as sweep


def test_crossings_interpolate_in_log_log():
    xs = [1.0, 10.0, 100.0]
    ys = [0.01, 1.0 / 10 ** 0.5, 10.0]
    got = sweep.crossings(xs, ys, 1.0)
    # second segment: log y goes from -0.5 ln10 to ln10 over one decade: crosses at 1/3 of it
    assert got == [pytest.approx(10 * 10 ** (1 / 3))]
    assert sweep.crossings(xs, [2.0, 3.0, 4.0], 1.0) == []
    assert sweep.crossings([1.0, 4.0], [0.5, 2.0], 1.0) == [pytest.approx(2.0)]
    assert math.isclose(sweep.crossings([1.0, 4.0], [2.0, 0.5], 1.0)[0], 2.0)


def test_write_doc_replaces_only_its_section(tmp_path):
    doc = tmp_path / "p.md"
    doc.write_text("# Title\n\nhand text\n")
    sweep.write_doc(f"{sweep.BEGIN}\nfirst\n{sweep.END}", doc)
    sweep.write_doc(f"{sweep.BEGIN}\nsecond\n{sweep.END}", doc)
    text = doc.read_text()
    assert text.startswith("# Title\n\nhand text\n") and "second" in text
    assert "first" not in text and text.count(sweep.BEGIN) == 1


def test_project_command(tmp_path, capsys):
    from ohmflow.host.workload import analytic_ledger

    analytic_ledger([64, 32, 10], 32, steps=3).save(tmp_path / "ledger.json")
    rc = cli.main(["project", "--no-doc", "--out-dir", str(tmp_path), "--ledger",
                   str(tmp_path / "ledger.json"), "--analog", "rpu", "--digital",
                   "h100-bf16-measured,h100-bf16"])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert "ledger.json: 3 training steps; per step:" in text
    assert "regime: layers this small underuse a 4096x4096 array" in text
    assert "| 4096x4096 layers | 1024 |" in text and "Largest speed-up in the sweep" in text
    for name in ("projection-width.png", "projection-batch.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    rc = cli.main(["project", "--no-doc", "--out-dir", str(tmp_path), "--analog", "h100-bf16"])
    _, err = capsys.readouterr()
    assert rc == 2 and "profile 'h100-bf16' is digital, not analog" in err
    rc = cli.main(["project", "--out-dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert rc == 2 and "--out-dir needs --no-doc" in err
