"""The report parsers on snippets of real Yosys and nextpnr logs."""

from __future__ import annotations

import pytest
from ohmflow.boards.report import BuildReport, ClockTiming, parse_nextpnr, parse_yosys, summary

# nextpnr-ecp5 0.11 (YoWASP), ULX3S loopback: utilisation after packing, Fmax after placement and
# after routing
ECP5_LOG = """\
Info: Logic utilisation before packing:
Info:     Total LUT4s:        156/83640     0%
Info: Device utilisation:
Info: 	          TRELLIS_IO:      11/    365     3%
Info: 	                DCCA:       1/     56     1%
Info: 	              DP16KD:       3/    208     1%
Info: 	          MULT18X18D:      17/    156    10%
Info: 	             EHXPLLL:       1/      4    25%
Info: 	          TRELLIS_FF:     108/  83640     0%
Info: 	        TRELLIS_COMB:     190/  83640     0%
Info: 	        TRELLIS_RAMW:       2/  10455     0%

Info: Placed 12 cells based on constraints.
Info: Max frequency for clock '$glbnet$clock.clk': 223.56 MHz (PASS at 60.00 MHz)

Info: Routing complete.
Info: Max frequency for clock '$glbnet$clock.clk': 232.50 MHz (PASS at 60.00 MHz)

Info: Program finished normally.
"""

# nextpnr-ice40 0.11 (YoWASP), a design that misses 24 MHz after routing
ICE40_LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:     332/   5280     6%
Info: 	        ICESTORM_RAM:       1/     30     3%
Info: 	               SB_IO:       9/     39    23%
Info: 	        ICESTORM_PLL:       1/      1   100%
Info: 	        ICESTORM_DSP:       0/      8     0%
Info: 	      ICESTORM_SPRAM:       2/      4    50%

Info: Max frequency for clock 'clk': 24.92 MHz (PASS at 24.00 MHz)
Info: Routing complete.
Warning: Max frequency for clock 'clk': 21.55 MHz (FAIL at 24.00 MHz)
"""

# Yosys 0.70 `stat` (local counts, then the hierarchy with submodules)
YOSYS_NEW = """\
2.51. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
      284 wires
       41 cells
       31   $scopeinfo
        1   SB_PLL40_PAD
      294 submodules
       39   SB_CARRY
       15   SB_DFF
        9   SB_DFFE
       65   SB_DFFESR
      138   SB_LUT4

=== design hierarchy ===

        +----------Count including submodules.
        |
       41 top
       41 cells
       31   $scopeinfo
        1   SB_PLL40_PAD
        8   SB_IO
       39   SB_CARRY
       15   SB_DFF
        9   SB_DFFE
       65   SB_DFFESR
       26   SB_DFFSR
      138   SB_LUT4

2.52. Executing CHECK pass (checking for obvious problems).
"""

# Yosys before 0.50: names first, counts second
YOSYS_OLD = """\
2.48. Printing statistics.

=== top ===

   Number of wires:                284
   Number of cells:                 41
     CCU2C                          19
     LUT4                          126
     MULT18X18D                      4
     TRELLIS_FF                    108

2.49. Executing CHECK pass (checking for obvious problems).
"""


def test_nextpnr_ecp5():
    util, timing = parse_nextpnr(ECP5_LOG)
    assert util["TRELLIS_COMB"] == (190, 83640)
    assert util["MULT18X18D"] == (17, 156) and util["DP16KD"] == (3, 208)
    assert "Total LUT4s" not in util  # the pre-packing estimate is not the table
    assert timing == [ClockTiming("$glbnet$clock.clk", 232.50, 60.0, True)]  # post-route


def test_nextpnr_ice40_timing_failure():
    util, timing = parse_nextpnr(ICE40_LOG)
    assert util["ICESTORM_LC"] == (332, 5280) and util["ICESTORM_SPRAM"] == (2, 4)
    assert timing == [ClockTiming("clk", 21.55, 24.0, False)]


def test_yosys_stat_layouts():
    new = parse_yosys(YOSYS_NEW)
    assert new["SB_LUT4"] == 138 and new["SB_DFFSR"] == 26 and new["SB_IO"] == 8
    assert "$scopeinfo" not in new and "top" not in new
    assert parse_yosys(YOSYS_OLD) == {"CCU2C": 19, "LUT4": 126, "MULT18X18D": 4,
                                      "TRELLIS_FF": 108}
    assert parse_yosys("no statistics here") == {}


def make(family, log, yosys, target):
    util, timing = parse_nextpnr(log)
    return BuildReport(board="b", design="soc", config={"name": "c", "tiles": 2, "rows": 8,
                       "cols": 8, "lanes": 1, "clock_hz": int(target * 1e6)}, family=family,
                       target_mhz=target, utilisation=util, timing=timing,
                       cells=parse_yosys(yosys), seconds={"synth": 1.0, "pnr": 2.0})


def test_report_rows_summary_and_json():
    r = make("ice40", ICE40_LOG, YOSYS_NEW, 24.0)
    rows = r.resources()
    assert rows["LC"] == (332, 5280) and rows["DSP"] == (0, 8) and rows["SPRAM"] == (2, 4)
    assert rows["FF"] == (15 + 9 + 65 + 26, 5280)  # SB_DFF* cells of the whole design
    assert r.fmax_mhz == 21.55 and not r.timing_met
    text = summary(r)
    assert "Fmax 21.55 MHz post-route" in text and "target 24 MHz: FAIL" in text
    back = BuildReport.from_json(r.to_json())
    assert back == r

    e = make("ecp5", ECP5_LOG, YOSYS_OLD, 60.0)
    assert e.resources()["LUT4"] == (190, 83640) and e.resources()["DSP"] == (17, 156)
    assert e.timing_met and "PASS" in summary(e)


def test_report_without_routing():
    r = make("ecp5", "Info: Device utilisation:\nERROR: failed to route\n", "", 60.0)
    assert not r.timing_met
    with pytest.raises(ValueError, match="did routing finish"):
        r.fmax_mhz  # noqa: B018
    assert "not reported" in summary(r)
