"""Board builds with the YoWASP toolchain: reports against the targets, caching, the CLI.

Slow (synthesis, place and route): deselect with ``-m "not slow"``. Builds are cached under
``$OHMFLOW_CACHE/boards`` keyed on the generated design, so an unchanged design is not rebuilt.
"""

from __future__ import annotations

import io
import time

import pytest
from ohmflow.boards import BOARDS, board_config
from ohmflow.boards.build import build, main

pytestmark = pytest.mark.slow

#: post-route Fmax each board must reach (MHz): the clock its PLL makes
TARGETS = {"ulx3s-85f": 60.0, "icebreaker": 24.0}


@pytest.fixture(scope="module", params=sorted(BOARDS))
def built(request):
    name = request.param
    log = io.StringIO()
    t0 = time.monotonic()
    report = build(name, design="loopback", stream=log)
    return name, report, time.monotonic() - t0


def test_build_meets_targets(built):
    name, r, seconds = built
    b = BOARDS[name]
    assert r.config == board_config(b).to_dict()
    assert r.target_mhz == TARGETS[name] == b.clock_hz / 1e6
    assert r.timing and r.fmax_mhz >= TARGETS[name], r.timing
    rows = r.resources()
    for label, cap in b.capacity:
        used, total = rows[label]
        assert total == cap and 0 <= used <= cap, (label, used, total)
    assert rows["PLL"][0] == 1
    print(f"\n{name}: {r.fmax_mhz:.1f} MHz, {seconds:.1f} s ({r.seconds})")


def test_build_outputs_and_cache(built):
    name, r, _ = built
    from pathlib import Path

    folder = Path(r.folder)
    b = BOARDS[name]
    assert (folder / b.bitstream).stat().st_size > 10_000
    for log in ("top.rpt", "top.tim", "build.log", "report.txt", "report.json"):
        assert (folder / log).stat().st_size > 0, log
    assert "Program finished normally" in (folder / "top.tim").read_text()
    out = io.StringIO()
    t0 = time.monotonic()
    again = build(name, design="loopback", stream=out)
    assert "up to date" in out.getvalue() and time.monotonic() - t0 < 30
    assert again == r


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
