"""``ohmflow sim`` (``./run sim``): the cocotb testbenches for a chosen config and seed, a
pass/fail line per testbench, waveforms on request; bad choices refused before any build."""

import re

import pytest
from ohmflow.host import cli


def sim(capsys, *argv):
    rc = cli.main(["sim", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow  # builds the traced cocotb model once (1-3 minutes on two cores)
def test_testbenches_pass_and_the_waves_are_written(tmp_path, capsys):
    rc, out, err = sim(capsys, "--config", "tiny", "--seed", "7", "--frames", "3",
                       "--testbench", "random_commands", "--testbench", "large_frames",
                       "--waves", "--out", str(tmp_path))
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if re.match(r"(PASS|FAIL) ", ln)]
    assert [ln.split()[:2] for ln in lines] == [["PASS", "random_commands"],
                                                ["PASS", "large_frames"]]
    for name in ("random_commands", "large_frames"):
        vcd = tmp_path / name / "dump.vcd"
        assert vcd.read_text(errors="replace").startswith("$") and f"waves: {vcd}" in out
        assert "Seeding Python random module with 7" in (tmp_path / name / "sim.log").read_text()
    assert out.rstrip().endswith("2 passed, 0 failed")


def test_a_failing_testbench_is_reported_as_failed(tmp_path, capsys, monkeypatch):
    from ohmflow.sim import runner, testbenches

    def fake_run(verilog, module, folder, **kw):
        if kw["testcase"] == "malformed_frames":
            raise AssertionError("1 of 1 cocotb tests failed in ohmflow.sim.cocotb_soc\n...")
        assert kw["seed"] == 5 and kw["extra_env"]["OHMFLOW_CONFIG"] == "tiny"
        return 1, 0

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(testbenches, "_verilog", lambda cfg, uart: "module top; endmodule")
    rc, out, _ = sim(capsys, "--seed", "5", "--out", str(tmp_path), "--testbench",
                     "random_commands", "--testbench", "malformed_frames")
    assert rc == 1
    assert re.search(r"^PASS  random_commands", out, re.M)
    assert re.search(r"^FAIL  malformed_frames .*1 of 1 cocotb tests failed", out, re.M)
    assert "1 passed, 1 failed" in out


@pytest.mark.parametrize("argv, words", [
    (["--testbench", "nope"], ["unknown testbench(es) ['nope']", "random_commands"]),
    (["--config", "icebreaker"], ["rv32 engine", "test_core_soc.py"]),
    (["--seed", "-1"], ["--seed must be in"]),
    (["--frames", "0"], ["--frames must be >= 1"]),
])
def test_bad_choices_are_refused(capsys, tmp_path, argv, words):
    rc, _, err = sim(capsys, "--out", str(tmp_path / "o"), *argv)
    assert rc == 2 and err.count("\n") == 1
    for w in words:
        assert w in err
    assert not (tmp_path / "o").exists()
