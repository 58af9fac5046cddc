"""``ohmflow sim``: the SoC's cocotb testbenches (`ohmflow.sim.cocotb_soc`) under Verilator, for
a chosen chip config and seed, with a pass/fail line per testbench and waveforms on request.

Each testbench drives random (or malformed, or back-to-back, or maximal) frames into the SoC and
compares every reply byte with the reference device, `CommandExecutor(Twin(cfg))`. Builds are
cached (`ohmflow.sim.runner`); ``--waves`` builds with tracing and leaves ``dump.vcd`` (open it in
GTKWave or Surfer) in each testbench's folder under ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

MODULE = "ohmflow.sim.cocotb_soc"
#: testbench -> default frame count (those of tests/soc/test_cocotb_soc.py)
TESTBENCHES = {"random_commands": 150, "malformed_frames": 120, "back_to_back_no_stalls": 90,
               "large_frames": 6, "uart_link": 10}
#: byte timeout of the simulation builds, in cycles (the protocol's 50 ms would be 2.5 M)
TIMEOUT = 200
#: UART clocks per bit of the UART build
DIVISOR = 4
DEFAULT_SEED = 20261128


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="tiny", help="chip config of the tile engine: a preset "
                   "(tiny, default, ulx3s) or a .toml file (default: tiny)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"random seed of the testbenches (default {DEFAULT_SEED})")
    p.add_argument("--testbench", action="append", metavar="NAME",
                   help=f"run only this testbench (repeatable): {', '.join(TESTBENCHES)}")
    p.add_argument("--frames", type=int, help="frames per testbench (default: each one's own)")
    p.add_argument("--waves", action="store_true",
                   help="trace the simulation: dump.vcd in each testbench's folder")
    p.add_argument("--out", help="output folder (default sim-runs/<config>-seed<seed>)")


def _check(args):
    from ohmflow.emulator.config import get_config

    cfg = get_config(args.config)
    if cfg.engine != "tile":
        raise ValueError(f"config {cfg.name!r} runs the {cfg.engine} engine, whose RTL is tested "
                         "through the emulator (pytest tests/soc/test_core_soc.py); ohmflow sim "
                         "runs the tile engine's testbenches: use --config tiny, default or ulx3s")
    names = args.testbench or list(TESTBENCHES)
    unknown = [n for n in names if n not in TESTBENCHES]
    if unknown:
        raise ValueError(f"unknown testbench(es) {unknown}; known: {', '.join(TESTBENCHES)}")
    if args.seed < 0 or args.seed >= 2**32:
        raise ValueError(f"--seed must be in [0, 2**32), got {args.seed}")
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    return cfg, list(dict.fromkeys(names))


def _verilog(cfg, uart: bool) -> str:
    from amaranth.back import verilog
    from ohmflow.hdl.soc import SoC

    if uart:
        soc = SoC(cfg, byte_timeout=TIMEOUT * DIVISOR, uart_divisor=DIVISOR)
    else:
        soc = SoC(cfg, byte_timeout=TIMEOUT)
    return verilog.convert(soc, name="top", emit_src=False)


def run(args) -> int:
    from ohmflow.sim import runner

    cfg, names = _check(args)
    out = Path(args.out or Path("sim-runs") / f"{cfg.name}-seed{args.seed}")
    print(f"ohmflow sim: {len(names)} cocotb testbench(es) of the {cfg.name} SoC under "
          f"Verilator, seed {args.seed}, results in {out}" + (", with waveforms" if args.waves
                                                               else ""))
    from ohmflow.emulator.config import PRESETS

    # the testbench runs in its own folder: a config file is named by its absolute path
    config_ref = args.config if args.config in PRESETS else str(Path(args.config).resolve())
    tops: dict[bool, str] = {}
    results = []
    for name in names:
        uart = name == "uart_link"
        if uart not in tops:
            tops[uart] = _verilog(cfg, uart)
        env = {"OHMFLOW_CONFIG": config_ref, "OHMFLOW_TIMEOUT":
               str(TIMEOUT * DIVISOR if uart else TIMEOUT),
               "OHMFLOW_FRAMES": str(args.frames or TESTBENCHES[name])}
        if uart:
            env["OHMFLOW_UART"] = str(DIVISOR)
        folder = out / name
        t0 = time.monotonic()
        try:
            tests, _ = runner.run(tops[uart], MODULE, folder, testcase=name, seed=args.seed,
                                  extra_env=env, waves=args.waves)
            verdict, detail = "PASS", ""
        except AssertionError as e:
            verdict, detail = "FAIL", str(e).splitlines()[0]
        secs = time.monotonic() - t0
        waves = folder / "dump.vcd"
        line = f"{verdict}  {name:<24} {env['OHMFLOW_FRAMES']:>4} frames  {secs:6.1f} s"
        if detail:
            line += f"  {detail} (log: {folder / 'sim.log'})"
        if args.waves and waves.exists():
            line += f"  waves: {waves}"
        print(line, flush=True)
        results.append(verdict)
    failed = results.count("FAIL")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
