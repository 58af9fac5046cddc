"""A board's training speed, projected from its RTL in the Verilator emulator.

``python -m ohmflow.host.board_speed --board icebreaker`` trains the 64-32-10 digits MLP for one
epoch on the board's chip config in the Verilator emulator (the very RTL the bitstream holds),
and reads two counts the emulator knows exactly: the clock cycles the chip spent executing
commands (each tile's ``cycles`` counter) and the bytes that crossed the link (the server's
counters). On the board the chip takes its bytes as the UART delivers them and works on them as
they come (a byte every 80 clocks at 3 Mbaud and 24 MHz; the firmware needs about 21), so a
step takes about

    cycles / clock_hz  +  bytes * 10 / baud

(8N1: ten bits a byte). Not in it: the USB round trips of the FTDI bridge (its latency timer
holds a short reply for up to 16 ms unless set lower, e.g. ``echo 1 >
/sys/bus/usb-serial/devices/ttyUSB1/latency_timer``), and the host's own time. The figures go
to the ``board-speed`` section of docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import sys
import time

from ohmflow.boards import BOARDS, board_config, get_board

__all__ = ["project", "operation_cycles", "main"]


def operation_cycles(board: str, batch: int = 8) -> list[tuple[str, float]]:
    """Chip cycles of single operations on tile 0 of ``board``'s config (full window, random
    states and codes, seed 1), per vector, sample or operation, from the ``cycles`` counter."""
    import numpy as np
    from ohmflow.host.device import open_device

    cfg = board_config(get_board(board))
    rng = np.random.default_rng(1)
    r, c = cfg.rows, cfg.cols
    out = []
    with open_device("verilator", cfg) as dev:
        dev.program(0, rng.integers(-3000, 3000, (c, r)))

        def cycles(f) -> int:
            c0 = dev.counters()[0]["cycles"]
            f()
            return dev.counters()[0]["cycles"] - c0

        x, d = rng.integers(-63, 64, (batch, r)), rng.integers(-63, 64, (batch, c))
        out.append((f"FORWARD, per vector ({r} in, {c} out)",
                    cycles(lambda: dev.forward(0, x)) / batch))
        out.append((f"BACKWARD, per vector ({c} in, {r} out)",
                    cycles(lambda: dev.backward(0, d)) / batch))
        for p in (16, 64, 256):
            xu, du = rng.integers(-p, p + 1, (batch, r)), rng.integers(-p, p + 1, (batch, c))
            out.append((f"UPDATE, per sample, codes uniform in [-{p}, {p}], BL 31",
                        cycles(lambda xu=xu, du=du: dev.update(0, xu, du)) / batch))
        out.append((f"PULSE, one row ({c} devices)",
                    cycles(lambda: dev.pulse(0, "row", 0, rng.integers(-9, 10, c)))))
        w = rng.integers(-3000, 3000, (c, r))
        out.append((f"PROGRAM, {r * c} states", cycles(lambda: dev.program(0, w))))
        out.append((f"READ, {r * c} states", cycles(lambda: dev.read(0))))
    return out


def project(board: str, samples: int | None = None) -> dict:
    """Train one epoch (of ``samples`` digits, default all 1437) on ``board``'s config in the
    emulator; the measured counts and the projected board times."""
    from ohmflow.host import datasets
    from ohmflow.host.device import open_device
    from ohmflow.host.trainer import TrainConfig, Trainer
    from ohmflow.sim import verilator_server

    b = get_board(board)
    cfg = board_config(b)
    d = datasets.digits()
    n = len(d.y_train) if samples is None else samples
    # the training set, and one test sample: the epoch's evaluation is not training
    data = datasets.Dataset(d.name, d.x_train[:n], d.y_train[:n], d.x_test[:1], d.y_test[:1],
                            d.classes)
    tc = TrainConfig(epochs=1, seed=0, float_baseline=False, config=cfg.name)
    with open_device("verilator", cfg) as dev:
        trainer = Trainer(tc, dev, data)
        before = verilator_server.stats(dev.process)
        c0 = sum(c["cycles"] for c in trainer.counters())
        t0 = time.perf_counter()
        rec = trainer.run_epoch()
        wall = time.perf_counter() - t0
        c1 = sum(c["cycles"] for c in trainer.counters())
        after = verilator_server.stats(dev.process)
    cycles = c1 - c0
    wire = (after["rx"] - before["rx"]) + (after["tx"] - before["tx"])
    compute_s = cycles / cfg.clock_hz
    wire_s = wire * 10 / b.baud
    return {"board": b.name, "config": cfg.name, "engine": cfg.engine, "samples": n,
            "cycles_per_sample": cycles / n, "bytes_per_sample": wire / n,
            "compute_ms": 1e3 * compute_s / n, "wire_ms": 1e3 * wire_s / n,
            "board_samples_per_s": n / (compute_s + wire_s),
            "emulator_samples_per_s": n / wall, "clock_hz": cfg.clock_hz, "baud": b.baud,
            "train_acc": rec["analog_train_acc"]}


def table(rows: list[dict]) -> str:
    out = ["| board | config (engine) | chip cycles / sample | link bytes / sample | "
           "compute ms / sample | wire ms / sample | projected board samples/s | "
           "emulator samples/s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['board']} | {r['config']} ({r['engine']}) | "
                   f"{r['cycles_per_sample']:,.0f} | {r['bytes_per_sample']:,.0f} | "
                   f"{r['compute_ms']:.2f} at {r['clock_hz'] / 1e6:g} MHz | "
                   f"{r['wire_ms']:.2f} at {r['baud'] / 1e6:g} Mbaud | "
                   f"{r['board_samples_per_s']:,.0f} | {r['emulator_samples_per_s']:,.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.host.board_speed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", action="append", choices=sorted(BOARDS),
                    help="board (repeatable; default: all)")
    ap.add_argument("--samples", type=int, help="training samples (default: the whole epoch)")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    boards = args.board or sorted(BOARDS)
    rows = [project(b, args.samples) for b in boards]
    text = table(rows)
    for b in boards:
        ops = operation_cycles(b)
        cfg = board_config(get_board(b))
        text += (f"\n\nOperations on `{b}` (config `{cfg.name}`, engine {cfg.engine}, "
                 f"{cfg.clock_hz / 1e6:g} MHz), chip cycles from the `cycles` counter:\n\n"
                 "| operation | cycles | at the board's clock |\n|---|---|---|\n")
        text += "\n".join(f"| {name} | {n:,.0f} | {1e6 * n / cfg.clock_hz:,.1f} us |"
                           for name, n in ops)
    print(text)
    if not args.no_doc:
        from ohmflow.host.benchdoc import write_section

        cmd = "python -m ohmflow.host.board_speed" + "".join(f" --board {b}" for b in boards) + (
            f" --samples {args.samples}" if args.samples else "")
        body = ("One epoch of the 64-32-10 digits MLP (batch 32, lr 0.1, ConstantStep devices, "
                "seed 0) on each board's chip config, in the Verilator emulator of the board's "
                "RTL. *Chip cycles* are the tiles' `cycles` counters (the clock cycles spent "
                "executing commands), *link bytes* both directions on the wire. The projection "
                "for the board is cycles / clock + bytes x 10 / baud per sample: the chip "
                "takes its bytes while they arrive; the FTDI's USB latency and the host's "
                "own time are not in it (module docstring of `ohmflow.host.board_speed`).\n\n"
                + text)
        write_section("board-speed", "Board training speed, projected from the RTL", body, cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
