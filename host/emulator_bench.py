"""Speed of the Verilator emulator server: simulated cycles/s and commands/s from Python.

``python -m ohmflow.host.emulator_bench [--config default ...] [--seconds 3]`` builds (or finds) the
emulator of each config, starts it, and times stop-and-wait command streams through pyserial's
``socket://``: INFO round trips (link latency), FORWARD of one vector, FORWARD and UPDATE frames
as full as the protocol allows. Cycles per second come from the server's own counters (cycles
over the seconds it was not sleeping idle). The figures go to the ``emulator`` section of
docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import serial
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.sim import verilator_server
from ohmflow.sim.workload import call, scenarios

__all__ = ["bench", "main"]


def bench(cfg: ChipConfig | str = "default", seconds: float = 3.0,
          poll: int = verilator_server.DEFAULT_POLL) -> list[dict]:
    """Run every scenario for about ``seconds``; one dict of figures per scenario."""
    cfg = get_config(cfg)
    exe = verilator_server.build(cfg)
    proc, port_no = verilator_server.start(exe, poll=poll)
    rows = []
    try:
        port = serial.serial_for_url(f"socket://127.0.0.1:{port_no}", timeout=1)
        rng = np.random.default_rng(0)
        seq = 0
        for label, items, make in scenarios(cfg, rng):
            seq = (seq + 1) & 0xFF
            call(port, make(seq))  # warm up
            s0, t0, n = verilator_server.stats(proc), time.perf_counter(), 0
            while n < 3 or time.perf_counter() - t0 < seconds:
                seq = (seq + 1) & 0xFF
                call(port, make(seq))
                n += 1
            wall = time.perf_counter() - t0
            s1 = verilator_server.stats(proc)
            cycles, busy = s1["cycles"] - s0["cycles"], s1["busy_s"] - s0["busy_s"]
            rows.append({"config": cfg.name, "scenario": label, "commands": n,
                         "commands_per_s": n / wall, "items_per_s": n * items / wall,
                         "cycles_per_command": cycles / n,
                         "cycles_per_s": cycles / busy if busy > 0 else 0.0})
        port.close()
    finally:
        verilator_server.stop(proc)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| config | scenario | commands/s | vectors or samples/s | cycles/command | "
           "simulated cycles/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        items = f"{r['items_per_s']:,.0f}" if r["items_per_s"] else "–"
        out.append(f"| {r['config']} | {r['scenario']} | {r['commands_per_s']:,.1f} | {items} | "
                   f"{r['cycles_per_command']:,.0f} | {r['cycles_per_s'] / 1e6:.2f} M |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.host.emulator_bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", help="preset or .toml (repeatable)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per scenario")
    ap.add_argument("--poll", type=int, default=verilator_server.DEFAULT_POLL)
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    rows = []
    load = os.getloadavg()[0]
    for name in args.config or ["default"]:
        rows += bench(name, args.seconds, args.poll)
    text = table(rows)
    print(text)
    if not args.no_doc:
        from ohmflow.host.benchdoc import write_section

        cmd = "python -m ohmflow.host.emulator_bench" + "".join(
            f" --config {c}" for c in args.config or [])
        body = (
            "The Verilator emulator server (C++ harness, `sim/harness.cpp`) driven from Python "
            "through pyserial `socket://`, one command at a time (stop and wait). "
            "*Simulated cycles/s* is the server's cycle counter over the time it was not "
            "sleeping idle (it includes the socket work while a command runs); "
            f"*commands/s* is end to end. Poll interval {args.poll} cycles; load average "
            f"{load:.2f} when the run started (the machine is shared: other work slows "
            "it). What bounds the simulated cycles/s: docs/emulator.md, section Speed.\n\n"
            + text)
        write_section("emulator", "Verilator emulator server", body, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
