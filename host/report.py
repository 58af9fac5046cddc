"""Reports of a training run: tables, history files and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from ohmflow.emulator.fabrication import DeviceMap

COUNTER_COLUMNS = ("fwd_vectors", "bwd_vectors", "update_samples", "pulses", "macs",
                   "adc_saturations")


def final_table(history: list[dict]) -> str:
    """A plain-text table of the last epoch (and the best test accuracy), analog beside float."""
    last = history[-1]
    rows = [("", "train loss", "train acc", "test loss", "test acc", "best test acc")]
    for name in ("analog", "float"):
        if f"{name}_test_acc" not in last:
            continue
        best = max(h[f"{name}_test_acc"] for h in history)
        rows.append((name, f"{last[f'{name}_train_loss']:.4f}", f"{last[f'{name}_train_acc']:.4f}",
                     f"{last[f'{name}_test_loss']:.4f}", f"{last[f'{name}_test_acc']:.4f}",
                     f"{best:.4f}"))
    return _grid(rows) + f"\nafter {last['epoch']} epochs"


def counters_table(tiles: list[tuple[str, dict[str, int]]]) -> str:
    """Device counters of the tiles in use (label, counters), and their total."""
    rows = [("tile", *COUNTER_COLUMNS)]
    for label, c in tiles:
        rows.append((label, *(f"{c.get(k, 0):,}" for k in COUNTER_COLUMNS)))
    extra = [k for k in tiles[0][1] if k not in COUNTER_COLUMNS]
    rows.append(("total", *(f"{sum(c.get(k, 0) for _, c in tiles):,}"
                            for k in COUNTER_COLUMNS)))
    text = _grid(rows)
    if extra:
        text += "\n" + ", ".join(f"{k} {sum(c.get(k, 0) for _, c in tiles):,}" for k in extra)
    return text


def _grid(rows) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_history(out: Path, history: list[dict]) -> None:
    """history.csv (one row per epoch) and history.json."""
    (out / "history.json").write_text(json.dumps(history, indent=1))
    keys = list(history[0])
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for h in history:
            w.writerow({k: h.get(k, "") for k in keys})


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figure(history: list[dict]):
    """The learning-curve figure: loss (log axis) and test accuracy per epoch, analog and float,
    with a marker on every epoch so that a run of one epoch still shows its points."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    ep = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("analog", "-o"), ("float", "--s")):
        if f"{name}_test_acc" not in history[0]:
            continue
        ax1.plot(ep, [h[f"{name}_train_loss"] for h in history], style, label=f"{name} train")
        ax1.plot(ep, [h[f"{name}_test_loss"] for h in history], style, alpha=0.6,
                 label=f"{name} test")
        ax2.plot(ep, [h[f"{name}_test_acc"] for h in history], style, label=name)
    ax1.set_yscale("log")
    ax1.set(xlabel="epoch", ylabel="cross-entropy (log scale)", title="loss")
    ax2.set(xlabel="epoch", ylabel="test accuracy", title="accuracy")
    for ax in (ax1, ax2):
        if len(ep) <= 15:
            ax.set_xticks(ep)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(min(ep) - 0.5, max(ep) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_curves(path: Path, history: list[dict]) -> None:
    """Write `curves_figure` as a PNG."""
    plt = _plt()
    fig = curves_figure(history)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_weights(path: Path, states: list[np.ndarray], unit: float,
                 floats: list[np.ndarray] | None = None) -> None:
    """Histograms of every layer's device states (conductance G+ - G-), with the float weights."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(states), figsize=(5 * len(states), 3.6), squeeze=False)
    for k, (ax, s) in enumerate(zip(axes[0], states, strict=True)):
        ax.hist(s.ravel() / unit, bins=60, alpha=0.7, label="analog (device states)")
        if floats is not None:
            ax.hist(floats[k].ravel(), bins=60, histtype="step", label="float baseline")
        ax.set(title=f"layer {k + 1} ({s.shape[1]} -> {s.shape[0]})", xlabel="weight")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def layer_device_maps(netmap, maps: list[DeviceMap]) -> list[dict[str, np.ndarray]]:
    """Each layer's per-device parameters (n_out, n_in), assembled from its blocks' tiles.

    ``maps`` holds one `DeviceMap` per chip.
    """
    out = []
    for lm in netmap.layers:
        fields = {}
        for f in ("su", "sd", "wmax"):
            a = np.zeros((lm.n_out, lm.n_in), dtype=np.int64)
            for b in lm.blocks:
                a[b.outputs, b.inputs] = getattr(maps[b.chip], f)[b.tile, :b.n_out, :b.n_in]
            fields[f] = a
        out.append(fields)
    return out


def plot_device_map(path: Path, layer_maps: list[dict[str, np.ndarray]], unit: float,
                    states: list[np.ndarray]) -> None:
    """Heat maps per layer: up step, down step, upper bound and the final weights."""
    plt = _plt()
    panels = (("su", "up step dw_up"), ("sd", "down step dw_down"), ("wmax", "bound w_max"))
    n = len(layer_maps)
    fig, axes = plt.subplots(n, 4, figsize=(14, 3.2 * n), squeeze=False)
    for t, fields in enumerate(layer_maps):
        for ax, (field, title) in zip(axes[t], panels, strict=False):
            im = ax.imshow(fields[field] / unit, aspect="auto", cmap="viridis")
            ax.set(title=f"layer {t + 1}: {title}", xlabel="input i", ylabel="output j")
            fig.colorbar(im, ax=ax)
        im = axes[t][3].imshow(states[t] / unit, aspect="auto", cmap="RdBu_r")
        axes[t][3].set(title=f"layer {t + 1}: final weights", xlabel="input i",
                       ylabel="output j")
        fig.colorbar(im, ax=axes[t][3])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_run_report(out: Path, trainer) -> str:
    """Write history, table, counters and the three PNGs of a finished run; returns the text."""
    out.mkdir(parents=True, exist_ok=True)
    hist = trainer.history
    write_history(out, hist)
    layers = trainer.analog.layers
    states = [layer.states() for layer in layers]
    unit = layers[0].unit
    counters = trainer.counters()
    tiles = trainer.chips.config.tiles
    used = sorted({(b.chip, b.tile) for b in trainer.map.blocks})
    label = (lambda c, t: f"{c}.{t}") if len(trainer.chips) > 1 else (lambda c, t: str(t))
    text = (final_table(hist) + "\n\ndevice counters" + (" (chip.tile)" if len(trainer.chips) > 1
                                                          else "") + "\n"
            + counters_table([(label(c, t), counters[c * tiles + t]) for c, t in used]))
    if trainer.cfg.algorithm != "sgd":
        ac = trainer.analog.algorithm_counters()
        text += (f"\n\nalgorithm {trainer.cfg.algorithm} {trainer.cfg.algorithm_options}: "
                 + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in ac.items()))
    (out / "table.txt").write_text(text + "\n")
    (out / "summary.json").write_text(json.dumps({
        "train": trainer.cfg.to_dict(), "final": hist[-1], "counters": counters,
        "chip": trainer.chips.config.to_dict(), "backend": trainer.chips.backend(),
        "mapping": trainer.map.to_dict(),
    }, indent=1))
    plot_curves(out / "curves.png", hist)
    floats = [w for w, _ in trainer.float.params] if trainer.float is not None else None
    plot_weights(out / "weights.png", states, unit, floats)
    maps = trainer.chips.each(lambda d: d.read_device_map())
    plot_device_map(out / "devicemap.png", layer_device_maps(trainer.map, maps)[:len(layers)],
                    unit, states)
    return text
