"""Where one training epoch's time goes on the Verilator emulator: cycles, server and host.

``python -m ohmflow.host.emulator_epoch [--epochs 2] [--profile]`` trains the 64-32-10 digits MLP
(batch 32, lr 0.1, ConstantStep, BL <= 31, the training step of ``ohmflow train --backend
verilator``) on the emulator of the ``default`` config and prints, per epoch of training steps
(the test pass is not in it):

- samples/s (wall clock) and the load average;
- simulated cycles per sample, split into the tiles' own cycles (their ``cycles`` counters: the
  cycles spent executing commands), cycles taking request bytes (one byte a cycle) and the rest
  (headers and CRC checks, reply tails, the gates' tails);
- the server's CPU time per simulated cycle (``/proc/<pid>/stat``, user + system) and its wall
  time busy (clocking the model) against waiting in ``poll()`` for the host;
- the host process's CPU time per sample; with ``--profile`` one more epoch under ``cProfile``
  splits it into the host's periphery, the protocol's framing and CRC, and the socket.

Linux only (``/proc``). The first epoch includes the JIT warm-up of the host; read the second.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import time

from ohmflow.host.device import open_device
from ohmflow.host.trainer import TrainConfig, Trainer, epoch_rng, posting

__all__ = ["measure", "main"]

_TICK = os.sysconf("SC_CLK_TCK")

#: host CPU groups of ``--profile``: (name, substrings of the profiled code's file or function)
GROUPS = (
    ("protocol: framing, CRC, payload codecs", ("emulator/protocol",)),
    ("socket: select, recv, send", ("socket_port", "<method 'recv", "<method 'send",
                                    "select.select", "<method 'poll")),
    ("link: Device over the frames", ("host/link",)),
    ("periphery: layers, MLP, ledger, codes", ("host/layers", "host/mlp", "host/ledger",
                                               "host/periphery", "host/analog_tile",
                                               "host/mapping", "emulator/")),
)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _train_steps(tr: Trainer, epoch: int, post: bool = True) -> int:
    """One epoch's training steps, as `Trainer.run_epoch` runs them (``post``: UPDATE frames
    and counter reads posted, `posting`); returns the samples."""
    cfg, d = tr.cfg, tr.data
    rng = epoch_rng(cfg.seed, epoch)
    perm = rng.permutation(len(d.x_train))
    with posting(tr.chips) if post else contextlib.nullcontext():
        for s in range(0, len(perm), cfg.batch):
            idx = perm[s : s + cfg.batch]
            tr.analog.train_batch(d.x_train[idx], d.y_train[idx], cfg.lr, rng, tr.ledger)
    return len(perm)


def measure(epochs: int = 2, config: str = "default", profile: bool = False,
            post: bool = True) -> list[dict]:
    """Figures of ``epochs`` epochs of training steps on the Verilator emulator (one dict each),
    plus, with ``profile``, the host CPU split of one more epoch (key ``host_split``).
    ``post``: as `Trainer.run_epoch`, UPDATE frames and counter reads posted (`posting`)."""
    from ohmflow.sim import verilator_server

    tc = TrainConfig(epochs=epochs, seed=0, float_baseline=False, config=config)
    rows = []
    with open_device("verilator", config) as dev:
        tr = Trainer(tc, dev)
        pid = dev.process.pid
        for e in range(epochs):
            c0 = [t["cycles"] for t in dev.counters()]
            p0 = {k: v.get("cycles", 0) for k, v in tr.ledger.by_phase().items()}
            s0, f0 = verilator_server.stats(dev.process), dict(dev.stats)
            cpu0, h0, t0 = _cpu_s(pid), time.process_time(), time.perf_counter()
            n = _train_steps(tr, e, post)
            wall, host = time.perf_counter() - t0, time.process_time() - h0
            cpu, s1 = _cpu_s(pid) - cpu0, verilator_server.stats(dev.process)
            tile = sum(t["cycles"] for t in dev.counters()) - sum(c0)
            cyc = s1["cycles"] - s0["cycles"]
            rx = s1["rx"] - s0["rx"]
            phases = {k: (v.get("cycles", 0) - p0.get(k, 0)) / n
                      for k, v in tr.ledger.by_phase().items()}
            rows.append({
                "epoch": e + 1, "samples": n, "samples_per_s": n / wall,
                "load": os.getloadavg()[0],
                "cycles_per_sample": cyc / n, "tile_cycles_per_sample": tile / n,
                "tile_cycles_by_phase": phases,
                "rx_bytes_per_sample": rx / n, "tx_bytes_per_sample": (s1["tx"] - s0["tx"]) / n,
                "other_cycles_per_sample": (cyc - tile - rx) / n,
                "frames_per_sample": (dev.stats["frames"] - f0["frames"]) / n,
                "server_ns_per_cycle": 1e9 * cpu / cyc,
                "server_busy_s": s1["busy_s"] - s0["busy_s"],
                "server_wall_s": s1["wall_s"] - s0["wall_s"], "server_cpu_s": cpu,
                "cycles_per_busy_s": cyc / (s1["busy_s"] - s0["busy_s"]),
                "host_us_per_sample": 1e6 * host / n, "wall_s": wall,
            })
        if profile:
            prof = cProfile.Profile(time.process_time)  # CPU, not waits
            h0 = time.process_time()
            prof.enable()
            n = _train_steps(tr, epochs, post)
            prof.disable()
            host = time.process_time() - h0
            rows.append({"host_split": _split(prof, n), "host_us_per_sample": 1e6 * host / n})
    return rows


def _split(prof: cProfile.Profile, samples: int) -> dict[str, float]:
    """Own (tottime) seconds of the profiled calls by `GROUPS`, in µs per sample."""
    st = pstats.Stats(prof)
    out = {name: 0.0 for name, _ in GROUPS}
    out["other"] = 0.0
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        where = f"{file}:{func}".replace(os.sep, "/")
        for name, keys in GROUPS:
            if any(k in where for k in keys):
                out[name] += tt
                break
        else:
            out["other"] += tt
    return {k: 1e6 * v / samples for k, v in out.items()}


def report(rows: list[dict]) -> str:
    """The figures as text lines."""
    lines = []
    for r in rows:
        if "host_split" in r:
            lines.append(f"host CPU under cProfile: {r['host_us_per_sample']:.0f} us/sample")
            lines += [f"  {k}: {v:.0f} us/sample" for k, v in r["host_split"].items()]
            continue
        lines.append(
            f"epoch {r['epoch']}: {r['samples_per_s']:,.0f} samples/s (load {r['load']:.2f}); "
            f"{r['cycles_per_sample']:,.0f} cycles/sample = tile {r['tile_cycles_per_sample']:,.0f}"
            f" + request bytes {r['rx_bytes_per_sample']:,.0f} + other "
            f"{r['other_cycles_per_sample']:,.0f}; reply bytes {r['tx_bytes_per_sample']:,.0f}, "
            f"frames {r['frames_per_sample']:.3f} per sample\n"
            "  tile cycles per sample by phase: " + ", ".join(
                f"{k} {v:,.0f}" for k, v in r["tile_cycles_by_phase"].items()) + "\n"
            f"  server: {r['server_ns_per_cycle']:.0f} ns CPU/cycle, "
            f"{r['cycles_per_busy_s'] / 1e6:.2f} M cycles per busy s, busy "
            f"{r['server_busy_s']:.2f} s of {r['server_wall_s']:.2f} s wall (CPU "
            f"{r['server_cpu_s']:.2f} s); host: {r['host_us_per_sample']:.0f} us CPU/sample "
            f"of {1e6 / r['samples_per_s']:.0f} us wall/sample")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.host.emulator_epoch",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs of training steps (default 2)")
    ap.add_argument("--config", default="default", help="chip config (preset or .toml)")
    ap.add_argument("--no-post", action="store_true",
                    help="every call waits for its reply (no `posting`), as before posting")
    ap.add_argument("--profile", action="store_true",
                    help="one more epoch under cProfile: the host's CPU split")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    print(report(measure(args.epochs, args.config, args.profile, not args.no_post)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
