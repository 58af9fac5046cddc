"""Board builds with the YoWASP toolchain: reports against the targets, caching, the CLI.

Slow (synthesis, place and route): deselect with ``-m "not slow"``. Builds are cached under
``$OHMFLOW_CACHE/boards``, keyed on the generated design, so an unchanged design is not rebuilt
(failed builds included). The link-test design (a UART echo) builds for both boards in about
10 s each. Each board's SoC builds with the board's config: the iCEBreaker's (the rv32 engine)
in about a minute, the ULX3S's (2 lanes) in about 16 minutes. The emulator's 16-lane
``default`` config no longer fits the ULX3S (docs/boards.md: its multipliers), so it is not
built here.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from ohmflow.boards import BOARDS, board_config
from ohmflow.boards.build import build, cached_report, main

pytestmark = pytest.mark.slow

#: the post-route Fmax each board's design must reach (MHz): its PLL clock
TARGETS = {"ulx3s-85f": 50.0, "icebreaker": 24.0}


def test_targets_are_the_board_clocks():
    assert TARGETS["ulx3s-85f"] >= 50
    for name, mhz in TARGETS.items():
        assert BOARDS[name].clock_hz == pytest.approx(mhz * 1e6, abs=1)


def check_fits(name: str, report) -> None:
    b = BOARDS[name]
    rows = report.resources()
    for label, cap in b.capacity:
        used, total = rows[label]
        assert total == cap and 0 <= used <= cap, (label, used, total)
    assert rows["PLL"][0] == 1
    folder = Path(report.folder)
    assert (folder / b.bitstream).stat().st_size > 10_000
    for log in ("top.rpt", "top.tim", "build.log", "report.txt", "report.json"):
        assert (folder / log).stat().st_size > 0, log


# ----- the link-test design: the whole flow, on both boards -----
@pytest.fixture(scope="module", params=sorted(BOARDS))
def loopback(request):
    name = request.param
    t0 = time.monotonic()
    report = build(name, design="loopback", stream=io.StringIO())
    return name, report, time.monotonic() - t0


def test_loopback_fits_and_meets_the_board_clock(loopback):
    name, r, seconds = loopback
    assert r.config == board_config(name).to_dict()
    assert r.target_mhz == TARGETS[name]
    check_fits(name, r)
    assert r.timing and r.timing_met and r.fmax_mhz >= TARGETS[name], r.timing
    print(f"\n{name} loopback: {r.fmax_mhz:.1f} MHz, {seconds:.1f} s ({r.seconds})")


def test_an_unchanged_design_is_not_rebuilt(loopback):
    name, r, _ = loopback
    out = io.StringIO()
    t0 = time.monotonic()
    again = build(name, design="loopback", stream=out)
    assert "up to date" in out.getvalue() and time.monotonic() - t0 < 30
    assert again == r == cached_report(name, design="loopback")
    assert "Program finished normally" in (Path(r.folder) / "top.tim").read_text()


def test_cli_builds_and_explains_a_missing_programmer(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "ice"
    args = ["--board", "icebreaker", "--design", "loopback", "--build-dir", str(folder)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Fmax" in out and "PASS" in out and str(folder / "top.bin") in out
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([*args, "--program"]) == 2
    err = capsys.readouterr().err
    assert "iceprog is not on PATH" in err and "fpga-icestorm" in err


def test_registered_in_the_ohmflow_cli(tmp_path, monkeypatch, capsys):
    """The one line that registers ``ohmflow build`` in ``host/cli.py``'s COMMANDS works."""
    from ohmflow.host import cli

    monkeypatch.setitem(cli.COMMANDS, "build", ("ohmflow.boards.build", "build for a board"))
    folder = tmp_path / "ulx"
    assert cli.main(["build", "--board", "ulx3s-85f", "--design", "loopback", "--build-dir",
                     str(folder)]) == 0
    assert "Fmax" in capsys.readouterr().out and (folder / "top.bit").exists()
    assert cli.main(["build", "--board", "ulx3s-85f", "--clock-mhz", "48"]) == 2
    assert "not exactly 48" in capsys.readouterr().err


def test_the_plan_names_no_folder_of_the_checkout():
    """The build key, and so the cache and the placement, are the same from any clone: the
    RTLIL carries no source locations (Amaranth writes absolute paths into ``src`` attributes
    unless told not to)."""
    from ohmflow.boards.build import _plan

    b = BOARDS["icebreaker"]
    plan, key, _ = _plan(b, board_config(b.name), "loopback", None)
    root = str(Path(__file__).resolve().parents[2])
    for name, text in plan.files.items():
        text = text.decode() if isinstance(text, bytes) else text
        assert root not in text, name
        assert ".py:" not in text, name
    assert _plan(b, board_config(b.name), "loopback", None)[1] == key


# ----- the SoC -----
def test_soc_fits_the_icebreaker_and_meets_its_clock():
    """The UP5K carries the rv32 engine (the tile datapath needs about 3.4 times its logic
    cells): it places, routes and packs, and meets the 24 MHz clock."""
    r = build("icebreaker", stream=None)
    assert r.config == board_config("icebreaker").to_dict()
    assert r.config["engine"] == "rv32"
    check_fits("icebreaker", r)
    assert r.resources()["SPRAM"][0] == 4  # the device memory and the frame buffers
    assert r.target_mhz == TARGETS["icebreaker"]
    assert r.timing_met and r.fmax_mhz >= TARGETS["icebreaker"], r.timing


def test_soc_fits_the_ulx3s_and_meets_its_clock():
    """The board's config (4 tiles of 64x64, 2 lanes) through the whole ECP5 flow, in about
    16 minutes, and post-route Fmax at or above the 50 MHz clock."""
    r = build("ulx3s-85f", stream=None)
    assert r.config == board_config("ulx3s-85f").to_dict()
    check_fits("ulx3s-85f", r)
    assert r.target_mhz == pytest.approx(TARGETS["ulx3s-85f"])
    assert r.timing_met and r.fmax_mhz >= TARGETS["ulx3s-85f"], r.timing
