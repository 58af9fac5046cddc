"""PLL parameters against the YoWASP builds of Project Trellis' ecppll and IceStorm's icepll."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ohmflow.boards import BOARDS
from ohmflow.boards.pll import PllClock, ecp5_pll, ice40_pll


def tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the yowasp-nextpnr packages)")
    return found


def run_tool(name: str, args: list[str], cwd: Path) -> str:
    r = subprocess.run([tool(name), *args], cwd=cwd, capture_output=True, text=True, check=True)
    return r.stdout


@pytest.mark.parametrize("f_out", [60, 75, 100, 48, 16.5])
def test_ecp5_matches_ecppll(tmp_path, f_out):
    out = run_tool("yowasp-ecppll", ["-i", "25", "-o", str(f_out), "-f", "pll.v"], tmp_path)
    verilog = (tmp_path / "pll.v").read_text()
    p = ecp5_pll(25, f_out)
    assert int(re.search(r"Refclk divisor: (\d+)", out)[1]) == p.clki_div
    assert int(re.search(r"Feedback divisor: (\d+)", out)[1]) == p.clkfb_div
    assert int(re.search(r"clkout0 divisor: (\d+)", out)[1]) == p.clkop_div
    assert int(re.search(r"\.CLKOP_CPHASE\((\d+)\)", verilog)[1]) == p.clkop_cphase
    assert p.f_out == pytest.approx(float(re.search(r"clkout0 frequency: ([\d.]+)", out)[1]),
                                    abs=1e-3)


@pytest.mark.parametrize("f_out", [24, 30, 36, 25])
def test_ice40_matches_icepll(tmp_path, f_out):
    out = run_tool("yowasp-icepll", ["-i", "12", "-o", str(f_out)], tmp_path)
    p = ice40_pll(12, f_out)
    for name in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE"):
        assert int(re.search(rf"{name}:\s+(\d+)", out)[1]) == getattr(p, name.lower()), name
    achieved = re.findall(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out)[0]
    assert p.f_out == pytest.approx(float(achieved), abs=1e-3)


def test_board_clocks_are_exact_and_fit_the_uart():
    for b in BOARDS.values():
        pll = (ecp5_pll if b.family == "ecp5" else ice40_pll)(b.osc_hz / 1e6, b.clock_hz / 1e6)
        assert pll.f_out * 1e6 == pytest.approx(b.clock_hz, abs=1)
        # 8+ clocks a bit, and the rate within 2 % of the host's: the stop bit is then sampled
        # at most 0.19 bit from its centre
        assert b.divisor >= 8
        assert b.clock_hz / b.divisor == pytest.approx(b.baud, rel=0.02), b.name


def test_inexact_or_impossible_clocks_are_refused():
    with pytest.raises(ValueError, match="not exactly"):
        PllClock("ecp5", None, 25_000_000, 48_000_000)
    with pytest.raises(ValueError, match="16..275"):
        ice40_pll(12, 5)
    with pytest.raises(ValueError, match="unknown FPGA family"):
        PllClock("xc7", None, 25_000_000, 50_000_000)
