"""``ohmflow project``: projected time and energy per training step as networks and batches grow.

A few training steps of the digits MLP (64-32-10) run on the twin; their ledger is the measured
point, and its rates per sample (re-reads, live update samples, pulse-train length, pulses per
device update; `workload.PerSample`) scale analytic ledgers of larger networks (up to layers of
4096 x 4096) and other batch sizes: counted work per sample, not a run of those networks. Every
ledger is projected onto each analog profile and each digital profile (at peak and at a
measured fraction of peak). The command prints the table, draws speed-up and energy gain
against layer size and batch size with the crossovers marked, and rewrites the generated
section of docs/projection.md.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ohmflow.host.ledger import CostLedger
from ohmflow.host.projection import Profile, get_profile, load_profiles, project
from ohmflow.host.projection_report import _si, regime_sentence
from ohmflow.host.workload import PerSample, analytic_ledger, steps_of

ANALOG = ("rpu", "hermes", "ibm-speech")
DIGITAL = ("h100-bf16-measured", "h100-bf16")
WIDTHS = (32, 64, 128, 256, 512, 1024, 2048, 4096)
BATCHES = tuple(2 ** k for k in range(11))  # 1 .. 1024
MEASURED = (64, 32, 10)
DOC = Path(__file__).resolve().parent.parent / "docs" / "projection.md"
BEGIN, END = "<!-- ohmflow project: begin -->", "<!-- ohmflow project: end -->"
COMMAND = "./run project"


def square(n: int) -> tuple[int, ...]:
    """The swept network of width n: three n x n layers."""
    return (n, n, n, n)


@dataclass
class Point:
    """Per-step time and energy of one network and batch on one analog and one digital
    profile (the analog profile's modelled phases on both sides)."""

    analog_s: float
    digital_s: float
    analog_j: float
    digital_j: float
    utilisation: float

    @property
    def speedup(self) -> float:
        return self.digital_s / self.analog_s

    @property
    def gain(self) -> float:
        return self.digital_j / self.analog_j


def point(ledger: CostLedger, a: Profile, d: Profile) -> Point:
    pa, pd = project(ledger, a), project(ledger, d)
    ph = pa.modelled_phases
    steps = steps_of(ledger)
    return Point(pa.time_s / steps, sum(pd.phases[p].time_s for p in ph) / steps,
                 pa.energy_j / steps, sum(pd.phases[p].energy_j for p in ph) / steps,
                 pa.utilisation or 0.0)


def measure(steps_epochs: int = 1, batch: int = 32, seed: int = 0) -> tuple[CostLedger, PerSample]:
    """Train the digits MLP on the twin for ``steps_epochs`` epochs; its ledger and rates."""
    from ohmflow.host.device import TwinDevice
    from ohmflow.host.trainer import TrainConfig, Trainer

    cfg = TrainConfig(epochs=steps_epochs, batch=batch, seed=seed, float_baseline=False)
    trainer = Trainer(cfg, TwinDevice(cfg.config))
    if tuple(trainer.sizes) != MEASURED:
        raise ValueError(f"the measured network is {trainer.sizes}, expected {list(MEASURED)}")
    trainer.run()
    samples = steps_epochs * len(trainer.data.x_train)
    rates = PerSample.measure(trainer.ledger, samples, f"{steps_of(trainer.ledger)} steps of "
                              f"the digits MLP 64-32-10 at batch {batch} on the twin")
    return trainer.ledger, rates


def crossings(xs: list[float], ys: list[float], level: float) -> list[float]:
    """x where the piecewise log-log line through (xs, ys) crosses ``level``."""
    out = []
    lv = math.log(level)
    for k in range(len(xs) - 1):
        x0, x1 = xs[k], xs[k + 1]
        a, b = math.log(ys[k]) - lv, math.log(ys[k + 1]) - lv
        if a == 0:
            out.append(x0)
        elif a * b < 0:
            f = a / (a - b)
            out.append(math.exp(math.log(x0) + f * (math.log(x1) - math.log(x0))))
    return out


def sweep(rates: PerSample, analog: tuple[Profile, ...], digital: tuple[Profile, ...],
          widths=WIDTHS, batches=BATCHES, batch: int = 32) -> dict:
    """Points against width (batch ``batch``) and against batch (64-32-10 and the widest)."""
    by_width = {n: analytic_ledger(square(n), batch, rates=rates) for n in widths}
    nets = {"64-32-10": MEASURED, f"{widths[-1]}x{widths[-1]} layers": square(widths[-1])}
    by_batch = {name: {b: analytic_ledger(s, b, rates=rates) for b in batches}
                for name, s in nets.items()}
    out = {"width": {}, "batch": {}}
    for a in analog:
        for d in digital:
            out["width"][a.name, d.name] = [point(by_width[n], a, d) for n in widths]
            for name in nets:
                out["batch"][name, a.name, d.name] = [point(by_batch[name][b], a, d)
                                                      for b in batches]
    out["widths"], out["batches"], out["nets"] = list(widths), list(batches), list(nets)
    return out


# ------------------------------------------------------------------------------------ figures
def _panel(ax, xs, series, attr, xlabel, title, colors, measured=None):
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.axhline(1000.0, color="tab:red", lw=0.8, ls=":")
    ax.axhspan(1000.0, 1e7, color="tab:red", alpha=0.06)
    for (a, d), pts in series.items():
        ys = [getattr(p, attr) for p in pts]
        ls = "-" if d.endswith("-measured") else "--"
        ax.plot(xs, ys, ls, color=colors[a], marker=".", label=f"{a} vs {d}")
        for xc in crossings(xs, ys, 1.0):
            ax.plot([xc], [1.0], "o", mfc="none", mec=colors[a], ms=9, mew=1.5)
        for xc in crossings(xs, ys, 1000.0):
            ax.plot([xc], [1000.0], "D", color=colors[a], ms=6)
    if measured:
        for (a, d), y in measured.items():
            ax.plot([MEASURED[0]], [getattr(y, attr)], "*" if d.endswith("-measured") else "x",
                    color=colors[a], ms=12, mec="k", mew=0.5)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, title=title)
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3, which="both")


def plot(result: dict, measured: dict, out_dir: Path) -> list[Path]:
    """speed-up and energy gain against width and against batch: two PNGs in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    analog = list(dict.fromkeys(a for a, _ in result["width"]))
    colors = dict(zip(analog, ("tab:blue", "tab:green", "tab:purple", "tab:orange"),
                      strict=False))
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, attr, label in ((axes[0], "speedup", "speed-up (digital time / analog time)"),
                            (axes[1], "gain", "energy gain (digital / analog energy)")):
        _panel(ax, result["widths"], result["width"], attr, "layer width n (three n x n "
               "layers), batch 32", label, colors, measured)
        ax.set_ylim(1e-5, 1e5)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Projected analog training against H100 (solid: 40 % of peak + 2 µs a kernel; "
                 "dashed: peak); ○ crossover at 1×, ◆ at 1,000×, ★ measured 64-32-10",
                 fontsize=9)
    fig.tight_layout()
    paths.append(out_dir / "projection-width.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(2, len(result["nets"]), figsize=(12, 8.5), squeeze=False)
    for col, net in enumerate(result["nets"]):
        series = {(a, d): pts for (n, a, d), pts in result["batch"].items() if n == net}
        for row, (attr, label) in enumerate((("speedup", "speed-up"), ("gain", "energy gain"))):
            _panel(axes[row][col], result["batches"], series, attr, "batch size",
                   f"{label}, {net}", colors)
            axes[row][col].set_ylim(1e-5, 1e5)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Against batch size (solid: H100 at 40 % of peak + 2 µs a kernel; dashed: "
                 "peak); ○ crossover at 1×", fontsize=9)
    fig.tight_layout()
    paths.append(out_dir / "projection-batch.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


# --------------------------------------------------------------------------------------- text
TABLE_NETS = (("64-32-10", MEASURED), ("256x256 layers", square(256)),
              ("1024x1024 layers", square(1024)), ("4096x4096 layers", square(4096)))
TABLE_BATCHES = (1, 32, 1024)


def table(measured: CostLedger, rates: PerSample, profiles: list[Profile]) -> str:
    """Markdown: per-step time and energy of each network and batch on each profile."""
    head = "| network | batch | " + " | ".join(p.name for p in profiles) + " |"
    md = [head, "|---|---:|" + "---:|" * len(profiles)]

    def row(label: str, b: int, led: CostLedger) -> str:
        steps = steps_of(led)
        cells = []
        for p in profiles:
            pr = project(led, p)
            dag = "" if len(pr.modelled_phases) == 3 else "†"
            cells.append(f"{_si(pr.time_s / steps, 's')}, {_si(pr.energy_j / steps, 'J')}{dag}")
        return f"| {label} | {b} | " + " | ".join(cells) + " |"

    md.append(row("64-32-10, measured", 32, measured))
    for label, sizes in TABLE_NETS:
        for b in TABLE_BATCHES:
            md.append(row(label, b, analytic_ledger(sizes, b, rates=rates)))
    return "\n".join(md)


def summary(result: dict) -> list[str]:
    """Crossovers and the best speed-up and energy gain of every pair, as markdown bullets."""
    lines = []
    ws, bs = result["widths"], result["batches"]
    best = {"speedup": (0.0, ""), "gain": (0.0, "")}
    for (a, d), pts in result["width"].items():
        for attr, word in (("speedup", "speed-up"), ("gain", "energy gain")):
            ys = [getattr(p, attr) for p in pts]
            xs = crossings(ws, ys, 1.0)
            where = ("crosses 1 at " + ", ".join(f"n ≈ {x:.0f}" for x in xs) if xs else
                     ("above 1 at every width" if ys[0] > 1 else "below 1 at every width"))
            lines.append(f"- {a} against {d}, {word} against width (batch 32): {where}; "
                         f"{ys[0]:.3g}x at n = {ws[0]}, {ys[-1]:.3g}x at n = {ws[-1]}.")
            for n, y in zip(ws, ys, strict=True):
                if y > best[attr][0]:
                    best[attr] = (y, f"{a} against {d}, n = {n}, batch 32")
    for (net, a, d), pts in result["batch"].items():
        ys = [p.speedup for p in pts]
        xs = crossings(bs, ys, 1.0)
        if xs:
            lines.append(f"- {a} against {d}, {net}: speed-up crosses 1 at batch ≈ "
                         + ", ".join(f"{x:.3g}" for x in xs) + ".")
        for attr in ("speedup", "gain"):
            for b, p in zip(bs, pts, strict=True):
                y = getattr(p, attr)
                if y > best[attr][0]:
                    best[attr] = (y, f"{a} against {d}, {net}, batch {b}")
    for attr, word in (("speedup", "speed-up"), ("gain", "energy gain")):
        y, where = best[attr]
        verdict = "a 1,000x regime" if y >= 1000 else "no 1,000x regime"
        lines.append(f"- Largest {word} in the sweep: {y:.3g}x ({where}): {verdict} in "
                     f"{word} under these assumptions.")
    return lines


def doc_section(measured: CostLedger, rates: PerSample, profiles: list[Profile], result: dict,
                pngs: list[Path], regime: str) -> str:
    r = rates
    body = [BEGIN, "", f"Generated by `{COMMAND}`; do not edit by hand.",
            "", f"Measured: {r.source}. Rates per sample and layer carried to the larger "
            f"networks: {r.fwd_reads:.3f} forward reads, {r.bwd_reads:.3f} backward reads "
            f"(bound management re-reads), {r.live:.3f} of the samples updated, {r.bl:.1f} pulse "
            f"slots an update sample, {r.pulses_per_update:.3g} pulses a device update. Every "
            "other row is an analytic ledger: the counted work per sample of that network, "
            "scaled, not a run of it.", "",
            f"Regime of the measured network: {regime}", "",
            *[f"![{p.stem}]({p.name})" for p in pngs], "",
            "Time and energy per training step (forward, backward and update of every layer; "
            "† forward and backward only: the chip has no in-array update; the curves compare "
            "the digital side over the same phases):", "",
            table(measured, rates, profiles), "", "Crossovers and the 1,000x question:", "",
            *summary(result), "", END]
    return "\n".join(body)


def write_doc(section: str, doc: Path = DOC) -> None:
    """Replace the generated section of ``doc`` (appended if missing)."""
    text = doc.read_text()
    pat = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pat.sub(lambda _m: section, text) if pat.search(text) else (
        text.rstrip() + "\n\n" + section + "\n")
    doc.write_text(text)


def load_ledger(path: str | Path) -> CostLedger:
    """A ledger saved as JSON: the ledger itself or a report of ``ohmflow train --report``."""
    import json

    try:
        d = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--ledger {path}: not JSON ({e.msg}); expected a ledger or a "
                         "report.json of ohmflow train --report") from None
    if isinstance(d, dict) and "ledger" in d:
        d = d["ledger"]
    return CostLedger.from_dict(d)


# -------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", metavar="FILE",
                   help="also project this run's ledger (a ledger JSON or a report.json of "
                   "ohmflow train --report) per training step")
    p.add_argument("--analog", default=",".join(ANALOG),
                   help=f"analog profiles, comma-separated (default {','.join(ANALOG)})")
    p.add_argument("--digital", default=",".join(DIGITAL),
                   help=f"digital profiles, comma-separated (default {','.join(DIGITAL)})")
    p.add_argument("--epochs", type=int, default=1,
                   help="epochs of the measured digits run (default 1: 45 steps)")
    p.add_argument("--out-dir", metavar="DIR",
                   help="where the PNGs go (default: docs/ beside docs/projection.md)")
    p.add_argument("--no-doc", action="store_true",
                   help="do not rewrite the generated section of docs/projection.md")


def _profiles(text: str, kind: str) -> tuple[Profile, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--{kind} needs at least one profile name")
    known = load_profiles()
    out = tuple(known[n] if n in known else get_profile(n) for n in names)
    for p in out:
        if p.kind != kind:
            raise ValueError(f"--{kind}: profile {p.name!r} is {p.kind}, not {kind}")
    return out


def run(args) -> int:
    t0 = time.perf_counter()
    analog, digital = _profiles(args.analog, "analog"), _profiles(args.digital, "digital")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.out_dir and not args.no_doc and Path(args.out_dir).resolve() != DOC.parent:
        raise ValueError("--out-dir needs --no-doc: docs/projection.md links the pictures "
                         "beside it")
    if args.ledger:
        led = load_ledger(args.ledger)
        print(f"{args.ledger}: {steps_of(led)} training steps; per step:")
        for p in (*analog, *digital):
            pr = project(led, p)
            print(f"  {p.name:<20} {_si(pr.time_s / steps_of(led), 's'):>10} "
                  f"{_si(pr.energy_j / steps_of(led), 'J'):>10}  ({'+'.join(pr.modelled_phases)})")
        print("regime: " + regime_sentence(led, analog[0], digital[0]))
    measured, rates = measure(args.epochs)
    result = sweep(rates, analog, digital)
    measured_pts = {(a.name, d.name): point(measured, a, d) for a in analog for d in digital}
    out_dir = Path(args.out_dir) if args.out_dir else DOC.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = plot(result, measured_pts, out_dir)
    regime = regime_sentence(measured, analog[0], digital[0])
    profiles = [*analog, *digital]
    print(f"measured: {rates.source}")
    print("regime: " + regime)
    print(table(measured, rates, profiles))
    print("\n".join(summary(result)))
    print("figures: " + ", ".join(str(p) for p in pngs))
    if not args.no_doc:
        write_doc(doc_section(measured, rates, profiles, result, pngs, regime))
        print(f"{DOC}: generated section rewritten")
    print(f"ohmflow project: {time.perf_counter() - t0:.1f} s")
    return 0
