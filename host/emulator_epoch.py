"""Where one training epoch's time goes on the Verilator emulator: cycles, server and host.

``python -m ohmflow.host.emulator_epoch [--epochs 2] [--profile] [--write-docs]`` trains the
64-32-10 digits MLP (batch 32, lr 0.1, ConstantStep, BL <= 31: the training step of ``ohmflow
train --backend verilator``) on the emulator of the ``default`` config and reports, per epoch of
training steps (the test pass is not in it):

- samples/s (wall clock) and the load average;
- simulated cycles per sample, split into the tiles' own cycles (their ``cycles`` counters: the
  cycles spent executing commands; by phase from the cost ledger), cycles taking request bytes
  (one byte a cycle) and the rest (headers and CRC checks, reply tails, per-frame overhead);
- the server's CPU time per simulated cycle (``/proc/<pid>/stat``, user + system) and its wall
  time waiting in ``poll()`` for the host (the rest it clocks the model, or waits for a core);
- the host process's CPU time per sample; with ``--profile`` one more epoch under ``cProfile``
  (CPU time) splits it into the protocol's codecs, the link, the socket and the periphery;
- the server's CPU time per cycle by kind of cycle: frames that are only received (a 4 KB frame
  with a bad CRC, answered BAD_CRC), FORWARD and UPDATE frames as full as the protocol allows.

Linux only (``/proc``). The first epoch includes the host's JIT warm-up; read the later ones.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.host.device import open_device
from ohmflow.host.trainer import TrainConfig, Trainer, chip_seed, epoch_rng

__all__ = ["cycle_costs", "measure", "main"]

_TICK = os.sysconf("SC_CLK_TCK")

#: host CPU groups of ``--profile``: (name, substrings of the profiled code's file or function)
GROUPS = (
    ("protocol codecs and CRC (emulator/protocol.py)", ("emulator/protocol",)),
    ("socket (select, recv, send)", ("socket_port", "<method 'recv", "<method 'send",
                                     "select.select")),
    ("link (host/link.py)", ("host/link",)),
    ("periphery, layers, ledger", ("host/layers", "host/mlp", "host/ledger", "host/periphery",
                                   "host/analog_tile", "host/mapping", "emulator/")),
)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _train_steps(tr: Trainer, epoch: int) -> int:
    """One epoch's training steps, as `Trainer.run_epoch` runs them; returns the samples."""
    cfg, d = tr.cfg, tr.data
    tr.chips.run([(k, (lambda dev=dev, k=k: dev.configure(seed=chip_seed(cfg.seed, epoch, k))))
                  for k, dev in enumerate(tr.chips)])
    rng = epoch_rng(cfg.seed, epoch)
    perm = rng.permutation(len(d.x_train))
    for s in range(0, len(perm), cfg.batch):
        idx = perm[s : s + cfg.batch]
        tr.analog.train_batch(d.x_train[idx], d.y_train[idx], cfg.lr, rng, tr.ledger)
    return len(perm)


def measure(epochs: int = 2, config: str = "default", profile: bool = False) -> list[dict]:
    """Figures of ``epochs`` epochs of training steps on the Verilator emulator (one dict each),
    plus, with ``profile``, the host CPU split of one more epoch (key ``host_split``)."""
    from ohmflow.sim import verilator_server

    tc = TrainConfig(epochs=epochs, seed=0, float_baseline=False, config=config)
    rows = []
    with open_device("verilator", config) as dev:
        tr = Trainer(tc, dev)
        pid = dev.process.pid
        for e in range(epochs):
            c0 = [t["cycles"] for t in dev.counters()]
            p0 = {k: v["cycles"] for k, v in tr.ledger.by_phase().items()}
            s0, f0 = verilator_server.stats(dev.process), dev.stats["frames"]
            cpu0, h0, t0 = _cpu_s(pid), time.process_time(), time.perf_counter()
            n = _train_steps(tr, e)
            wall, host = time.perf_counter() - t0, time.process_time() - h0
            cpu, s1 = _cpu_s(pid) - cpu0, verilator_server.stats(dev.process)
            tile = sum(t["cycles"] for t in dev.counters()) - sum(c0)
            cyc, rx = s1["cycles"] - s0["cycles"], s1["rx"] - s0["rx"]
            busy = s1["busy_s"] - s0["busy_s"]
            rows.append({
                "epoch": e + 1, "samples": n, "samples_per_s": n / wall,
                "load": os.getloadavg()[0],
                "cycles_per_sample": cyc / n, "tile_cycles_per_sample": tile / n,
                "tile_cycles_by_phase": {k: (v["cycles"] - p0[k]) / n
                                         for k, v in tr.ledger.by_phase().items()},
                "rx_bytes_per_sample": rx / n, "tx_bytes_per_sample": (s1["tx"] - s0["tx"]) / n,
                "other_cycles_per_sample": (cyc - tile - rx) / n,
                "frames_per_sample": (dev.stats["frames"] - f0) / n,
                "server_ns_per_cycle": 1e9 * cpu / cyc, "server_cpu_s": cpu,
                "server_wait_s": (s1["wall_s"] - s0["wall_s"]) - busy, "wall_s": wall,
                "host_us_per_sample": 1e6 * host / n,
            })
        if profile:
            prof = cProfile.Profile(time.process_time)  # CPU time, not waits
            h0 = time.process_time()
            prof.enable()
            n = _train_steps(tr, epochs)
            prof.disable()
            host = time.process_time() - h0
            rows.append({"host_split": _split(prof, n), "host_us_per_sample": 1e6 * host / n})
    return rows


def _split(prof: cProfile.Profile, samples: int) -> dict[str, float]:
    """Own (tottime) CPU seconds of the profiled calls by `GROUPS`, in µs per sample."""
    out = {name: 0.0 for name, _ in GROUPS}
    out["other (numpy, builtins)"] = 0.0
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in pstats.Stats(prof).stats.items():
        where = f"{file}:{func}".replace(os.sep, "/")
        name = next((g for g, keys in GROUPS if any(k in where for k in keys)),
                    "other (numpy, builtins)")
        out[name] += tt
    return {k: 1e6 * v / samples for k, v in out.items()}


def cycle_costs(config: str = "default", rounds: int = 3, frames: int = 10,
                executables: list[str] | None = None) -> list[dict]:
    """Server CPU time per simulated cycle of three kinds of frames, in alternating rounds of
    ``frames`` frames each: received only (a full payload with a bad CRC), FORWARD and UPDATE
    frames as full as the protocol allows (`ohmflow.sim.workload.scenarios`).

    ``executables``: built emulators of the config to compare (e.g. of earlier RTL, from the
    build cache), all running at once and measured in turn in every round; default the build of
    the current sources."""
    import serial
    from ohmflow.emulator.config import get_config
    from ohmflow.sim import verilator_server

    cfg = get_config(config)
    exes = [Path(e) for e in executables] if executables else [verilator_server.build(cfg)]
    for exe in exes:
        if not exe.is_file():
            raise ValueError(f"{exe} is not a built emulator (an ohmflow-emulator executable)")
    servers = []
    try:
        for exe in exes:
            proc, port_no = verilator_server.start(exe)
            servers.append((exe, proc, serial.serial_for_url(f"socket://127.0.0.1:{port_no}",
                                                             timeout=1)))
        kinds = _cost_kinds(cfg)
        sums = {(str(exe), label): [0, 0.0] for exe, _, _ in servers for label, _, _ in kinds}
        seq = 0
        for _ in range(rounds):
            for exe, proc, port in servers:
                for label, make, status in kinds:
                    s0, c0 = verilator_server.stats(proc), _cpu_s(proc.pid)
                    for _ in range(frames):
                        seq = (seq + 1) & 0xFF
                        _exchange(port, make(seq), status)
                    s1, c1 = verilator_server.stats(proc), _cpu_s(proc.pid)
                    sums[(str(exe), label)][0] += s1["cycles"] - s0["cycles"]
                    sums[(str(exe), label)][1] += c1 - c0
    finally:
        for _, proc, port in servers:
            port.close()
            verilator_server.stop(proc)
    return [{"executable": e, "kind": k, "cycles_per_frame": c / (rounds * frames),
             "ns_per_cycle": 1e9 * s / c} for (e, k), (c, s) in sums.items()]


def _cost_kinds(cfg) -> list[tuple[str, Callable[[int], bytes], int]]:
    """(label, frame of a seq, expected reply status) of `cycle_costs`' kinds of frames."""
    from ohmflow.sim.workload import scenarios

    fwd, upd = scenarios(cfg, np.random.default_rng(0))[2:4]

    def bad_crc(seq: int) -> bytes:
        frame = bytearray(P.encode_frame(P.command("INFO").opcode, seq,
                                         bytes(P.TABLE.max_payload)))
        frame[-1] ^= 0xFF
        return bytes(frame)

    return [("received only (bad CRC)", bad_crc, P.ST["BAD_CRC"]),
            (fwd[0], fwd[2], P.ST["OK"]), (upd[0], upd[2], P.ST["OK"])]


def _exchange(port, frame: bytes, status: int, timeout: float = 120.0) -> None:
    """Send a frame and wait for its reply, which must carry ``status``."""
    port.write(frame)
    parser, deadline = P.FrameParser(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = parser.feed(port.read(max(1, port.in_waiting)))
        if got:
            if not isinstance(got[0], P.Frame) or got[0].payload[:1] != bytes((status,)):
                raise RuntimeError(f"unexpected reply {got[0]} (status {status} expected)")
            return
    raise TimeoutError(f"no reply within {timeout} s")


def report(rows: list[dict], costs: list[dict]) -> str:
    """The figures as markdown: one table row per epoch, the host split and the cycle costs."""
    out = ["| epoch | samples/s | load | cycles / sample | tile (forward / backward / update) | "
           "request bytes | other | server CPU ns / cycle | server waits for host | "
           "host CPU µs / sample |", "|---|---|---|---|---|---|---|---|---|---|"] if rows else []
    split = None
    for r in rows:
        if "host_split" in r:
            split = r
            continue
        ph = r["tile_cycles_by_phase"]
        out.append(
            f"| {r['epoch']} | {r['samples_per_s']:,.0f} | {r['load']:.2f} | "
            f"{r['cycles_per_sample']:,.0f} | {r['tile_cycles_per_sample']:,.0f} "
            f"({ph['forward']:,.0f} / {ph['backward']:,.0f} / {ph['update']:,.0f}) | "
            f"{r['rx_bytes_per_sample']:,.0f} | {r['other_cycles_per_sample']:,.0f} | "
            f"{r['server_ns_per_cycle']:,.0f} | "
            f"{100 * r['server_wait_s'] / r['wall_s']:.1f} % of {r['wall_s']:.2f} s | "
            f"{r['host_us_per_sample']:,.0f} |")
    if rows:
        last = rows[-2] if split else rows[-1]
        out.append(f"\nReply bytes {last['tx_bytes_per_sample']:,.0f} and frames "
                   f"{last['frames_per_sample']:.2f} per sample.")
    if split:
        us = split["host_us_per_sample"]
        out.append(f"\nHost CPU per sample under cProfile (CPU time, {us:,.0f} µs with the "
                   "profiler's overhead): " + "; ".join(
                       f"{k} {v:,.0f} µs" for k, v in split["host_split"].items()) + ".")
    if costs:
        several = len({c["executable"] for c in costs}) > 1
        out += [""] if out else []
        out += [("| emulator " if several else "") + "| frames | cycles / frame | "
                "server CPU ns / cycle |", ("|---" if several else "") + "|---|---|---|"]
        out += [(f"| {Path(c['executable']).parent.name} " if several else "")
                + f"| {c['kind']} | {c['cycles_per_frame']:,.0f} | {c['ns_per_cycle']:,.0f} |"
                for c in costs]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.host.emulator_epoch",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs of training steps (default 2)")
    ap.add_argument("--config", default="default", help="chip config (preset or .toml)")
    ap.add_argument("--profile", action="store_true",
                    help="one more epoch under cProfile: the host's CPU split")
    ap.add_argument("--no-costs", action="store_true",
                    help="skip the CPU cost per cycle of received, FORWARD and UPDATE frames")
    ap.add_argument("--compare", nargs="+", metavar="EXE",
                    help="only the CPU cost per cycle of received, FORWARD and UPDATE frames, "
                         "on these built emulators in turn (e.g. builds of earlier RTL)")
    ap.add_argument("--write-docs", action="store_true",
                    help="also write the figures into docs/benchmarks.md (section emulator-epoch)")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    load = os.getloadavg()[0]
    if args.compare:
        print(f"load average {load:.2f} at the start")
        print(report([], cycle_costs(args.config, executables=args.compare)))
        return 0
    rows = measure(args.epochs, args.config, args.profile)
    costs = [] if args.no_costs else cycle_costs(args.config)
    text = report(rows, costs)
    print(f"load average {load:.2f} at the start\n{text}")
    if args.write_docs:
        from ohmflow.host.benchdoc import write_section

        cmd = (f"python -m ohmflow.host.emulator_epoch --epochs {args.epochs} --config "
               f"{args.config}" + (" --profile" if args.profile else "") + " --write-docs")
        body = ("Training steps of the 64-32-10 digits MLP (batch 32, lr 0.1, ConstantStep, "
                "BL <= 31, seed 0) on the Verilator emulator, one row per epoch of 1,437 "
                "samples (the first includes the host's warm-up). *Tile*: the tiles' `cycles` "
                "counters by ledger phase; *request bytes*: cycles taking a byte; *other*: the "
                "rest (headers, CRC checks, reply tails). *Server waits for host*: its wall "
                "time in `poll()` with the model idle. CPU times from `/proc` (server) and "
                f"`time.process_time` (host). Load average {load:.2f} when the run started (2 "
                "cores, shared: other work inflates the CPU time per cycle). The module "
                "docstring of `ohmflow.host.emulator_epoch` defines every column; "
                "docs/emulator.md, section Speed, reads them.\n\n" + text)
        write_section("emulator-epoch", "Verilator emulator: one training epoch broken down",
                      body, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
