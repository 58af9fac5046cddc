"""``ohmflow bench``: the speeds that matter, measured side by side in one run.

- simulated cycles/s of the SoC in the Amaranth simulator and in the Verilator emulator server,
  both executing full FORWARD frames;
- training samples/s of the 64-32-10 digits MLP on the twin and on the Verilator emulator (the
  whole `ohmflow train` step: host periphery, link and device);
- link efficiency (payload bytes over wire bytes) of batched FORWARD frames of 64-element vectors;
- the twin's training samples/s over aihwkit's, per device model (`ohmflow.host.bench_twin`).

Each figure is repeated (``--repeats``) and reported as min and median; with ``--write-docs``
the table also goes to docs/benchmarks.md (section ``bench``) with the command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig, get_config


def amaranth_cycles_per_s(cfg: ChipConfig, cycles: int = 3000) -> float:
    """Cycles/s of the SoC (of the config's engine) in Amaranth's simulator, fed FORWARD frames
    on its byte stream."""
    from amaranth.sim import Simulator
    from ohmflow.hdl.soc import make_soc

    dut = make_soc(cfg)
    rng = np.random.default_rng(0)
    b = 4
    payload = P.encode_payload(P.command("FORWARD").request,
                               {"tile": 0, "b": b, "n": cfg.rows,
                                "x": rng.integers(-63, 64, b * cfg.rows)}, cfg)
    frame = P.encode_frame(P.command("FORWARD").opcode, 1, payload)
    done = {}

    async def feed(ctx):
        k = 0
        ctx.set(dut.tx.ready, 1)
        t0 = time.perf_counter()
        for _ in range(cycles):
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, frame[k % len(frame)])
            await ctx.tick()
            if ctx.get(dut.rx.ready):
                k += 1
        done["s"] = time.perf_counter() - t0

    sim = Simulator(dut)
    sim.add_clock(1 / cfg.clock_hz)
    sim.add_testbench(feed)
    sim.run()
    return cycles / done["s"]


def verilator_cycles_per_s(cfg: ChipConfig, seconds: float) -> float:
    """Cycles/s of the Verilator emulator server running full FORWARD frames."""
    from ohmflow.host import emulator_bench

    rows = emulator_bench.bench(cfg, seconds)
    return max(r["cycles_per_s"] for r in rows if r["scenario"].startswith("FORWARD"))


def training_samples_per_s(backend: str, cfg: ChipConfig, epochs: int) -> list[float]:
    """Analog training samples/s of the digits MLP, one figure per epoch."""
    from ohmflow.host.device import open_device
    from ohmflow.host.trainer import TrainConfig, Trainer

    tc = TrainConfig(epochs=epochs, seed=0, float_baseline=False, config=cfg.name)
    with open_device(backend, cfg) as dev:
        t = Trainer(tc, dev)
        return [t.run_epoch()["analog_samples_per_s"] for _ in range(epochs)]


def link_efficiency(cfg: ChipConfig, batch: int, n: int = 64) -> float:
    """Payload bytes (DAC and ADC codes) over wire bytes of one FORWARD exchange of ``batch``."""
    cmd = P.command("FORWARD")
    req = P.payload_size(cmd.request, {"b": batch, "n": n}, cfg)
    rep = 1 + P.payload_size(cmd.reply, {"b": batch, "m": n}, cfg)  # status byte first
    wire = req + rep + 2 * (P.HEADER_SIZE + P.CRC_SIZE)
    codes = batch * n * (P.kind_dtype("dac", cfg).itemsize + P.kind_dtype("adc", cfg).itemsize)
    return codes / wire


def _mm(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="default", help="chip config (preset or .toml)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of every figure (default 3)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="seconds per Verilator scenario (default 2)")
    p.add_argument("--write-docs", action="store_true",
                   help="also write the table into docs/benchmarks.md (default: print only)")


def run(args) -> int:
    cfg = get_config(args.config)
    load = os.getloadavg()[0]
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    rows: list[tuple[str, str, float, float]] = []

    def record(name: str, unit: str, values: list[float]) -> None:
        lo, med = _mm(values)
        rows.append((name, unit, lo, med))
        print(f"{name}: median {med:,.1f} {unit} (min {lo:,.1f}, {len(values)} runs)",
              flush=True)

    record("SoC, Amaranth simulator", "cycles/s",
           [amaranth_cycles_per_s(cfg) for _ in range(args.repeats)])
    record("SoC, Verilator emulator server", "cycles/s",
           [verilator_cycles_per_s(cfg, args.seconds) for _ in range(args.repeats)])
    record("training, twin", "samples/s", training_samples_per_s("twin", cfg, args.repeats))
    if cfg.name == "default":  # the twin beside aihwkit, every device model (bench_twin)
        from ohmflow.host import bench_twin

        for line in bench_twin.ratio_lines(bench_twin.measure(repeats=args.repeats, chip=False)):
            print(line, flush=True)
    record("training, Verilator emulator", "samples/s",
           training_samples_per_s("verilator", cfg, args.repeats))
    for b in (1, 8, 31):
        e = link_efficiency(cfg, b)
        rows.append((f"link efficiency, FORWARD of {b} x 64", "payload/wire", e, e))
        print(f"link efficiency, FORWARD batch {b} of 64-element vectors: {e:.1%}")
    if args.write_docs:
        from ohmflow.host.benchdoc import write_section

        table = ["| figure | unit | median | min |", "|---|---|---|---|"]
        for name, unit, lo, med in rows:
            fmt = (lambda v: f"{v:.1%}") if unit == "payload/wire" else (lambda v: f"{v:,.0f}")
            table.append(f"| {name} | {unit} | {fmt(med)} | {fmt(lo)} |")
        body = (f"Config `{cfg.name}`; {args.repeats} runs of each figure. Training: the "
                "64-32-10 digits MLP, batch 32, lr 0.1, ConstantStep devices, one epoch per run, "
                "the whole training step (host periphery, link, device). Amaranth and Verilator "
                "both execute FORWARD frames fed on the SoC's byte stream. Load average "
                f"{load:.2f} when the run started (2 cores shared with other work: a loaded "
                "machine lowers every figure; docs/emulator.md, section Speed).\n\n"
                + "\n".join(table))
        key = "bench" if cfg.name == "default" else f"bench-{cfg.name}"
        write_section(key, "ohmflow bench" + ("" if key == "bench" else f" ({cfg.name})"), body,
                      f"ohmflow bench --config {cfg.name} --repeats {args.repeats} --write-docs")
    return 0
